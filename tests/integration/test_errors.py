"""Every error code of PROTOCOL.md, over a real socket and HTTP, and that a refusal changes nothing.

Each refused call runs inside :func:`unchanged`: every table of the SQLite file, the history each
party fetches and the events each party has received are compared before and after the call. The
staff's own ``history.fetch`` is logged (``transcript.read``), so histories are fetched *before*
the database is read and *after* it is read again: the comparison is exact, with no exclusions.
(``rate_limited`` has its own tests.)
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pytest
from nacl.signing import SigningKey

from bridge import crypto
from bridge.client import (
    BridgeClient,
    CounsellorClient,
    OfficerClient,
    Refused,
    StaffClient,
    VictimClient,
)
from harness import (
    Bridge,
    db_rows,
    driegesprek,
    error_code,
    granted,
    picked_up,
    policy_text,
)

JSON = dict[str, Any]
BOTH = ["care", "investigation"]
CARE = ["care"]
LIMIT = 16 * 1024
T = TypeVar("T")


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
    def readers(self) -> list[tuple[BridgeClient, str]]:
        parties = [p for p in (self.victim, self.counsellor, self.officer) if p is not None]
        return [(p, self.cid) for p in parties] + self.extra

    @property
    def epoch_id(self) -> str:
        epoch = self.victim.conversation.epoch
        assert epoch is not None
        return str(epoch["epoch_id"])


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


def events_seen(readers: list[tuple[BridgeClient, str]]) -> list[int]:
    # Events arrive on the client's inbox in order, then move to ``received``: count both.
    return [len(client.received) + client._inbox.qsize() for client, _ in readers]


async def unchanged(world: World, action: Callable[[], Awaitable[T]]) -> T:
    """Run ``action`` (a call that must be refused) and assert that it changed nothing."""
    readers = world.readers
    histories_before = await histories(readers)  # staff reads are logged: fetch, then snapshot
    events_before = events_seen(readers)
    rows_before = db_rows(world.bridge)
    answer = await action()
    assert db_rows(world.bridge) == rows_before
    # Each reader's fetch is a round trip on its own socket: any event the refused call sent it
    # has arrived by the time its ack does.
    assert await histories(readers) == histories_before
    assert events_seen(readers) == events_before
    return answer


async def refused(world: World, client: BridgeClient, event: str, *args: object) -> str:
    """Send one event that must be refused; assert that it changed nothing; return its code."""
    return error_code(await unchanged(world, lambda: client.call_raw(event, *args)))


async def refused_by_client(world: World, action: Callable[[], Awaitable[Any]]) -> str:
    """Run a high-level client call that must raise Refused; assert nothing changed."""

    async def attempt() -> str:
        with pytest.raises(Refused) as refusal:
            await action()
        return refusal.value.code

    return await unchanged(world, attempt)


async def http(
    bridge: Bridge,
    method: str,
    path: str,
    *,
    body: object = None,
    data: bytes | None = None,
    token: str | None = None,
) -> tuple[int, Any]:
    """One raw HTTP request: ``(status, decoded JSON body)``."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if data is not None:
        headers["Content-Type"] = "application/json"
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, bridge.url + path, json=body, data=data, headers=headers
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


def http_error(answer: tuple[int, Any], status: int, code: str) -> None:
    got_status, body = answer
    assert got_status == status, answer
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# --- envelopes and grants made wrong on purpose -------------------------------------------------


def resigned(client: BridgeClient, envelope: JSON, **changes: Any) -> JSON:
    """``envelope`` with ``changes`` applied and signed again by ``client``'s device key, so that
    the change is the only thing wrong with it. A change to ``...`` drops that field."""
    changed = {**envelope, **changes}
    changed = {k: v for k, v in changed.items() if v is not ...}
    changed["sig"] = client.keys.sign(changed)
    return changed


def forged(client: BridgeClient, world: World, audience: list[str], **options: Any) -> JSON:
    """An envelope by ``client``'s device to ``world``'s conversation, which ``client`` may know
    nothing of (another victim, an officer that never joined): built from the victim's keys."""
    conv = world.victim.conversation
    publics = {
        "victim": world.victim.keys.x25519,
        "care": conv.care_public,
        "investigation": (conv.epoch or {}).get("public") or crypto.ScopeKey.generate().public,
    }
    epoch = options.pop("epoch_id", (conv.epoch or {}).get("epoch_id"))
    return crypto.build_envelope(
        conversation_id=world.cid,
        client_msg_id=str(uuid.uuid4()),
        sender_role=client.role,
        device_id=str(client.device_id),
        kind=options.pop("kind", "message"),
        audience=audience,
        epoch_id=epoch if "investigation" in audience else None,
        plaintext={"text": "onbevoegd", "sent_at": "2025-01-01T00:00:00.000Z"},
        recipients={name: str(publics[name]) for name in ("victim", *audience)},
        signing_key=options.pop("signing_key", client.keys.signing),
    )


def send(client: BridgeClient, envelope: JSON) -> Callable[[], Awaitable[Any]]:
    return lambda: client.call_raw("message.send", {"envelope": envelope})


async def grant_payload(
    victim: VictimClient,
    *,
    text: JSON | None = None,
    request_id: str | None = None,
    signing_key: SigningKey | None = None,
) -> JSON:
    """A ``consent.grant`` payload for the last prompt, quoting ``text`` changes if given."""
    prompt = victim.prompt()
    quoted = {k: prompt["text"][k] for k in ("version", "lang", "sha256")} | (text or {})
    choices = {"retain_for_case_file": False, "share_needs_note": True}
    scope = crypto.ScopeKey.generate()
    rid = request_id or prompt["request_id"]
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


def fetch(cid: str, **changes: Any) -> JSON:
    return {"conversation_id": cid, "after_seq": 0} | changes


# === invalid ====================================================================================

