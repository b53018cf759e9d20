"""Scenarios for refusals: a world of parties, payloads made wrong on purpose, "nothing changed".

DESIGN principle 10: a rejected event leaves no partial state. A refused call runs inside
:meth:`World.unchanged`: every table of the SQLite file, the history each party fetches and the
events each party has received are compared before and after the call. The staff's own
``history.fetch`` is logged (``transcript.read``), so histories are fetched *before* the database
is read and *after* it is read again: the comparison is exact, with no exclusions.

The worlds (:func:`chatting`, :func:`closed`, :func:`proposed`, :func:`granted_world`,
:func:`joined`) are built
with the real Python client against the bridge of :mod:`harness.server`, over a real socket.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from nacl.signing import SigningKey

from bridge import crypto
from bridge.client import BridgeClient, CounsellorClient, OfficerClient, Refused, VictimClient
from harness.server import (
    Bridge,
    db_rows,
    driegesprek,
    error_code,
    granted,
    picked_up,
    running,
    state_is,
)

JSON = dict[str, Any]
BOTH = ["care", "investigation"]
CARE = ["care"]
LIMIT = 16 * 1024  # PROTOCOL.md: the envelope limit, on its compact JSON encoding
T = TypeVar("T")

# For tests that use a world shared by their module (:func:`shared_world`): they run on the
# module's event loop, where that world lives.
ON_SHARED_WORLD = pytest.mark.asyncio(loop_scope="module")


def shared_world(build: Callable[[Bridge], Awaitable[T]]) -> Any:
    """A module-scoped fixture: what ``build`` makes, on a staffed bridge of its own.

    Sound for refusals only: a refused event changes nothing, and every test that uses such a
    world asserts it (:meth:`World.unchanged`), so the next test finds the world as the first
    did. A bridge of its own, because a second world on the same bridge would send the first
    one's counsellor queue events in the middle of a comparison; no periodic checkpoint, which
    would add a log entry mid-comparison. Tests that use it are marked ``ON_SHARED_WORLD``.
    """

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[T]:
        data_dir = tmp_path_factory.mktemp("world") / "data"
        async with running(data_dir, overrides={"checkpoint_seconds": 86400.0}) as bridge:
            yield await build(bridge)

    return world


# --- the world a refusal is tried in ------------------------------------------------------------


@dataclass
class World:
    """A bridge with its parties; ``readers`` are the (client, conversation) histories compared."""

    bridge: Bridge
    victim: VictimClient
    counsellor: CounsellorClient
    officer: OfficerClient | None = None
    extra: list[tuple[BridgeClient, str]] = field(default_factory=list)

    @property
    def cid(self) -> str:
        return self.victim.conversation_id

    @property
    def parties(self) -> dict[str, BridgeClient]:
        """The conversation's own parties by role (the officer once there is one)."""
        found: dict[str, BridgeClient] = {"victim": self.victim, "counsellor": self.counsellor}
        if self.officer is not None:
            found["officer"] = self.officer
        return found

    @property
    def readers(self) -> list[tuple[BridgeClient, str]]:
        return [(p, self.cid) for p in self.parties.values()] + self.extra

    @property
    def epoch_id(self) -> str:
        epoch = self.victim.conversation.epoch
        assert epoch is not None
        return str(epoch["epoch_id"])

    async def unchanged(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action`` (a call that must be refused) and assert that it changed nothing."""
        readers = self.readers
        clients = [client for client, _ in readers]
        histories_before = await histories(readers)  # staff reads are logged: fetch, then rows
        events_before = events_seen(clients)
        rows_before = db_rows(self.bridge)
        answer = await action()
        assert db_rows(self.bridge) == rows_before
        # Each reader's fetch is a round trip on its own socket: any event the refused call sent
        # it has arrived by the time its ack does.
        assert await histories(readers) == histories_before
        assert events_seen(clients) == events_before
        return answer

    async def refused(self, client: BridgeClient, event: str, *args: object) -> str:
        """Send one event that must be refused; assert that it changed nothing; return its code."""
        return error_code(await self.unchanged(lambda: client.call_raw(event, *args)))

    async def refused_send(self, client: BridgeClient, envelope: JSON) -> str:
        """``message.send`` of ``envelope`` by ``client``, which must be refused: its code."""
        return await self.refused(client, "message.send", {"envelope": envelope})

    async def refused_by_client(self, action: Callable[[], Awaitable[Any]]) -> str:
        """Run a high-level client call that must raise Refused; assert nothing changed."""

        async def attempt() -> str:
            with pytest.raises(Refused) as refusal:
                await action()
            return refusal.value.code

        return await self.unchanged(attempt)


async def chatting(bridge: Bridge) -> World:
    """A picked-up conversation with a message from each side, no bridge."""
    victim, counsellor = await picked_up(bridge)
    await victim.send("Hallo?")
    await counsellor.send(victim.conversation_id, "Hoi, ik ben er.")
    return World(bridge, victim, counsellor)


async def proposed(bridge: Bridge) -> World:
    """A bridge proposed; the victim holds the consent prompt."""
    world = await chatting(bridge)
    await world.counsellor.propose(world.cid)
    await world.victim.next_event("consent.prompt")
    return world


async def closed(bridge: Bridge) -> World:
    """A conversation the victim closed, after a message from each side."""
    world = await chatting(bridge)
    await world.victim.close()
    await world.counsellor.next_event("conversation.closed")
    return world


async def granted_world(bridge: Bridge, *, share_needs_note: bool = True) -> World:
    """A bridge the victim granted, no officer yet; the counsellor has seen the grant."""
    victim, counsellor, _ = await granted(bridge, share_needs_note=share_needs_note)
    await counsellor.next_event("bridge.state", where=state_is("granted"))
    return World(bridge, victim, counsellor)


async def joined(bridge: Bridge) -> World:
    """The driegesprek, with messages of every kind: each party's history differs."""
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await victim.send("Ik wil praten.")
    await victim.send("Alleen voor jou.", care_only=True)
    await counsellor.send(cid, "Welkom.")
    await officer.send(cid, "Hallo, ik ben van AVIM.")
    await counsellor.send(cid, "Ik zit erbij.", kind="needs_note")
    return World(bridge, victim, counsellor, officer)


async def outsider(world: World, role: str) -> BridgeClient:
    """Someone with no part in the world's conversation, added to the histories compared: another
    victim (reading her own conversation), the second counsellor or the second officer (one that
    never joined), both logged in and registered."""
    bridge = world.bridge
    if role == "victim":
        victim = await bridge.victim()
        world.extra.append((victim, victim.conversation_id))
        return victim
    client: BridgeClient
    if role == "counsellor":
        client = await bridge.counsellor("counsellor2")
    else:
        client = await bridge.officer("officer2")
    world.extra.append((client, world.cid))
    return client


async def unregistered(
    bridge: Bridge, cls: type[CounsellorClient] | type[OfficerClient], name: str
) -> CounsellorClient | OfficerClient:
    """A staff member that is logged in and connected but has not registered its device."""
    client: CounsellorClient | OfficerClient = await cls.login(
        bridge.url, name, bridge.passwords[name]
    )
    bridge.clients.append(client)
    await client.connect()
    return client


# --- "changes nothing" -------------------------------------------------------------------------


async def histories(readers: list[tuple[BridgeClient, str]]) -> list[Any]:
    """The raw ``history.fetch`` ack of every reader (an error ack is compared as well)."""
    return [
        await client.call_raw(
            "history.fetch", {"conversation_id": cid, "after_seq": 0, "limit": 500}
        )
        for client, cid in readers
    ]


def events_seen(clients: list[BridgeClient]) -> list[int]:
    """How many events each client has received so far, but for ``queue``: a loop of its own
    tells the count of waiting conversations up to half a second after the change that moved
    it (bridge/domain/queue_count.py), so one may land after any later step; a refusal that
    moved the count would show in the conversations' rows, compared beside these counts."""
    # Events arrive on the client's inbox in order, then move to ``received``: count both.
    return [
        sum(name != "queue" for name, _ in client.received)
        + sum(name != "queue" for name, _ in list(client._inbox._queue))
        for client in clients
    ]


# --- payloads made wrong on purpose -------------------------------------------------------------


def fetch(cid: str, **changes: Any) -> JSON:
    """A ``history.fetch`` payload from the start, with ``changes``."""
    return {"conversation_id": cid, "after_seq": 0} | changes


def resigned(client: BridgeClient, envelope: JSON, **changes: Any) -> JSON:
    """``envelope`` with ``changes`` applied and signed again by ``client``'s device key, so that
    the change is the only thing wrong with it. A change to ``...`` drops that field."""
    changed = {**envelope, **changes}
    changed = {k: v for k, v in changed.items() if v is not ...}
    changed["sig"] = client.keys.sign(changed)
    return changed


def forged(
    client: BridgeClient,
    victim: VictimClient,
    audience: list[str],
    *,
    kind: str = "message",
    epoch_id: str | None = None,
    signing_key: SigningKey | None = None,
    text: str = "onbevoegd",
) -> JSON:
    """A well-formed envelope by ``client``'s device to ``victim``'s conversation, whatever
    ``client`` knows of it (another victim, an officer that never joined): sealed to the victim's
    keys and to the current epoch, or to a made-up one (``epoch_id``, if given, is quoted)."""
    conv = victim.conversation
    epoch = conv.epoch or {
        "epoch_id": str(uuid.uuid4()),
        "public": crypto.ScopeKey.generate().public,
    }
    publics = {
        "victim": victim.keys.x25519,
        "care": conv.care_public,
        "investigation": epoch["public"],
    }
    return crypto.build_envelope(
        conversation_id=victim.conversation_id,
        client_msg_id=str(uuid.uuid4()),
        sender_role=client.role,
        device_id=str(client.device_id),
        kind=kind,
        audience=audience,
        epoch_id=(epoch_id or str(epoch["epoch_id"])) if "investigation" in audience else None,
        plaintext={"text": text, "sent_at": "2025-01-01T00:00:00.000Z"},
        recipients={name: str(publics[name]) for name in ("victim", *audience)},
        signing_key=signing_key or client.keys.signing,
    )


def with_keys(envelope: JSON, **changes: Any) -> JSON:
    """``envelope``'s sealed keys with ``changes`` (a change to ``...`` drops that key)."""
    keys = {**envelope["keys"], **changes}
    return {k: v for k, v in keys.items() if v is not ...}


def flip_ciphertext_byte(envelope: JSON) -> JSON:
    """``envelope`` with one bit of its ciphertext flipped, not signed again."""
    raw = bytearray(crypto.b64u_decode(envelope["ciphertext"]))
    raw[len(raw) // 2] ^= 0x01
    return {**envelope, "ciphertext": crypto.b64u_encode(bytes(raw))}


def sized(client: BridgeClient, cid: str, size: int) -> JSON:
    """An envelope whose compact JSON is ``size`` bytes or the smallest size above it."""
    length = 0
    while True:
        envelope = client.build("a" * length, audience=CARE, conversation_id=cid)
        if crypto.compact_json_size(envelope) >= size:
            return envelope
        length += max(1, (size - crypto.compact_json_size(envelope)) * 3 // 4 - 2)


async def grant_payload(
    victim: VictimClient,
    *,
    text: JSON | None = None,
    request_id: str | None = None,
    signing_key: SigningKey | None = None,
) -> JSON:
    """A correctly signed ``consent.grant`` payload for the victim's last prompt, quoting its text
    with ``text`` changes (signed over what it quotes). Without a prompt it answers a made-up
    request (or ``request_id``) and quotes the current informational text."""
    try:
        prompt = victim.prompt()
        current, rid = prompt["text"], request_id or str(prompt["request_id"])
    except LookupError:
        current, rid = await victim.consent_text("informational"), request_id or str(uuid.uuid4())
    quoted = {k: current[k] for k in ("version", "lang", "sha256")} | (text or {})
    choices = {"retain_for_case_file": False, "share_needs_note": True}
    scope = crypto.ScopeKey.generate()
    signed = crypto.signed_grant(
        request_id=rid, text=quoted, choices=choices, investigation_public=scope.public
    )
    return {
        "request_id": rid,
        "text": quoted,
        "choices": choices,
        "investigation_scope": scope.as_payload(await victim.org_public_key("avim")),
        "sig": crypto.sign_object(signed, signing_key or victim.keys.signing),
    }
