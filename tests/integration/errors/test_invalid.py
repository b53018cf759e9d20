"""``invalid`` (schema, type, unknown field), over a real socket and HTTP; every refusal changes
nothing.

PROTOCOL.md: types are strict, an unknown field is ``invalid``, an event with no payload, several
payloads or a binary payload is ``invalid``, and so are client-sent ``connect``/``disconnect``, an
envelope that breaks its schema and a grant quoting a consent text that is not the current one. A
malformed HTTP body is answered 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bridge import crypto
from bridge.client import BridgeClient
from harness import (
    BOTH,
    CARE,
    JSON,
    ON_SHARED_WORLD,
    Bridge,
    World,
    chatting,
    fetch,
    grant_payload,
    http,
    http_error,
    resigned,
)

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


@ON_SHARED_WORLD
@pytest.mark.parametrize("case", list(PAYLOADS))
async def test_malformed_event_is_invalid_and_changes_nothing(
    chatting_world: World, case: str
) -> None:
    world = chatting_world
    client, event, args = PAYLOADS[case](world)
    assert await world.refused(client, event, *args) == "invalid"


@pytest.mark.parametrize("event", ["connect", "disconnect"])
async def test_client_sent_connect_or_disconnect_is_invalid_and_changes_nothing(
    bridge: Bridge, event: str
) -> None:
    world = await chatting(bridge)
    # The victim tries to re-authenticate its socket as the counsellor.
    assert await world.refused(world.victim, event, {"token": world.counsellor.token}) == "invalid"
    # The socket is still the victim's, and still connected.
    assert await world.refused(world.victim, "queue.list", {}) == "forbidden"
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


@ON_SHARED_WORLD
@pytest.mark.parametrize("case", list(ENVELOPES))
async def test_malformed_envelope_is_invalid_and_changes_nothing(
    joined_world: World, case: str
) -> None:
    world = joined_world
    client, envelope = ENVELOPES[case](world)
    assert await world.refused(client, "message.send", {"envelope": envelope}) == "invalid"


@ON_SHARED_WORLD
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
    proposed_world: World, text: JSON
) -> None:
    world = proposed_world
    payload = await grant_payload(world.victim, text=text)  # signed over what it quotes
    assert await world.refused(world.victim, "consent.grant", payload) == "invalid"


@ON_SHARED_WORLD
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
    chatting_world: World, path: str, data: bytes
) -> None:
    world = chatting_world
    bridge = world.bridge
    http_error(await world.unchanged(lambda: http(bridge, "POST", path, data=data)), 400, "invalid")


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
    answer = await world.unchanged(lambda: http(bridge, "POST", "/api/v1/conversations", body=body))
    http_error(answer, 400, "invalid")
    del body["ip"]  # the same body without the unknown field is accepted
    status, _ = await http(bridge, "POST", "/api/v1/conversations", body=body)
    assert status == 201


@ON_SHARED_WORLD
@pytest.mark.parametrize("lang", ["de", "NL", ""])
async def test_consent_text_in_an_unknown_language_is_400_invalid_and_changes_nothing(
    chatting_world: World, lang: str
) -> None:
    world = chatting_world
    bridge = world.bridge
    path = f"/api/v1/consent-texts/informational?lang={lang}"
    http_error(await world.unchanged(lambda: http(bridge, "GET", path)), 400, "invalid")