PAYLOADS: dict[str, Callable[[World], tuple[BridgeClient, str, tuple[object, ...]]]] = {
    "unknown field": lambda w: (w.victim, "history.fetch", (fetch(w.cid, colour="red"),)),
    "string where int": lambda w: (w.victim, "history.fetch", (fetch(w.cid, after_seq="1"),)),
    "float where int": lambda w: (w.victim, "history.fetch", (fetch(w.cid, after_seq=1.0),)),
    "float limit": lambda w: (w.counsellor, "history.fetch", (fetch(w.cid, limit=2.5),)),
    "bool where int": lambda w: (w.counsellor, "history.fetch", (fetch(w.cid, after_seq=True),)),
    "negative after_seq": lambda w: (w.victim, "history.fetch", (fetch(w.cid, after_seq=-1),)),
    "limit over 500": lambda w: (w.victim, "history.fetch", (fetch(w.cid, limit=501),)),
    "missing field": lambda w: (w.victim, "history.fetch", ({"conversation_id": w.cid},)),
    "missing purpose": lambda w: (
        w.counsellor,
        "bridge.propose",
        ({"conversation_id": w.cid},),
    ),
    "unknown purpose": lambda w: (
        w.counsellor,
        "bridge.propose",
        ({"conversation_id": w.cid, "purpose": "arrest"},),
    ),
    "unknown preference": lambda w: (
        w.counsellor,
        "bridge.propose",
        ({"conversation_id": w.cid, "purpose": "report", "preferences": {"age": 40}},),
    ),
    "unknown field on empty payload": lambda w: (w.counsellor, "queue.list", ({"all": True},)),
    "no payload": lambda w: (w.victim, "history.fetch", ()),
    "no payload on empty event": lambda w: (w.counsellor, "queue.list", ()),
    "several payloads": lambda w: (w.victim, "history.fetch", (fetch(w.cid), fetch(w.cid))),
    "binary payload": lambda w: (
        w.victim,
        "history.fetch",
        (json.dumps(fetch(w.cid)).encode(),),
    ),
    "null payload": lambda w: (w.victim, "history.fetch", (None,)),
    "list payload": lambda w: (w.victim, "history.fetch", ([fetch(w.cid)],)),
    "string payload": lambda w: (w.victim, "history.fetch", (json.dumps(fetch(w.cid)),)),
    "unknown event": lambda w: (w.victim, "bridge.destroy", ({"conversation_id": w.cid},)),
    "server event name": lambda w: (w.victim, "message", ({"conversation_id": w.cid},)),
    "event name of another case": lambda w: (w.victim, "History.Fetch", (fetch(w.cid),)),
}


@pytest.mark.parametrize("case", list(PAYLOADS))
async def test_malformed_event_is_invalid_and_changes_nothing(bridge: Bridge, case: str) -> None:
    world = await chatting(bridge)
    client, event, args = PAYLOADS[case](world)
    assert await refused(world, client, event, *args) == "invalid"


@pytest.mark.parametrize("event", ["connect", "disconnect"])
async def test_client_sent_connect_or_disconnect_is_invalid_and_changes_nothing(
    bridge: Bridge, event: str
) -> None:
    world = await chatting(bridge)
    # The victim tries to re-authenticate its socket as the counsellor.
    assert await refused(world, world.victim, event, {"token": world.counsellor.token}) == "invalid"
    # The socket is still the victim's, and still connected.
    assert await refused(world, world.victim, "queue.list", {}) == "forbidden"
    ack = await world.victim.call_raw("history.fetch", fetch(world.cid))
    assert ack["ok"] is True and len(ack["messages"]) == 2


def victim_envelope(w: World, scopes: list[str], **changes: Any) -> tuple[BridgeClient, JSON]:
    """A victim's envelope to ``scopes`` with ``changes`` (re-signed); a ``keys`` change may be a
    function of the keys as built."""
    envelope = w.victim.build("x", audience=scopes)
    if callable(changes.get("keys")):
        changes["keys"] = changes["keys"](envelope["keys"])
    return w.victim, resigned(w.victim, envelope, **changes)


ENVELOPES: dict[str, Callable[[World], tuple[BridgeClient, JSON]]] = {
    "unknown field": lambda w: victim_envelope(w, BOTH, colour="red"),
    "missing epoch_id": lambda w: victim_envelope(w, CARE, epoch_id=...),
    "missing sig": lambda w: (
        w.victim,
        {k: v for k, v in w.victim.build("x", audience=CARE).items() if k != "sig"},
    ),
    "string version": lambda w: victim_envelope(w, CARE, v="1"),
    # JCS has no floats, so this one cannot be signed: the schema refuses it first anyway.
    "float version": lambda w: (w.victim, {**w.victim.build("x", audience=CARE), "v": 1.0}),
    "audience not sorted": lambda w: victim_envelope(w, BOTH, audience=["investigation", "care"]),
    "investigation alone": lambda w: (w.victim, w.victim.build("x", audience=["investigation"])),
    "care twice": lambda w: victim_envelope(w, CARE, audience=["care", "care"]),
    "empty audience": lambda w: victim_envelope(w, CARE, audience=[]),
    "epoch_id with care only": lambda w: (
        w.victim,
        w.victim.build("x", audience=CARE, epoch_id=w.epoch_id),
    ),
    "no epoch_id with investigation": lambda w: (
        w.victim,
        w.victim.build("x", audience=BOTH, epoch_id=None),
    ),
    "needs_note to care only": lambda w: (
        w.counsellor,
        w.counsellor.build("x", audience=CARE, conversation_id=w.cid, kind="needs_note"),
    ),
    "extra key name": lambda w: victim_envelope(
        w, BOTH, keys=lambda k: {**k, "police": k["investigation"]}
    ),
    "key name instead of care": lambda w: victim_envelope(
        w, CARE, keys=lambda k: {"victim": k["victim"], "counsellor": k["care"]}
    ),
    "key that is not a string": lambda w: victim_envelope(
        w, CARE, keys=lambda k: {**k, "care": 42}
    ),
    "unknown kind": lambda w: victim_envelope(w, CARE, kind="whisper"),
    "short nonce": lambda w: victim_envelope(w, CARE, nonce=crypto.b64u_encode(bytes(23))),
    "client_msg_id not a uuid": lambda w: victim_envelope(w, CARE, client_msg_id="message-1"),
    "unknown sender role": lambda w: victim_envelope(
        w, CARE, sender={"role": "auditor", "device_id": w.victim.device_id}
    ),
}


