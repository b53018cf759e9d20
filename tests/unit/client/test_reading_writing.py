"""Writing and reading envelopes without a server: the audience follows the bridge, an envelope
is sealed only to keys the client knows, and only a verified envelope is opened."""

from __future__ import annotations

import pytest
from nacl.public import PrivateKey

from bridge import crypto
from bridge.client import reading, writing
from bridge.client.conversation import Conversation
from bridge.client.wire import JSON

VICTIM = crypto.DeviceKeys.generate()
CARE = crypto.ScopeKey.generate()


def _conversation(bridge_state: str | None = None) -> Conversation:
    conv = Conversation("c1", care_public=CARE.public)
    conv.apply_join(
        {
            "victim_device": {
                "device_id": "dv",
                "ed25519": VICTIM.ed25519,
                "x25519": VICTIM.x25519,
            },
            "bridge": {"request_id": "r1", "state": bridge_state} if bridge_state else None,
        }
    )
    return conv


def _victim_envelope(conv: Conversation, text: str = "hello") -> JSON:
    return writing.signed_envelope(
        text,
        conversation_id=conv.conversation_id,
        sender_role="victim",
        device_id="dv",
        keys=VICTIM,
        audience=["care"],
        kind="message",
        epoch_id=None,
        recipients=writing.sealed_to_known(conv, ["care"]),
        client_msg_id=None,
    )


def _care_reader(conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
    return "care", CARE.private


def _item(envelope: JSON) -> JSON:
    return {"seq": 1, "envelope": envelope, "server_time": "2024-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("bridge_state", "care_only", "kind", "audience"),
    [
        (None, False, "message", ["care"]),
        ("paused", False, "message", ["care"]),
        ("joined", False, "message", ["care", "investigation"]),
        ("joined", True, "message", ["care"]),
        (None, True, "needs_note", ["care", "investigation"]),
    ],
)
def test_audience_follows_the_bridge(
    bridge_state: str | None, care_only: bool, kind: str, audience: list[str]
) -> None:
    assert writing.audience_for(_conversation(bridge_state), care_only, kind) == audience


def test_envelope_is_not_sealed_to_an_unknown_scope() -> None:
    conv = _conversation("joined")
    assert writing.current_epoch(conv, ["care", "investigation"]) is None
    with pytest.raises(ValueError, match="investigation"):
        writing.sealed_to_known(conv, ["care", "investigation"])


def test_grant_signs_the_new_scope_key() -> None:
    prompt = {"request_id": "r1", "text": {"version": 2, "lang": "nl", "sha256": "ab", "body": "…"}}
    choices = {"retain_for_case_file": False, "share_needs_note": True}
    avim = PrivateKey.generate()
    avim_key = {"key_id": "avim-2", "x25519": crypto.b64u_encode(bytes(avim.public_key))}
    payload, scope = writing.grant(prompt, VICTIM, avim_key, choices)
    assert payload["investigation_scope"]["key_id"] == "avim-2"
    assert payload["text"] == {"version": 2, "lang": "nl", "sha256": "ab"}
    assert payload["investigation_scope"]["public"] == scope.public
    sealed = payload["investigation_scope"]["sealed_private"]
    assert bytes(crypto.open_scope_key(sealed, avim)) == bytes(scope.private)
    signed = crypto.signed_grant(
        request_id="r1", text=payload["text"], choices=choices, investigation_public=scope.public
    )
    crypto.verify_object(signed, payload["sig"], VICTIM.ed25519)


def test_verified_envelope_opens_with_the_readers_key() -> None:
    conv = _conversation()
    message = reading.decode(conv, "c1", _item(_victim_envelope(conv)), _care_reader, {})
    assert (message.verified, message.text, message.sender_role) == (True, "hello", "victim")


@pytest.mark.parametrize(
    "change",
    [
        {"conversation_id": "c2"},
        {"sender": {"role": "counsellor", "device_id": "dv"}},
        {"sender": {"role": "victim", "device_id": "dx"}},
        {"kind": "needs_note"},
    ],
    ids=["other-conversation", "claimed-role", "unknown-device", "altered"],
)
def test_unverified_envelope_is_not_opened(change: JSON) -> None:
    conv = _conversation()
    envelope = {**_victim_envelope(conv), **change}
    message = reading.decode(conv, "c1", _item(envelope), _care_reader, {})
    assert (message.verified, message.text) == (False, None)


def test_envelope_of_an_unknown_conversation_is_not_verified() -> None:
    envelope = _victim_envelope(_conversation())
    message = reading.decode(None, "c1", _item(envelope), _care_reader, {})
    assert (message.verified, message.text) == (False, None)


def test_scope_key_opens_only_with_the_org_key_version_it_names_and_is_kept() -> None:
    fier, newer = PrivateKey.generate(), PrivateKey.generate()
    conv = _conversation()
    conv.sealed["care"] = CARE.sealed_to(crypto.b64u_encode(bytes(fier.public_key)))
    conv.sealed_by["care"] = "fier-1"
    assert reading.scope_key(conv, "care", {}) is None
    assert reading.scope_key(conv, "care", {"fier-1": PrivateKey.generate()}) is None
    assert reading.scope_key(conv, "care", {"fier-2": fier}) is None  # not the version named
    assert conv.opened == {}
    key = reading.scope_key(conv, "care", {"fier-1": fier, "fier-2": newer})
    assert key is not None and bytes(key) == bytes(CARE.private)
    assert reading.scope_key(conv, "care", {}) is key
    assert reading.scope_key(conv, None, {"fier-1": fier}) is None
