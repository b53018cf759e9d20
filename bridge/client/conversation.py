"""What a client knows of a conversation, and how join answers and server events change it.

Plain records and their updates: no I/O and no cryptography (reading.py opens, writing.py seals).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nacl.public import PrivateKey

from bridge.client.wire import JSON

__all__ = ["Conversation", "DecryptedMessage"]


@dataclass(frozen=True)
class DecryptedMessage:
    """One message as this client sees it.

    ``text`` and ``sent_at`` are ``None`` when the message was not verified or this client holds
    no key that opens it. ``envelope`` is the envelope exactly as the server relayed it.
    """

    seq: int
    sender_role: str
    sender_device_id: str
    kind: str
    audience: list[str]
    epoch_id: str | None
    text: str | None
    sent_at: str | None
    server_time: str
    verified: bool
    conversation_id: str
    envelope: JSON = field(repr=False)


@dataclass
class Conversation:
    """What a client knows of one conversation: keys to seal to, signers, bridge and messages.

    ``sealed`` maps ``"care"`` or an epoch id to the sealed private scope key the server handed
    this client, ``sealed_by`` to the id of the org key version it is sealed to; ``opened``
    caches the ones opened. ``seen_seq`` is where a resume fetches history from: the
    conversation's last seq when first joined, then the last seq up to which this client has
    every message it can read.
    """

    conversation_id: str
    state: str | None = None
    last_seq: int = 0
    victim_device: JSON | None = None
    care_public: str | None = None
    epoch: JSON | None = None
    bridge: JSON | None = None
    sealed: dict[str, str] = field(default_factory=dict)
    sealed_by: dict[str, str] = field(default_factory=dict)
    opened: dict[str, PrivateKey] = field(default_factory=dict, repr=False)
    participants: dict[str, JSON] = field(default_factory=dict)
    messages: dict[int, DecryptedMessage] = field(default_factory=dict)
    seen_seq: int = 0
    queued: set[int] = field(default_factory=set, repr=False)  # seqs put on the message queue

    def apply_join(self, data: JSON) -> None:
        """Take in a ``conversation.join`` ack's conversation (or an ``invite.accept`` ack):
        state, keys, bridge, epoch and participants; what it leaves out is kept."""
        self.state = data.get("state", self.state)
        self.last_seq = data.get("last_seq", self.last_seq)
        care = data.get("care_scope") or {}
        self.care_public = care.get("public", self.care_public)
        if "sealed_private" in care:
            self.sealed["care"] = care["sealed_private"]
            self.sealed_by["care"] = care.get("key_id") or ""
        if "bridge" in data:
            self.bridge = dict(data["bridge"]) if data["bridge"] else None
        if "epoch" in data:
            epoch = data["epoch"] or (self.bridge or {}).get("epoch")
            self.epoch = _public_epoch(epoch)
            if epoch and "sealed_private" in epoch:
                self.sealed[epoch["epoch_id"]] = epoch["sealed_private"]
                self.sealed_by[epoch["epoch_id"]] = epoch.get("key_id") or ""
        victim = data.get("victim_device")
        if victim:
            self.victim_device = victim
            self.participants.setdefault(victim["device_id"], {"role": "victim", **victim})
        for participant in data.get("participants", []):
            self.participants[participant["device_id"]] = participant

    def apply_event(self, name: str, data: JSON) -> None:
        """Take in a ``bridge.state``, ``participant`` or ``conversation.closed`` event; any
        other name changes nothing. A ``bridge.state`` of the same request keeps the epoch an
        earlier one carried."""
        if name == "bridge.state":
            bridge = {k: v for k, v in data.items() if k != "conversation_id"}
            old = self.bridge
            if old and old.get("request_id") == bridge.get("request_id") and "epoch" in old:
                bridge.setdefault("epoch", old["epoch"])
            self.bridge = bridge
            if "epoch" in bridge:
                self.epoch = _public_epoch(bridge["epoch"])
        elif name == "participant":
            participant = data["participant"]
            self.participants[participant["device_id"]] = participant
        elif name == "conversation.closed":
            self.state = "closed"

    def store(self, message: DecryptedMessage, *, reads_every_seq: bool) -> None:
        """Keep ``message`` and move ``seen_seq`` on: over every seq now held without a gap for
        a reader of every seq (victim, counsellor), to the highest seq held otherwise (an
        officer reads only its epoch, so gaps never fill)."""
        self.messages[message.seq] = message
        if reads_every_seq:
            while self.seen_seq + 1 in self.messages:
                self.seen_seq += 1
        else:
            self.seen_seq = max(self.seen_seq, message.seq)


def _public_epoch(epoch: JSON | None) -> JSON | None:
    return None if epoch is None else {"epoch_id": epoch["epoch_id"], "public": epoch["public"]}