@pytest.mark.parametrize("case", list(ENVELOPES))
async def test_malformed_envelope_is_invalid_and_changes_nothing(bridge: Bridge, case: str) -> None:
    world = await joined(bridge)
    client, envelope = ENVELOPES[case](world)
    assert await refused(world, client, "message.send", {"envelope": envelope}) == "invalid"


@pytest.mark.parametrize(
    "text",
    [
        {"version": "informational-nl-0"},
        {"version": "report-nl-1"},
        {"sha256": crypto.b64u_encode(crypto.sha256(b"een andere tekst"))},
    ],
    ids=["old version", "version of another purpose", "other hash"],
)
async def test_grant_quoting_a_text_that_is_not_current_is_invalid_and_changes_nothing(
    bridge: Bridge, text: JSON
) -> None:
    world = await proposed(bridge)
    payload = await grant_payload(world.victim, text=text)  # signed over what it quotes
    assert await refused(world, world.victim, "consent.grant", payload) == "invalid"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/api/v1/conversations", b"{not json"),
        ("/api/v1/conversations", b"[]"),
        ("/api/v1/conversations", b""),
        ("/api/v1/conversations", b'{"lang": "nl"}'),
        ("/api/v1/session", b"{not json"),
        ("/api/v1/session", b'{"username": "counsellor", "password": 12345678}'),
    ],
    ids=["not json", "array", "empty", "missing fields", "login not json", "login int password"],
)
async def test_malformed_http_body_is_400_invalid_and_changes_nothing(
    bridge: Bridge, path: str, data: bytes
) -> None:
    world = await chatting(bridge)
    http_error(
        await unchanged(world, lambda: http(bridge, "POST", path, data=data)), 400, "invalid"
    )


async def test_conversation_with_unknown_field_is_400_invalid_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await chatting(bridge)
    keys = crypto.DeviceKeys.generate()
    body = {
        "lang": "nl",
        "device": {"ed25519": keys.ed25519, "x25519": keys.x25519},
        "care_scope": crypto.ScopeKey.generate().as_payload(
            await world.victim.org_public_key("fier")
        ),
        "ip": "192.0.2.1",
    }
    answer = await unchanged(
        world, lambda: http(bridge, "POST", "/api/v1/conversations", body=body)
    )
    http_error(answer, 400, "invalid")
    del body["ip"]  # the same body without the unknown field is accepted
    status, _ = await http(bridge, "POST", "/api/v1/conversations", body=body)
    assert status == 201


@pytest.mark.parametrize("lang", ["de", "NL", ""])
async def test_consent_text_in_an_unknown_language_is_400_invalid(
    bridge: Bridge, lang: str
) -> None:
    world = await chatting(bridge)
    path = f"/api/v1/consent-texts/informational?lang={lang}"
    http_error(await unchanged(world, lambda: http(bridge, "GET", path)), 400, "invalid")


# === unauthenticated ============================================================================


@pytest.mark.parametrize(
    "token",
    [None, "", "not-a-token", secrets.token_urlsafe(32)],
    ids=["none", "empty", "garbage", "unknown"],
)
async def test_socket_connect_without_a_valid_token_is_unauthenticated(
    bridge: Bridge, token: str | None
) -> None:
    world = await chatting(bridge)
    stranger = VictimClient(bridge.url)
    bridge.clients.append(stranger)
    stranger.token = token

    async def connect() -> str:
        with pytest.raises(Refused) as refusal:
            await stranger.connect()
        return refusal.value.code

    assert await unchanged(world, connect) == "unauthenticated"


@pytest.mark.parametrize("token", [None, "", "not-a-token"], ids=["none", "empty", "garbage"])
@pytest.mark.parametrize("org", ["fier", "avim"])
async def test_sealed_key_without_a_valid_token_is_401(
    bridge: Bridge, org: str, token: str | None
) -> None:
    world = await chatting(bridge)
    path = f"/api/v1/orgs/{org}/sealed-key"
    answer = await unchanged(world, lambda: http(bridge, "GET", path, token=token))
    http_error(answer, 401, "unauthenticated")


async def test_login_failures_look_the_same_and_change_nothing(bridge: Bridge) -> None:
    world = await chatting(bridge)
    unknown = await unchanged(
        world,
        lambda: http(
            bridge, "POST", "/api/v1/session", body={"username": "nobody", "password": "x" * 12}
        ),
    )
    wrong = await unchanged(
        world,
        lambda: http(
            bridge,
            "POST",
            "/api/v1/session",
            body={"username": "counsellor", "password": "x" * 12},
        ),
    )
    http_error(unknown, 401, "unauthenticated")
    assert wrong == unknown


# === forbidden ==================================================================================


WRONG_ROLE: list[tuple[str, str, JSON]] = [
    ("victim", "bridge.propose", {"purpose": "report"}),
    ("victim", "bridge.end", {}),
    ("victim", "queue.list", {}),
    ("officer", "queue.list", {}),
    ("officer", "bridge.propose", {"purpose": "report"}),
    ("officer", "bridge.pause", {}),
    ("officer", "conversation.close", {}),
    ("counsellor", "invite.list", {}),
    ("counsellor", "consent.withdraw", {}),
    ("counsellor", "consent.decline", {"request_id": "x"}),
]


@pytest.mark.parametrize(("who", "event", "payload"), WRONG_ROLE)
async def test_event_of_another_role_is_forbidden_and_changes_nothing(
    bridge: Bridge, who: str, event: str, payload: JSON
) -> None:
    world = await joined(bridge)
    client: BridgeClient = getattr(world, who)
    if event not in ("queue.list", "invite.list", "consent.decline"):
        payload = {"conversation_id": world.cid, **payload}
    assert await refused(world, client, event, payload) == "forbidden"


