"""The victim's client: creates the conversation, reads every message with its device key,
steers the bridge and may share history."""

from __future__ import annotations

from typing import Self

from nacl.public import PrivateKey

from bridge import crypto
from bridge.client import writing
from bridge.client.base import BridgeClient
from bridge.client.conversation import Conversation, DecryptedMessage
from bridge.client.network import Network
from bridge.client.wire import JSON

__all__ = ["VictimClient"]


class VictimClient(BridgeClient):
    """The victim: creates the conversation, holds its device key (reads every message), steers
    the bridge (grant, decline, withdraw, pause, resume) and may share history."""

    role = "victim"

    def __init__(
        self, base_url: str, *, ack_timeout: float = 10.0, network: Network | None = None
    ) -> None:
        super().__init__(base_url, ack_timeout=ack_timeout, network=network)
        self.conversation_id = ""

    @classmethod
    async def create(
        cls,
        base_url: str,
        lang: str = "nl",
        *,
        ack_timeout: float = 10.0,
        network: Network | None = None,
    ) -> Self:
        """Start a conversation (new device and care scope keys), connect and join it."""
        client = cls(base_url, ack_timeout=ack_timeout, network=network)
        try:
            care = crypto.ScopeKey.generate()
            fier = await client.org_key("fier")
            body = {
                "lang": lang,
                "device": {"ed25519": client.keys.ed25519, "x25519": client.keys.x25519},
                "care_scope": care.as_payload(fier["x25519"], fier["key_id"]),
            }
            created = await client.request("POST", "/api/v1/conversations", body)
            client.conversation_id = created["conversation_id"]
            client.token = created["victim_token"]
            client.device_id = created["device_id"]
            await client.connect()
            await client.join()
        except BaseException:
            await client.aclose()
            raise
        return client

    @property
    def conversation(self) -> Conversation:
        return self.conversations[self.conversation_id]

    @property
    def bridge(self) -> JSON | None:
        """The bridge as last reported: ``{request_id, purpose, state, reason?, epoch?}``."""
        return self.conversation.bridge

    def _reader(self, conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
        return "victim", self.keys.box

    def _ref(self) -> JSON:
        return {"conversation_id": self.conversation_id}

    async def join(self) -> JSON:
        """``conversation.join`` of its own conversation; returns the ack."""
        return await self._join("conversation.join", self._ref())

    async def send(self, text: str, care_only: bool = False, kind: str = "message") -> int:
        """Send to care, plus investigation while the bridge is ``joined`` (unless care_only)."""
        audience = writing.audience_for(self.conversation, care_only, kind)
        return await self.send_envelope(text, audience=audience, kind=kind)

    def prompt(self, request_id: str | None = None) -> JSON:
        """The last ``consent.prompt`` received (for ``request_id``, if given)."""
        for name, event in reversed(self.received):
            if name == "consent.prompt" and request_id in (None, event.get("request_id")):
                return event
        raise LookupError(f"no consent.prompt received (request_id={request_id})")

    async def grant(
        self,
        request_id: str | None = None,
        retain_for_case_file: bool = False,
        share_needs_note: bool = True,
    ) -> JSON:
        """Consent to the prompted bridge: quote its text, mint the epoch's investigation scope
        key (sealed to AVIM) and sign the grant with the device key. Returns the ack."""
        prompt = self.prompt(request_id)
        choices = {
            "retain_for_case_file": retain_for_case_file,
            "share_needs_note": share_needs_note,
        }
        avim = await self.org_key("avim")
        payload, scope = writing.grant(prompt, self.keys, avim, choices)
        ack = await self.call("consent.grant", payload)
        # Known at once (share_history may follow); the bridge state comes as an event.
        self.conversation.epoch = {"epoch_id": ack["epoch_id"], "public": scope.public}
        return ack

    async def decline(self, request_id: str | None = None) -> JSON:
        """``consent.decline`` of the prompted request."""
        request = self.prompt(request_id)["request_id"]
        return await self.call("consent.decline", {"request_id": request})

    async def withdraw(self) -> JSON:
        """``consent.withdraw``: the officer is removed at once."""
        return await self.call("consent.withdraw", self._ref())

    async def pause(self) -> JSON:
        return await self.call("bridge.pause", self._ref())

    async def resume(self) -> JSON:
        return await self.call("bridge.resume", self._ref())

    async def close(self) -> JSON:
        """``conversation.close`` (ends the chat; to drop the connection use ``aclose``)."""
        return await self.call("conversation.close", self._ref())

    async def history(self, after_seq: int = 0, limit: int | None = None) -> list[DecryptedMessage]:
        """One ``history.fetch``; the messages are also stored in ``messages``."""
        return await self._history(self.conversation_id, after_seq, limit)

    async def share_history(self, seqs: list[int]) -> int:
        """Re-seal the content keys of messages ``seqs`` to the current investigation epoch and
        send them with ``history.share``; returns the number shared. Messages not yet seen are
        fetched first."""
        conv = self.conversation
        if conv.epoch is None:
            raise ValueError("no investigation epoch to share with")
        missing = [seq for seq in seqs if seq not in conv.messages]
        if missing:
            await self.history(after_seq=min(missing) - 1, limit=max(missing) - min(missing) + 1)
        payload = writing.share(conv, seqs, conv.epoch, self.keys)
        ack = await self.call("history.share", payload)
        return int(ack["shared"])
