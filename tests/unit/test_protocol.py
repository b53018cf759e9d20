"""Validation at the edge (bridge/protocol.py) against PROTOCOL.md, "Encoding", "The envelope"
and "Socket.IO events".

One example payload per client event is written out below, as the Matrix spec keeps one example
per event schema; each example must decode, and each mutation of it must be refused.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest

from bridge.errors import Invalid, TooLarge
from bridge.protocol import (
    EVENTS,
    EVENTS_BY_NAME,
    ConversationCreate,
    MessageSend,
    SessionCreate,
    decode_body,
    decode_event,
)

# b64u without padding (PROTOCOL.md, "Encoding") of 32, 64, 24 and 80 (a sealed 32-byte key) bytes.
KEY_A = "guBwN4yHh_5RvXAhFpKkmVsLa6gFgIziQ59iB8q4SYs"
KEY_B = "3etTV9nWAqYwy2yKD0kHRbiUp3GofdBFYLqMlGk9Opc"
DIGEST = "dTRL4Np8nK_Uge5qc67b6DqG9u9ek9veEG8Qq4YaVNI"
SIG = "HJTKbUQ05PEIzqUw23Z-JKV-jYBtf74be1fnoVpHCcujlMcWYpF6GuCe85RBSvgaaEJjqEAYm6-zm8DmTzmTrQ"
NONCE = "BNvJongdCN0xGFzC1E0JKLQGPpbsVX_W"
SEALED = (
    "ZQX5OHTGUidhXzFPbMa2vaZ5pcb77VAznV63kn0MfsTXwm83ss6sJfQe5xWXKoJBHzPAu7DYGmwUu5fuu2CdSBBhjWNrk0"
    "sayjm7hLCyaQo"
)
CIPHERTEXT = "HmWYJOIAQl46EUL13n46wHXvhdoxf2F5ncSCQek0Iy5YhdlGJILFAA"

ENVELOPE: dict[str, Any] = {
    "v": 1,
    "conversation_id": "c-7d41",
    "client_msg_id": "0557e927-63ec-4f2e-8f23-f63339715965",
    "sender": {"role": "victim", "device_id": "d-19"},
    "kind": "message",
    "audience": ["care"],
    "epoch_id": None,
    "nonce": NONCE,
    "ciphertext": CIPHERTEXT,
    "keys": {"victim": SEALED, "care": SEALED},
    "sig": SIG,
}
BRIDGED = {
    **ENVELOPE,
    "audience": ["care", "investigation"],
    "epoch_id": "e-2",
    "keys": {"victim": SEALED, "care": SEALED, "investigation": SEALED},
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "device.register": {"ed25519": KEY_A, "x25519": KEY_B, "sig": SIG},
    "queue.list": {},
    "conversation.join": {"conversation_id": "c-7d41"},
    "message.send": {"envelope": ENVELOPE},
    "history.fetch": {"conversation_id": "c-7d41", "after_seq": 0, "limit": 100},
    "bridge.propose": {
        "conversation_id": "c-7d41",
        "purpose": "informational",
        "preferences": {"officer_gender": "female", "same_officer": False, "region": "Limburg"},
    },
    "consent.grant": {
        "request_id": "r-5",
        "text": {"version": "informational-nl-3", "lang": "nl", "sha256": DIGEST},
        "choices": {"retain_for_case_file": False, "share_needs_note": True},
        "investigation_scope": {"public": KEY_A, "sealed_private": SEALED},
        "sig": SIG,
    },
    "consent.decline": {"request_id": "r-5"},
    "consent.withdraw": {"conversation_id": "c-7d41"},
    "history.share": {
        "conversation_id": "c-7d41",
        "epoch_id": "e-2",
        "items": [{"seq": 3, "key": SEALED}, {"seq": 4, "key": SEALED}],
        "sig": SIG,
    },
    "bridge.pause": {"conversation_id": "c-7d41"},
    "bridge.resume": {"conversation_id": "c-7d41"},
    "invite.list": {},
    "invite.accept": {"invite_id": "i-11"},
    "bridge.end": {"conversation_id": "c-7d41"},
    "conversation.close": {"conversation_id": "c-7d41"},
    "breakglass.request": {"conversation_id": "c-7d41", "category": "acute_danger"},
    "breakglass.list": {},
    "breakglass.approve": {"breakglass_id": "b-3"},
    "breakglass.refuse": {"breakglass_id": "b-3"},
    "disclosure.record": {
        "conversation_id": "c-7d41",
        "agency": "veilig_thuis",
        "basis": "meldcode",
        "shared": ["concerns", "whereabouts"],
        "breakglass_id": "b-3",
    },
}

# The fields PROTOCOL.md lists without "?" (paths into the example). `history.fetch` `limit`,
# the `bridge.propose` preferences' fields are optional. `preferences` itself is optional in
# code and client (PROTOCOL.md lists it without "?").
REQUIRED: list[tuple[str, tuple[Any, ...]]] = [
    ("device.register", ("ed25519",)),
    ("device.register", ("x25519",)),
    ("device.register", ("sig",)),
    ("conversation.join", ("conversation_id",)),
    ("message.send", ("envelope",)),
    *[("message.send", ("envelope", name)) for name in ENVELOPE],
    ("message.send", ("envelope", "sender", "role")),
    ("message.send", ("envelope", "sender", "device_id")),
    ("history.fetch", ("conversation_id",)),
    ("history.fetch", ("after_seq",)),
    ("bridge.propose", ("conversation_id",)),
    ("bridge.propose", ("purpose",)),
    *[
        ("consent.grant", path)
        for path in [
            ("request_id",),
            ("text",),
            ("text", "version"),
            ("text", "lang"),
            ("text", "sha256"),
            ("choices",),
            ("choices", "retain_for_case_file"),
            ("choices", "share_needs_note"),
            ("investigation_scope",),
            ("investigation_scope", "public"),
            ("investigation_scope", "sealed_private"),
            ("sig",),
        ]
    ],
    ("consent.decline", ("request_id",)),
    ("consent.withdraw", ("conversation_id",)),
    ("history.share", ("conversation_id",)),
    ("history.share", ("epoch_id",)),
    ("history.share", ("items",)),
    ("history.share", ("items", 0, "seq")),
    ("history.share", ("items", 0, "key")),
    ("history.share", ("sig",)),
    ("bridge.pause", ("conversation_id",)),
    ("bridge.resume", ("conversation_id",)),
    ("invite.accept", ("invite_id",)),
    ("bridge.end", ("conversation_id",)),
    ("conversation.close", ("conversation_id",)),
    ("breakglass.request", ("conversation_id",)),
    ("breakglass.request", ("category",)),
    ("breakglass.approve", ("breakglass_id",)),
    ("breakglass.refuse", ("breakglass_id",)),
    ("disclosure.record", ("conversation_id",)),
    ("disclosure.record", ("agency",)),
    ("disclosure.record", ("basis",)),
    ("disclosure.record", ("shared",)),
]

# PROTOCOL.md, "Encoding": "Types are strict: a string where an integer is due ... is invalid".
WRONG_TYPES: list[tuple[str, tuple[Any, ...], object]] = [
    # a string where an integer is due
    ("history.fetch", ("after_seq",), "0"),
    ("history.fetch", ("limit",), "100"),
    ("history.share", ("items", 0, "seq"), "3"),
    ("message.send", ("envelope", "v"), "1"),
    # an integer where a string is due
    ("conversation.join", ("conversation_id",), 42),
    ("consent.decline", ("request_id",), 5),
    ("invite.accept", ("invite_id",), 11),
    ("device.register", ("ed25519",), 1),
    ("message.send", ("envelope", "sender", "device_id"), 19),
    ("bridge.propose", ("preferences", "region"), 7),
    # a float where an integer is due, even an integral one
    ("history.fetch", ("after_seq",), 0.0),
    ("history.fetch", ("limit",), 100.5),
    ("message.send", ("envelope", "v"), 1.0),
    ("history.share", ("items", 0, "seq"), 3.0),
    # a bool where an integer is due
    ("history.fetch", ("after_seq",), False),
    ("history.fetch", ("limit",), True),
    ("message.send", ("envelope", "v"), True),
    ("history.share", ("items", 0, "seq"), True),
    # a bool where a string is due, and the other way round
    ("bridge.pause", ("conversation_id",), True),
    ("consent.grant", ("choices", "retain_for_case_file"), "false"),
    ("consent.grant", ("choices", "share_needs_note"), 1),
    ("bridge.propose", ("preferences", "same_officer"), "yes"),
    # null, lists and objects in the wrong place
    ("conversation.close", ("conversation_id",), None),
    ("breakglass.approve", ("breakglass_id",), 3),
    ("breakglass.request", ("category",), ["acute_danger"]),
    ("disclosure.record", ("shared",), "concerns"),
    ("consent.grant", ("choices",), []),
    ("history.share", ("items",), {"seq": 3, "key": SEALED}),
    ("message.send", ("envelope",), json.dumps(ENVELOPE)),
    ("message.send", ("envelope", "audience"), "care"),
    ("message.send", ("envelope", "keys"), [SEALED, SEALED]),
]

# Values of the right type that the schemas of PROTOCOL.md do not allow.
BAD_VALUES: list[tuple[str, tuple[Any, ...], object]] = [
    ("history.fetch", ("after_seq",), -1),
    ("history.fetch", ("limit",), 0),
    ("history.fetch", ("limit",), 501),
    ("bridge.propose", ("purpose",), "aangifte"),
    ("breakglass.request", ("category",), "curiosity"),
    ("breakglass.refuse", ("breakglass_id",), ""),
    ("disclosure.record", ("agency",), "buurman"),
    ("disclosure.record", ("basis",), "gut_feeling"),
    ("disclosure.record", ("shared",), []),
    ("disclosure.record", ("shared", 0), "transcript"),
    ("bridge.propose", ("preferences", "officer_gender"), "other"),
    ("consent.grant", ("text", "lang"), "de"),
    ("consent.grant", ("text", "sha256"), DIGEST + "="),
    ("consent.grant", ("investigation_scope", "public"), KEY_A[:-1]),
    ("device.register", ("x25519",), KEY_B[:-1] + "/"),
    ("device.register", ("sig",), SIG[:-2]),
    ("history.share", ("items",), []),
    ("history.share", ("items", 0, "seq"), 0),
    ("conversation.join", ("conversation_id",), ""),
    ("conversation.join", ("conversation_id",), "c" * 65),
    ("message.send", ("envelope", "v"), 2),
    ("message.send", ("envelope", "kind"), "note"),
    ("message.send", ("envelope", "client_msg_id"), "0557e927-63ec-1f2e-8f23-f63339715965"),
    ("message.send", ("envelope", "sender", "role"), "auditor"),
    ("message.send", ("envelope", "nonce"), NONCE + "AA"),
]


def _with(event: str, path: tuple[Any, ...], value: object) -> dict[str, Any]:
    """The example of ``event`` with the field at ``path`` set to ``value``."""
    payload = copy.deepcopy(EXAMPLES[event])
    *parents, last = path
    target: Any = payload
    for key in parents:
        target = target[key]
    target[last] = value
    return payload


def _without(event: str, path: tuple[Any, ...]) -> dict[str, Any]:
    payload = copy.deepcopy(EXAMPLES[event])
    *parents, last = path
    target: Any = payload
    for key in parents:
        target = target[key]
    del target[last]
    return payload


def _path_id(case: tuple[Any, ...]) -> str:
    event, path, *value = case
    name = f"{event}:{'.'.join(str(p) for p in path)}"
    return f"{name}={value[0]!r}"[:60] if value else name


def _send(envelope: dict[str, Any]) -> MessageSend:
    payload = decode_event("message.send", ({"envelope": envelope},))
    assert isinstance(payload, MessageSend)
    return payload


def _compact_size(obj: object) -> int:
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# --- every event has a valid example ----------------------------------------------------------


def test_every_client_event_has_an_example() -> None:
    assert set(EXAMPLES) == set(EVENTS_BY_NAME)


@pytest.mark.parametrize("event", list(EXAMPLES))
def test_example_payload_decodes_unchanged(event: str) -> None:
    payload = decode_event(event, (EXAMPLES[event],))
    assert isinstance(payload, EVENTS_BY_NAME[event].schema)
    assert msgspec.to_builtins(payload) == EXAMPLES[event]


def test_optional_fields_may_be_left_out() -> None:
    fetch = decode_event("history.fetch", ({"conversation_id": "c-7d41", "after_seq": 0},))
    assert msgspec.to_builtins(fetch)["limit"] == 100
    propose = decode_event("bridge.propose", ({"conversation_id": "c", "purpose": "report"},))
    assert msgspec.to_builtins(propose)["preferences"] == {}


def test_bridged_envelope_decodes() -> None:
    envelope = _send(BRIDGED).envelope
    assert envelope.investigation
    assert envelope.epoch_id == "e-2"


def test_needs_note_to_care_and_investigation_decodes() -> None:
    assert _send({**BRIDGED, "kind": "needs_note"}).envelope.kind == "needs_note"


# --- strict schemas -------------------------------------------------------------------------


@pytest.mark.parametrize("event", list(EXAMPLES))
def test_unknown_top_level_field_is_invalid(event: str) -> None:
    with pytest.raises(Invalid):
        decode_event(event, ({**EXAMPLES[event], "unexpected": 1},))


NESTED_UNKNOWN = [
    ("message.send", ("envelope", "extra")),
    ("message.send", ("envelope", "sender", "org")),
    ("bridge.propose", ("preferences", "age")),
    ("consent.grant", ("text", "body")),
    ("consent.grant", ("choices", "share_history")),
    ("consent.grant", ("investigation_scope", "private")),
    ("history.share", ("items", 0, "text")),
]


@pytest.mark.parametrize(
    ("event", "path"), NESTED_UNKNOWN, ids=[_path_id(c) for c in NESTED_UNKNOWN]
)
def test_unknown_nested_field_is_invalid(event: str, path: tuple[Any, ...]) -> None:
    with pytest.raises(Invalid):
        decode_event(event, (_with(event, path, "x"),))


@pytest.mark.parametrize(("event", "path"), REQUIRED, ids=[_path_id(c) for c in REQUIRED])
def test_missing_required_field_is_invalid(event: str, path: tuple[Any, ...]) -> None:
    with pytest.raises(Invalid):
        decode_event(event, (_without(event, path),))


@pytest.mark.parametrize(
    ("event", "path", "value"), WRONG_TYPES, ids=[_path_id(c) for c in WRONG_TYPES]
)
def test_wrong_type_is_invalid(event: str, path: tuple[Any, ...], value: object) -> None:
    with pytest.raises(Invalid):
        decode_event(event, (_with(event, path, value),))


@pytest.mark.parametrize(
    ("event", "path", "value"), BAD_VALUES, ids=[_path_id(c) for c in BAD_VALUES]
)
def test_value_outside_the_schema_is_invalid(
    event: str, path: tuple[Any, ...], value: object
) -> None:
    with pytest.raises(Invalid):
        decode_event(event, (_with(event, path, value),))


# --- the payload itself ---------------------------------------------------------------------


def test_unknown_event_is_invalid() -> None:
    with pytest.raises(Invalid):
        decode_event("consent.force", ({},))


@pytest.mark.parametrize("event", ["connect", "disconnect"])
def test_client_sent_connect_and_disconnect_are_invalid(event: str) -> None:
    with pytest.raises(Invalid):
        decode_event(event, ({},))


@pytest.mark.parametrize("event", ["conversation.join", "queue.list"])
def test_event_without_payload_is_invalid(event: str) -> None:
    with pytest.raises(Invalid):
        decode_event(event, ())


@pytest.mark.parametrize("event", ["conversation.join", "queue.list"])
def test_event_with_two_payloads_is_invalid(event: str) -> None:
    with pytest.raises(Invalid):
        decode_event(event, (EXAMPLES[event], EXAMPLES[event]))


@pytest.mark.parametrize(
    "payload",
    [None, [], ["c-7d41"], "c-7d41", 7, True, b"\x00binary"],
    ids=["null", "empty-list", "list", "string", "int", "bool", "binary"],
)
def test_non_object_payload_is_invalid(payload: object) -> None:
    with pytest.raises(Invalid):
        decode_event("conversation.join", (payload,))


# --- the 16 KiB envelope limit ------------------------------------------------------------------


def _envelope_of_size(size: int) -> dict[str, Any]:
    envelope = {
        **ENVELOPE,
        "ciphertext": "A" * (size - _compact_size({**ENVELOPE, "ciphertext": ""})),
    }
    assert _compact_size(envelope) == size
    return envelope


def test_envelope_of_exactly_16_kib_is_accepted() -> None:
    envelope = _envelope_of_size(16 * 1024)
    assert len(_send(envelope).envelope.ciphertext) == len(envelope["ciphertext"])


def test_envelope_one_byte_over_16_kib_is_too_large() -> None:
    with pytest.raises(TooLarge) as caught:
        _send(_envelope_of_size(16 * 1024 + 1))
    assert caught.value.code == "too_large"


def test_envelope_size_counts_utf8_bytes_not_characters() -> None:
    # 2-byte characters: fewer than 16384 characters, more than 16384 bytes.
    room = 16 * 1024 - _compact_size({**ENVELOPE, "ciphertext": ""})
    envelope = {**ENVELOPE, "ciphertext": "é" * (room // 2 + 1)}
    assert len(json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)) < 16 * 1024
    assert _compact_size(envelope) > 16 * 1024
    with pytest.raises(TooLarge):
        _send(envelope)


def test_envelope_size_is_measured_on_compact_json() -> None:
    envelope = _envelope_of_size(16 * 1024)
    assert len(json.dumps(envelope, indent=2).encode()) > 16 * 1024  # spaced out it is larger
    _send(envelope)


def test_envelope_with_a_lone_surrogate_is_invalid() -> None:
    """JSON may escape a lone surrogate ("\\ud800"); Python decodes it into a str that has no
    UTF-8 form. That is bad input, so `invalid`, not an internal error."""
    envelope = {**ENVELOPE, "ciphertext": json.loads('"\\ud800"') + CIPHERTEXT}
    with pytest.raises(Invalid):
        _send(envelope)


# --- audience rules (PROTOCOL.md, "The envelope") -----------------------------------------------

AUDIENCE_CASES = {
    "unsorted": {**BRIDGED, "audience": ["investigation", "care"]},
    "investigation-without-care": {**BRIDGED, "audience": ["investigation"]},
    "care-twice": {**ENVELOPE, "audience": ["care", "care"]},
    "empty": {**ENVELOPE, "audience": []},
    "unknown-scope": {**ENVELOPE, "audience": ["police"]},
    "investigation-without-epoch": {**BRIDGED, "epoch_id": None},
    "epoch-without-investigation": {**ENVELOPE, "epoch_id": "e-2"},
    "needs-note-to-care-only": {**ENVELOPE, "kind": "needs_note"},
    "unknown-key-name": {**ENVELOPE, "keys": {**ENVELOPE["keys"], "officer": SEALED}},
    "misspelt-key-name": {**ENVELOPE, "keys": {"victim": SEALED, "Care": SEALED}},
}


@pytest.mark.parametrize("envelope", list(AUDIENCE_CASES.values()), ids=list(AUDIENCE_CASES))
def test_audience_rule_violation_is_invalid(envelope: dict[str, Any]) -> None:
    with pytest.raises(Invalid):
        _send(envelope)


# --- HTTP bodies ---------------------------------------------------------------------------------

SESSION = {"username": "counsellor", "password": "correct horse battery staple"}


def test_valid_body_decodes() -> None:
    body = decode_body(json.dumps(SESSION).encode(), SessionCreate)
    assert (body.username, body.password) == (SESSION["username"], SESSION["password"])


def test_conversation_create_body_decodes() -> None:
    raw = {
        "lang": "en",
        "device": {"ed25519": KEY_A, "x25519": KEY_B},
        "care_scope": {"public": KEY_B, "sealed_private": SEALED},
    }
    body = decode_body(json.dumps(raw).encode(), ConversationCreate)
    assert msgspec.to_builtins(body) == raw


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"username=a&password=b", b"\xff\xfe\x00", b"{'username': 'a'}"],
    ids=["empty", "truncated", "form", "not-utf8", "single-quotes"],
)
def test_non_json_body_is_invalid(raw: bytes) -> None:
    with pytest.raises(Invalid):
        decode_body(raw, SessionCreate)


def test_deeply_nested_body_is_invalid() -> None:
    with pytest.raises(Invalid):
        decode_body(b"[" * 100_000, SessionCreate)


@pytest.mark.parametrize(
    "raw", [b"[]", b"1", b'"text"', b"null", b"true", b"[{}]"], ids=lambda r: r.decode()
)
def test_non_object_body_is_invalid(raw: bytes) -> None:
    with pytest.raises(Invalid):
        decode_body(raw, SessionCreate)


@pytest.mark.parametrize(
    "body",
    [{**SESSION, "otp": "123456"}, {"username": "counsellor"}, {**SESSION, "password": 1234}],
    ids=["unknown-field", "missing-field", "wrong-type"],
)
def test_body_failing_the_schema_is_invalid(body: dict[str, Any]) -> None:
    with pytest.raises(Invalid):
        decode_body(json.dumps(body).encode(), SessionCreate)


# PROTOCOL.md, "Client -> server", written out here (never read from bridge/protocol.py), with
# docs/protocol.md's one addition: an officer re-joins the conversation of its own epoch. The
# authorization matrix reads the event table; this holds the table to the documents.
WHO_MAY_SEND: dict[str, set[str]] = {
    "device.register": {"counsellor", "officer"},
    "queue.list": {"counsellor"},
    "conversation.join": {"victim", "counsellor", "officer"},
    "message.send": {"victim", "counsellor", "officer"},
    "history.fetch": {"victim", "counsellor", "officer"},
    "bridge.propose": {"counsellor"},
    "consent.grant": {"victim"},
    "consent.decline": {"victim"},
    "consent.withdraw": {"victim"},
    "history.share": {"victim"},
    "bridge.pause": {"victim", "counsellor"},
    "bridge.resume": {"victim", "counsellor"},
    "invite.list": {"officer"},
    "invite.accept": {"officer"},
    "bridge.end": {"counsellor", "officer"},
    "conversation.close": {"victim", "counsellor"},
    "breakglass.request": {"counsellor"},
    "breakglass.list": {"supervisor"},
    "breakglass.approve": {"supervisor"},
    "breakglass.refuse": {"supervisor"},
    "disclosure.record": {"counsellor"},
}


def test_the_event_table_says_who_may_send_what_as_the_protocol_does() -> None:
    assert {event.name: set(event.roles) for event in EVENTS} == WHO_MAY_SEND


def test_only_device_register_and_the_supervisors_events_need_no_registered_device() -> None:
    # A supervisor reads no content, so has no device to register.
    assert [event.name for event in EVENTS if not event.needs_device] == [
        "device.register",
        "breakglass.list",
        "breakglass.approve",
        "breakglass.refuse",
    ]