async def test_device_register_by_the_victim_is_forbidden(bridge: Bridge) -> None:
    world = await chatting(bridge)
    registration = world.victim.keys.registration()
    assert await refused(world, world.victim, "device.register", registration) == "forbidden"


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("conversation.join", {}),
        ("history.fetch", {"after_seq": 0}),
        ("bridge.pause", {}),
        ("consent.withdraw", {}),
        ("conversation.close", {}),
    ],
)
async def test_victim_on_another_conversation_is_forbidden_and_changes_nothing(
    bridge: Bridge, event: str, payload: JSON
) -> None:
    world = await joined(bridge)
    other = await bridge.victim()
    world.extra.append((other, other.conversation_id))
    assert (
        await refused(world, other, event, {"conversation_id": world.cid, **payload}) == "forbidden"
    )


async def test_victim_sending_into_another_conversation_is_forbidden(bridge: Bridge) -> None:
    world = await chatting(bridge)
    other = await bridge.victim()
    world.extra.append((other, other.conversation_id))
    envelope = forged(other, world, CARE)
    assert error_code(await unchanged(world, send(other, envelope))) == "forbidden"


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("conversation.join", {}),
        ("history.fetch", {"after_seq": 0}),
        ("bridge.propose", {"purpose": "report"}),
        ("bridge.pause", {}),
        ("bridge.end", {}),
        ("conversation.close", {}),
    ],
)
async def test_second_counsellor_on_a_held_conversation_is_forbidden_and_changes_nothing(
    bridge: Bridge, event: str, payload: JSON
) -> None:
    world = await joined(bridge)
    second = await bridge.counsellor("counsellor2")
    world.extra.append((second, world.cid))
    assert (
        await refused(world, second, event, {"conversation_id": world.cid, **payload})
        == "forbidden"
    )


async def test_second_counsellor_sending_into_a_held_conversation_is_forbidden(
    bridge: Bridge,
) -> None:
    world = await chatting(bridge)
    second = await bridge.counsellor("counsellor2")
    world.extra.append((second, world.cid))
    assert error_code(await unchanged(world, send(second, forged(second, world, CARE)))) == (
        "forbidden"
    )


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("conversation.join", {}),
        ("history.fetch", {"after_seq": 0}),
        ("bridge.end", {}),
    ],
)
async def test_officer_on_a_conversation_it_never_joined_is_forbidden_and_changes_nothing(
    bridge: Bridge, event: str, payload: JSON
) -> None:
    world = await joined(bridge)
    stranger = await bridge.officer("officer2")
    world.extra.append((stranger, world.cid))
    assert (
        await refused(world, stranger, event, {"conversation_id": world.cid, **payload})
        == "forbidden"
    )


async def test_officer_sending_into_a_conversation_it_never_joined_is_forbidden(
    bridge: Bridge,
) -> None:
    world = await joined(bridge)
    stranger = await bridge.officer("officer2")
    world.extra.append((stranger, world.cid))
    envelope = forged(stranger, world, BOTH)
    assert error_code(await unchanged(world, send(stranger, envelope))) == "forbidden"


SENDERS: dict[str, Callable[[World], tuple[BridgeClient, JSON]]] = {
    "counsellor as the victim's device": lambda w: (
        w.counsellor,
        resigned(
            w.counsellor,
            w.counsellor.build("x", audience=CARE, conversation_id=w.cid),
            sender={"role": "counsellor", "device_id": w.victim.device_id},
        ),
    ),
    "counsellor as the victim": lambda w: (
        w.counsellor,
        resigned(
            w.counsellor,
            w.counsellor.build("x", audience=CARE, conversation_id=w.cid),
            sender={"role": "victim", "device_id": w.victim.device_id},
        ),
    ),
    "victim as the counsellor's device": lambda w: (
        w.victim,
        resigned(
            w.victim,
            w.victim.build("x", audience=CARE),
            sender={"role": "victim", "device_id": w.counsellor.device_id},
        ),
    ),
    "officer as the counsellor": lambda w: (
        w.officer,
        resigned(
            w.officer,
            w.officer.build("x", audience=BOTH, conversation_id=w.cid),
            sender={"role": "counsellor", "device_id": w.officer.device_id},
        ),
    ),
}


@pytest.mark.parametrize("case", list(SENDERS))
async def test_envelope_from_another_device_than_the_socket_is_forbidden_and_changes_nothing(
    bridge: Bridge, case: str
) -> None:
    world = await joined(bridge)
    client, envelope = SENDERS[case](world)
    assert error_code(await unchanged(world, send(client, envelope))) == "forbidden"


async def test_needs_note_the_grant_did_not_allow_is_forbidden_and_changes_nothing(
    bridge: Bridge,
) -> None:
    victim, counsellor, _ = await granted(bridge, share_needs_note=False)
    world = World(bridge, victim, counsellor)
    await counsellor.next_event("bridge.state", where=lambda e: e["state"] == "granted")
    envelope = counsellor.build("x", audience=BOTH, conversation_id=world.cid, kind="needs_note")
    assert envelope["epoch_id"] == world.epoch_id
    assert error_code(await unchanged(world, send(counsellor, envelope))) == "forbidden"


async def test_needs_note_from_the_victim_is_forbidden_and_changes_nothing(bridge: Bridge) -> None:
    victim, counsellor, _ = await granted(bridge)
    world = World(bridge, victim, counsellor)
    envelope = victim.build("x", audience=BOTH, kind="needs_note")
    assert error_code(await unchanged(world, send(victim, envelope))) == "forbidden"
    # The counsellor's needs_note is accepted in the same state: the refusal was the role's.
    await counsellor.next_event("bridge.state", where=lambda e: e["state"] == "granted")
    assert await counsellor.send(world.cid, "Rustig praten.", kind="needs_note") > 0


@pytest.mark.parametrize("sender", ["victim", "officer"])
async def test_needs_note_from_anyone_but_the_counsellor_is_forbidden_while_joined(
    bridge: Bridge, sender: str
) -> None:
    world = await joined(bridge)
    client: BridgeClient = getattr(world, sender)
    envelope = client.build("x", audience=BOTH, conversation_id=world.cid, kind="needs_note")
    assert error_code(await unchanged(world, send(client, envelope))) == "forbidden"


@pytest.mark.parametrize("org", ["fier", "avim"])
async def test_victim_token_on_the_staff_only_sealed_key_route_is_403(
    bridge: Bridge, org: str
) -> None:
    world = await chatting(bridge)
    path = f"/api/v1/orgs/{org}/sealed-key"
    answer = await unchanged(world, lambda: http(bridge, "GET", path, token=world.victim.token))
    http_error(answer, 403, "forbidden")


@pytest.mark.parametrize(
    ("user", "org"),
    [("counsellor", "avim"), ("officer", "fier"), ("auditor", "fier"), ("auditor", "avim")],
)
async def test_staff_of_another_org_on_the_sealed_key_route_is_403(
    bridge: Bridge, user: str, org: str
) -> None:
    world = await chatting(bridge)
    login = {"username": user, "password": bridge.passwords[user]}
    status, session = await http(bridge, "POST", "/api/v1/session", body=login)
    assert status == 200
    path = f"/api/v1/orgs/{org}/sealed-key"
    answer = await unchanged(world, lambda: http(bridge, "GET", path, token=session["token"]))
    http_error(answer, 403, "forbidden")


async def test_history_share_under_the_default_policy_is_forbidden_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await joined(bridge)
    assert await refused_by_client(world, lambda: world.victim.share_history([1])) == "forbidden"


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("device.register", None),
        ("conversation.join", {}),
        ("history.fetch", {"after_seq": 0}),
        ("queue.list", None),
    ],
)
async def test_auditor_in_a_conversation_is_forbidden_and_changes_nothing(
    bridge: Bridge, event: str, payload: JSON | None
) -> None:
    world = await chatting(bridge)
    auditor = await StaffClient.login(bridge.url, "auditor", bridge.passwords["auditor"])
    bridge.clients.append(auditor)
    await auditor.connect()
    if event == "device.register":
        payload = auditor.keys.registration()
    elif payload is None:
        payload = {}
    else:
        payload = {"conversation_id": world.cid, **payload}
    assert await refused(world, auditor, event, payload) == "forbidden"


# === not_found ==================================================================================


async def test_unknown_conversation_is_not_found_and_changes_nothing(bridge: Bridge) -> None:
    world = await joined(bridge)
    assert world.officer is not None
    nowhere = {"conversation_id": str(uuid.uuid4())}
    c = world.counsellor
    assert await refused(world, c, "conversation.join", nowhere) == "not_found"
    assert await refused(world, c, "history.fetch", {**nowhere, "after_seq": 0}) == "not_found"
    assert (
        await refused(world, c, "bridge.propose", {**nowhere, "purpose": "report"}) == "not_found"
    )
    assert await refused(world, world.victim, "bridge.pause", nowhere) == "not_found"
    assert await refused(world, world.officer, "bridge.end", nowhere) == "not_found"
    envelope = resigned(c, c.build("x", audience=CARE, conversation_id=world.cid), **nowhere)
    assert error_code(await unchanged(world, send(c, envelope))) == "not_found"


async def test_unknown_request_is_not_found_and_changes_nothing(bridge: Bridge) -> None:
    world = await proposed(bridge)
    nothing = str(uuid.uuid4())
    assert await refused(world, world.victim, "consent.decline", {"request_id": nothing}) == (
        "not_found"
    )
    payload = await grant_payload(world.victim, request_id=nothing)
    assert await refused(world, world.victim, "consent.grant", payload) == "not_found"


async def test_unknown_invite_is_not_found_and_changes_nothing(bridge: Bridge) -> None:
    officer = await bridge.officer()
    victim, counsellor, _ = await granted(bridge)
    world = World(bridge, victim, counsellor)
    await officer.next_event("invite")
    world.extra.append((officer, world.cid))
    nothing = {"invite_id": str(uuid.uuid4())}
    assert await refused(world, officer, "invite.accept", nothing) == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orgs/police/key",
        "/api/v1/orgs/FIER/key",
        "/api/v1/consent-texts/arrest?lang=nl",
        "/api/v1/nothing",
    ],
)
async def test_unknown_http_resource_is_404_not_found(bridge: Bridge, path: str) -> None:
    world = await chatting(bridge)
    http_error(await unchanged(world, lambda: http(bridge, "GET", path)), 404, "not_found")


# === wrong_state ================================================================================


@pytest.mark.parametrize(
    ("role", "event", "payload"),
    [
        ("counsellor", "queue.list", {}),
        ("counsellor", "conversation.join", {}),
        ("counsellor", "history.fetch", {"after_seq": 0}),
        ("officer", "invite.list", {}),
    ],
)
async def test_staff_event_before_device_register_is_wrong_state_and_changes_nothing(
    bridge: Bridge, role: str, event: str, payload: JSON
) -> None:
    victim = await bridge.victim()  # waiting: a join would pick it up
    await victim.send("Is daar iemand?")
    counsellor = await bridge.counsellor()  # registered, but never joins
    world = World(bridge, victim, counsellor)
    cls, name = (
        (CounsellorClient, "counsellor2") if role == "counsellor" else (OfficerClient, "officer")
    )
    client = await unregistered(bridge, cls, name)
    world.extra.append((client, world.cid))
    if event != "queue.list" and event != "invite.list":
        payload = {"conversation_id": world.cid, **payload}
    assert await refused(world, client, event, payload) == "wrong_state"


@pytest.mark.parametrize("scenario", ["proposed", "granted", "joined"])
async def test_propose_while_a_bridge_is_in_force_is_wrong_state_and_changes_nothing(
    bridge: Bridge, scenario: str
) -> None:
    if scenario == "proposed":
        world = await proposed(bridge)
    elif scenario == "granted":
        victim, counsellor, _ = await granted(bridge)
        world = World(bridge, victim, counsellor)
    else:
        world = await joined(bridge)
    payload = {"conversation_id": world.cid, "purpose": "report"}
    assert await refused(world, world.counsellor, "bridge.propose", payload) == "wrong_state"


@pytest.mark.parametrize("scenario", ["no bridge", "proposed", "joined"])
@pytest.mark.parametrize("who", ["victim", "counsellor"])
async def test_resume_when_not_paused_is_wrong_state_and_changes_nothing(
    bridge: Bridge, scenario: str, who: str
) -> None:
    world = await {"no bridge": chatting, "proposed": proposed, "joined": joined}[scenario](bridge)
    client: BridgeClient = getattr(world, who)
    assert await refused(world, client, "bridge.resume", {"conversation_id": world.cid}) == (
        "wrong_state"
    )


@dataclass
class Connected(World):
    """A world whose counsellor has dropped out: only the connected parties are readers."""

    @property
    def readers(self) -> list[tuple[BridgeClient, str]]:
        return [r for r in super().readers if r[0] is not self.counsellor]


async def test_resume_during_a_counsellor_away_pause_is_wrong_state(bridge: Bridge) -> None:
    world = await joined(bridge)
    assert world.officer is not None
    await world.counsellor.disconnect()
    for party in (world.victim, world.officer):
        await party.next_event(
            "bridge.state",
            where=lambda e: e["state"] == "paused" and e.get("reason") == "counsellor_away",
        )
    away = Connected(bridge, world.victim, world.counsellor, world.officer)
    ref = {"conversation_id": world.cid}
    assert await refused(away, world.victim, "bridge.resume", ref) == "wrong_state"


@pytest.mark.parametrize("sender", ["victim", "counsellor", "officer"])
async def test_investigation_audience_while_paused_is_wrong_state_and_changes_nothing(
    bridge: Bridge, sender: str
) -> None:
    world = await joined(bridge)
    await world.victim.pause()
    assert world.officer is not None
    for party in (world.counsellor, world.officer):
        await party.next_event("bridge.state", where=lambda e: e["state"] == "paused")
    client: BridgeClient = getattr(world, sender)
    envelope = client.build("x", audience=BOTH, conversation_id=world.cid, epoch_id=world.epoch_id)
    assert error_code(await unchanged(world, send(client, envelope))) == "wrong_state"


async def test_grant_after_decline_is_wrong_state_and_changes_nothing(bridge: Bridge) -> None:
    world = await proposed(bridge)
    payload = await grant_payload(world.victim)
    await world.victim.decline()
    await world.counsellor.next_event("bridge.state", where=lambda e: e["state"] == "declined")
    assert await refused(world, world.victim, "consent.grant", payload) == "wrong_state"
    request = {"request_id": payload["request_id"]}
    assert await refused(world, world.victim, "consent.decline", request) == "wrong_state"


async def test_grant_twice_is_wrong_state_and_changes_nothing(bridge: Bridge) -> None:
    victim, counsellor, _ = await granted(bridge)
    world = World(bridge, victim, counsellor)
    payload = await grant_payload(victim)
    assert await refused(world, victim, "consent.grant", payload) == "wrong_state"


CLOSED: dict[str, Callable[[World], tuple[BridgeClient, str, JSON]]] = {
    "victim message": lambda w: (
        w.victim,
        "message.send",
        {"envelope": w.victim.build("x", audience=CARE)},
    ),
    "counsellor message": lambda w: (
        w.counsellor,
        "message.send",
        {"envelope": w.counsellor.build("x", audience=CARE, conversation_id=w.cid)},
    ),
    "propose": lambda w: (
        w.counsellor,
        "bridge.propose",
        {"conversation_id": w.cid, "purpose": "report"},
    ),
    "pause": lambda w: (w.victim, "bridge.pause", {"conversation_id": w.cid}),
    "close again": lambda w: (w.victim, "conversation.close", {"conversation_id": w.cid}),
    "counsellor join": lambda w: (w.counsellor, "conversation.join", {"conversation_id": w.cid}),
    "victim join": lambda w: (w.victim, "conversation.join", {"conversation_id": w.cid}),
}


@pytest.mark.parametrize("case", list(CLOSED))
async def test_event_on_a_closed_conversation_is_wrong_state_and_changes_nothing(
    bridge: Bridge, case: str
) -> None:
    world = await chatting(bridge)
    await world.victim.close()
    await world.counsellor.next_event("conversation.closed")
    client, event, payload = CLOSED[case](world)
    assert await refused(world, client, event, payload) == "wrong_state"


# === no_consent =================================================================================


@pytest.mark.parametrize("scenario", ["no bridge", "proposed", "declined"])
@pytest.mark.parametrize("sender", ["victim", "counsellor"])
async def test_investigation_audience_without_consent_is_no_consent_and_changes_nothing(
    bridge: Bridge, scenario: str, sender: str
) -> None:
    world = await (chatting if scenario == "no bridge" else proposed)(bridge)
    if scenario == "declined":
        await world.victim.decline()
        await world.counsellor.next_event("bridge.state", where=lambda e: e["state"] == "declined")
    client: BridgeClient = getattr(world, sender)
    envelope = forged(client, world, BOTH, epoch_id=str(uuid.uuid4()))
    assert error_code(await unchanged(world, send(client, envelope))) == "no_consent"


async def withdrawn(bridge: Bridge) -> tuple[World, JSON]:
    """A driegesprek whose consent the victim withdrew; also an envelope the officer built
    beforehand, under the epoch it joined."""
    world = await joined(bridge)
    assert world.officer is not None
    before = world.officer.build("x", audience=BOTH, conversation_id=world.cid)
    await world.victim.withdraw()
    for party in (world.counsellor, world.officer):
        await party.next_event("bridge.state", where=lambda e: e["state"] == "ended")
    return world, before


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("history.fetch", {"after_seq": 0}),
        ("bridge.end", {}),
        ("conversation.join", {}),
    ],
)
async def test_officer_event_after_withdrawal_is_no_consent_and_changes_nothing(
    bridge: Bridge, event: str, payload: JSON
) -> None:
    world, _ = await withdrawn(bridge)
    assert world.officer is not None
    ref = {"conversation_id": world.cid, **payload}
    assert await refused(world, world.officer, event, ref) == "no_consent"


@pytest.mark.parametrize("built", ["before", "after"])
async def test_officer_message_after_withdrawal_is_no_consent_and_changes_nothing(
    bridge: Bridge, built: str
) -> None:
    world, before = await withdrawn(bridge)
    officer = world.officer
    assert officer is not None
    envelope = (
        before
        if built == "before"
        else officer.build(
            "x", audience=BOTH, conversation_id=world.cid, epoch_id=before["epoch_id"]
        )
    )
    assert error_code(await unchanged(world, send(officer, envelope))) == "no_consent"


@pytest.mark.parametrize("sender", ["victim", "counsellor"])
async def test_investigation_audience_after_withdrawal_is_no_consent(
    bridge: Bridge, sender: str
) -> None:
    world, before = await withdrawn(bridge)
    client: BridgeClient = getattr(world, sender)
    envelope = client.build(
        "x", audience=BOTH, conversation_id=world.cid, epoch_id=before["epoch_id"]
    )
    assert error_code(await unchanged(world, send(client, envelope))) == "no_consent"


# === bad_signature ==============================================================================


def _flip_ciphertext_byte(envelope: JSON) -> JSON:
    raw = bytearray(crypto.b64u_decode(envelope["ciphertext"]))
    raw[len(raw) // 2] ^= 0x01
    return {**envelope, "ciphertext": crypto.b64u_encode(bytes(raw))}


SIGNATURES: dict[str, Callable[[BridgeClient, JSON], JSON]] = {
    "signed by another key": lambda c, e: {
        **e,
        "sig": crypto.sign_object(e, SigningKey.generate()),
    },
    "ciphertext byte changed after signing": lambda c, e: _flip_ciphertext_byte(e),
    "client_msg_id changed after signing": lambda c, e: {**e, "client_msg_id": str(uuid.uuid4())},
    "nonce changed after signing": lambda c, e: {
        **e,
        "nonce": crypto.b64u_encode(bytes(24)),
    },
    "signature of another envelope": lambda c, e: {
        **e,
        "sig": c.build("y", audience=e["audience"], conversation_id=e["conversation_id"])["sig"],
    },
}


@pytest.mark.parametrize("case", list(SIGNATURES))
@pytest.mark.parametrize("sender", ["victim", "counsellor", "officer"])
async def test_envelope_with_a_bad_signature_is_bad_signature_and_changes_nothing(
    bridge: Bridge, case: str, sender: str
) -> None:
    world = await joined(bridge)
    client: BridgeClient = getattr(world, sender)
    envelope = SIGNATURES[case](client, client.build("x", audience=BOTH, conversation_id=world.cid))
    assert error_code(await unchanged(world, send(client, envelope))) == "bad_signature"


async def test_grant_signed_by_another_key_is_bad_signature_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await proposed(bridge)
    payload = await grant_payload(world.victim, signing_key=SigningKey.generate())
    assert await refused(world, world.victim, "consent.grant", payload) == "bad_signature"


async def test_grant_whose_choices_differ_from_the_signed_ones_is_bad_signature(
    bridge: Bridge,
) -> None:
    world = await proposed(bridge)
    payload = await grant_payload(world.victim)
    payload["choices"] = {**payload["choices"], "retain_for_case_file": True}
    assert await refused(world, world.victim, "consent.grant", payload) == "bad_signature"


async def test_device_register_with_a_bad_signature_is_bad_signature_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await chatting(bridge)
    client = await unregistered(bridge, CounsellorClient, "counsellor2")
    other = crypto.DeviceKeys.generate()
    payload = {**client.keys.registration(), "sig": other.registration()["sig"]}
    assert await refused(world, client, "device.register", payload) == "bad_signature"
    # Still unregistered: a staff event is refused as before.
    assert await refused(world, client, "queue.list", {}) == "wrong_state"


@pytest.mark.policy(policy_text(victim_may_share=True))
async def test_history_share_signed_by_another_key_is_bad_signature(bridge: Bridge) -> None:
    world = await joined(bridge)
    victim, conv = world.victim, world.victim.conversation
    assert conv.epoch is not None
    await victim.history()
    content_key = crypto.envelope_content_key(conv.messages[1].envelope, "victim", victim.keys.box)
    payload: JSON = {
        "conversation_id": world.cid,
        "epoch_id": world.epoch_id,
        "items": [{"seq": 1, "key": crypto.seal(content_key, conv.epoch["public"])}],
    }
    payload["sig"] = crypto.sign_object(payload, SigningKey.generate())
    assert await refused(world, victim, "history.share", payload) == "bad_signature"


# === bad_keys ===================================================================================


def _keys(envelope: JSON, **changes: Any) -> JSON:
    keys = {**envelope["keys"], **changes}
    return {k: v for k, v in keys.items() if v is not ...}


BAD_KEYS: dict[str, tuple[list[str], Callable[[JSON], JSON]]] = {
    "missing investigation key": (BOTH, lambda e: _keys(e, investigation=...)),
    "missing care key": (BOTH, lambda e: _keys(e, care=...)),
    "missing victim key": (CARE, lambda e: _keys(e, victim=...)),
    "no keys": (CARE, lambda e: {}),
    "extra investigation key": (CARE, lambda e: _keys(e, investigation=e["keys"]["care"])),
    "sealed key one byte short": (
        CARE,
        lambda e: _keys(e, care=crypto.b64u_encode(crypto.b64u_decode(e["keys"]["care"])[:-1])),
    ),
    "sealed key one byte long": (
        BOTH,
        lambda e: _keys(
            e, investigation=crypto.b64u_encode(crypto.b64u_decode(e["keys"]["care"]) + b"\0")
        ),
    ),
    "raw key instead of a sealed one": (
        CARE,
        lambda e: _keys(e, victim=crypto.b64u_encode(bytes(32))),
    ),
}


@pytest.mark.parametrize("case", list(BAD_KEYS))
async def test_keys_not_exactly_those_of_the_audience_are_bad_keys_and_change_nothing(
    bridge: Bridge, case: str
) -> None:
    world = await joined(bridge)
    audience, change = BAD_KEYS[case]
    envelope = world.victim.build("x", audience=audience)
    envelope = resigned(world.victim, envelope, keys=change(envelope))
    assert error_code(await unchanged(world, send(world.victim, envelope))) == "bad_keys"


# === too_large ==================================================================================


def sized(client: BridgeClient, cid: str, size: int) -> JSON:
    """An envelope whose compact JSON is ``size`` bytes or the smallest size above it."""
    length = 0
    while True:
        envelope = client.build("a" * length, audience=CARE, conversation_id=cid)
        if crypto.compact_json_size(envelope) >= size:
            return envelope
        length += max(1, (size - crypto.compact_json_size(envelope)) * 3 // 4 - 2)


async def test_envelope_over_16_kib_is_too_large_and_changes_nothing(bridge: Bridge) -> None:
    world = await joined(bridge)
    envelope = sized(world.victim, world.cid, LIMIT + 1)
    assert LIMIT < crypto.compact_json_size(envelope) <= LIMIT + 4
    assert error_code(await unchanged(world, send(world.victim, envelope))) == "too_large"
    huge = sized(world.counsellor, world.cid, 2 * LIMIT)
    assert error_code(await unchanged(world, send(world.counsellor, huge))) == "too_large"


async def test_envelope_limit_is_measured_on_compact_json(bridge: Bridge) -> None:
    world = await chatting(bridge)
    envelope = sized(world.victim, world.cid, LIMIT - 16)
    assert crypto.compact_json_size(envelope) <= LIMIT
    assert len(json.dumps(envelope).encode()) > LIMIT  # with spaces it would be too large
    assert await world.victim.post(envelope) > 0


async def test_http_body_over_64_kib_is_413_too_large_and_changes_nothing(bridge: Bridge) -> None:
    world = await chatting(bridge)
    data = json.dumps({"lang": "nl", "padding": "a" * (64 * 1024)}).encode()
    answer = await unchanged(
        world, lambda: http(bridge, "POST", "/api/v1/conversations", data=data)
    )
    http_error(answer, 413, "too_large")


# === conflict ===================================================================================


async def test_same_client_msg_id_with_another_envelope_is_conflict_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await chatting(bridge)
    victim = world.victim
    first = victim.build("Eerste versie.", audience=CARE)
    seq = await victim.post(first)
    # An identical resend is not a conflict: the same seq, nothing new.
    assert await unchanged(world, lambda: victim.post(first)) == seq
    second = victim.build("Tweede versie.", audience=CARE, client_msg_id=first["client_msg_id"])
    assert error_code(await unchanged(world, send(victim, second))) == "conflict"
    by_counsellor = world.counsellor.build(
        "Ook anders.",
        audience=CARE,
        conversation_id=world.cid,
        client_msg_id=first["client_msg_id"],
    )
    assert error_code(await unchanged(world, send(world.counsellor, by_counsellor))) == "conflict"


# === internal ===================================================================================


def rename_table(bridge: Bridge, old: str, new: str) -> None:
    with contextlib.closing(
        sqlite3.connect(bridge.data_dir / "bridge.db", timeout=10, isolation_level=None)
    ) as db:
        db.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')


INTERNAL: dict[str, tuple[str, Callable[[World], Awaitable[Any]]]] = {
    "message.send without messages": (
        "messages",
        lambda w: w.victim.call_raw(
            "message.send", {"envelope": w.victim.build("x", audience=CARE)}
        ),
    ),
    "bridge.propose without log_entries": (
        "log_entries",
        lambda w: w.counsellor.call_raw(
            "bridge.propose", {"conversation_id": w.cid, "purpose": "report"}
        ),
    ),
    "conversation.close without participants": (
        "participants",
        lambda w: w.victim.call_raw("conversation.close", {"conversation_id": w.cid}),
    ),
}


@pytest.mark.parametrize("case", list(INTERNAL))
async def test_database_failure_is_internal_and_changes_nothing(bridge: Bridge, case: str) -> None:
    world = await chatting(bridge)
    table, action = INTERNAL[case]

    async def broken() -> Any:
        rename_table(bridge, table, f"{table}_away")
        try:
            return await action(world)
        except TimeoutError:
            return "no ack"  # fails error_code below, after the state has been compared
        finally:
            rename_table(bridge, f"{table}_away", table)

    for party in (world.victim, world.counsellor):
        party.ack_timeout = 3.0

    ack = await unchanged(world, broken)
    assert error_code(ack) == "internal"
    assert "Traceback" not in ack["error"]["message"] and table not in ack["error"]["message"]
    # The server is not stuck: with the table back, the same kind of call goes through.
    assert (await action(world))["ok"] is True


# === validation order (PROTOCOL.md, "Details every client relies on") ===========================


async def test_invalid_comes_before_forbidden(bridge: Bridge) -> None:
    world = await chatting(bridge)
    assert await refused(world, world.victim, "queue.list", {"all": True}) == "invalid"


async def test_too_large_comes_before_not_found(bridge: Bridge) -> None:
    world = await chatting(bridge)
    envelope = sized(world.victim, world.cid, LIMIT + 1)
    envelope = resigned(world.victim, envelope, conversation_id=str(uuid.uuid4()))
    assert error_code(await unchanged(world, send(world.victim, envelope))) == "too_large"


async def test_forbidden_comes_before_wrong_state(bridge: Bridge) -> None:
    world = await chatting(bridge)
    await world.victim.close()
    second = await bridge.counsellor("counsellor2")
    ref = {"conversation_id": world.cid, "purpose": "report"}
    assert await refused(world, second, "bridge.propose", ref) == "forbidden"


async def test_wrong_state_comes_before_bad_signature_and_bad_keys(bridge: Bridge) -> None:
    world = await joined(bridge)
    await world.victim.pause()
    await world.counsellor.next_event("bridge.state", where=lambda e: e["state"] == "paused")
    envelope = world.victim.build("x", audience=BOTH)
    envelope = {**envelope, "keys": _keys(envelope, investigation=...)}  # unsigned change
    assert error_code(await unchanged(world, send(world.victim, envelope))) == "wrong_state"


async def test_bad_signature_comes_before_conflict(bridge: Bridge) -> None:
    world = await chatting(bridge)
    first = world.victim.build("Eerste.", audience=CARE)
    await world.victim.post(first)
    other = world.victim.build("Ander.", audience=CARE, client_msg_id=first["client_msg_id"])
    other = _flip_ciphertext_byte(other)
    assert error_code(await unchanged(world, send(world.victim, other))) == "bad_signature"
