"""Known-answer and behaviour tests for bridge.crypto (vectors: tests/vectors/crypto.json)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey
from nacl.secret import SecretBox
from nacl.signing import SigningKey, VerifyKey

from bridge import crypto
from bridge.crypto import (
    MAX_ENVELOPE_BYTES,
    SEALED_KEY_BYTES,
    B64UEncoder,
    BadSignatureError,
    DecryptionError,
    DeviceKeys,
    EncodingError,
    KeysMismatchError,
    ScopeKey,
    b64u_decode,
    b64u_encode,
    build_envelope,
    check_envelope_keys,
    compact_json_size,
    envelope_content_key,
    jcs,
    jcs_checked,
    open_envelope,
    open_org_key,
    open_scope_key,
    open_with_content_key,
    required_key_names,
    seal,
    seal_org_key,
    sha256,
    sign_object,
    signed_grant,
    unseal,
    verify_envelope,
    verify_object,
    verify_registration,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "crypto.json").read_text(encoding="utf-8")
)
KEYS = VECTORS["keys"]
ENV = VECTORS["envelope"]
GRANT = VECTORS["signed_grant"]
ORG = VECTORS["sealed_org_key"]
ROOT = Path(__file__).parents[2]


def device(name: str) -> DeviceKeys:
    k = KEYS[name]
    return DeviceKeys.from_private(b64u_decode(k["ed25519_seed"]), b64u_decode(k["x25519_private"]))


def private(b64u: str) -> PrivateKey:
    return PrivateKey(b64u_decode(b64u))


READERS = {
    "victim": KEYS["victim"]["x25519_private"],
    "care": KEYS["care_scope"]["private"],
    "investigation": KEYS["investigation_scope"]["private"],
}
RECIPIENTS = {
    "victim": KEYS["victim"]["x25519"],
    "care": KEYS["care_scope"]["public"],
    "investigation": KEYS["investigation_scope"]["public"],
}


def build_vector_envelope(**overrides: Any) -> dict[str, object]:
    e = ENV["envelope"]
    args: dict[str, Any] = {
        "conversation_id": e["conversation_id"],
        "client_msg_id": e["client_msg_id"],
        "sender_role": e["sender"]["role"],
        "device_id": e["sender"]["device_id"],
        "kind": e["kind"],
        "audience": e["audience"],
        "epoch_id": e["epoch_id"],
        "plaintext": ENV["plaintext"],
        "recipients": RECIPIENTS,
        "signing_key": device(ENV["signed_by"]).signing,
        "content_key": b64u_decode(ENV["content_key"]),
        "nonce": b64u_decode(e["nonce"]),
    }
    args.update(overrides)
    return build_envelope(**args)


# --- b64u ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["b64u"], ids=lambda c: c["b64u"] or "empty")
def test_b64u_encodes_vector(case: dict[str, str]) -> None:
    assert b64u_encode(bytes.fromhex(case["hex"])) == case["b64u"]


@pytest.mark.parametrize("case", VECTORS["b64u"], ids=lambda c: c["b64u"] or "empty")
def test_b64u_decodes_vector(case: dict[str, str]) -> None:
    assert b64u_decode(case["b64u"]) == bytes.fromhex(case["hex"])


@pytest.mark.parametrize(
    "text",
    ["AA==", "AA=", "-_8=", "+/8", "+_-_", "-/-_", "A A", " AA", "AA\n", "A", "AAAAA", "AB", "é"],
)
def test_b64u_rejects_padding_illegal_chars_bad_length_and_trailing_bits(text: str) -> None:
    with pytest.raises(EncodingError):
        b64u_decode(text)


def test_b64u_decode_enforces_size() -> None:
    assert b64u_decode("AAEC", size=3) == b"\x00\x01\x02"
    with pytest.raises(EncodingError):
        b64u_decode("AAEC", size=32)


def test_b64u_encoder_works_as_a_nacl_encoder() -> None:
    ed = KEYS["victim"]["ed25519"]
    assert bytes(VerifyKey(ed.encode(), encoder=B64UEncoder)) == b64u_decode(ed)
    assert B64UEncoder.encode(b"\xfb\xff") == b"-_8"
    with pytest.raises(EncodingError):
        B64UEncoder.decode(b"AA==")


# --- JCS, hashing, sizes ---------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["jcs"], ids=range(len(VECTORS["jcs"])))
def test_jcs_matches_vector_byte_for_byte(case: dict[str, Any]) -> None:
    assert jcs(case["object"]) == case["jcs"].encode("utf-8")


def test_jcs_escapes_only_quote_backslash_and_control_characters() -> None:
    value = '"\\\x00\x08\t\n\x0c\r\x1f\x7f\u2028/é'
    expected = '"\\"\\\\\\u0000\\b\\t\\n\\f\\r\\u001f\x7f\u2028/é"'
    assert jcs(value) == expected.encode("utf-8")


def test_jcs_keeps_bool_distinct_from_int() -> None:
    assert jcs([True, False, 1, 0, None]) == b"[true,false,1,0,null]"


@pytest.mark.parametrize(
    "value",
    [1.0, 0.5, b"x", {1: "a"}, {"a": {1, 2}}, [float("nan")], 2**53, -(2**53), "\ud800"],
    ids=["float", "half", "bytes", "int-key", "set", "nan", "big", "-big", "surrogate"],
)
def test_jcs_rejects_values_outside_the_protocol(value: object) -> None:
    with pytest.raises(EncodingError):
        jcs(value)


def test_jcs_rejects_lone_surrogate_in_key() -> None:
    with pytest.raises(EncodingError):
        jcs({"\udc00": 1, "a": 2})


# Every JSON value without floats, with the escapes and characters JCS treats apart: quotes,
# backslashes, control characters, DEL, U+2028, non-ASCII and astral keys (which UTF-16 sorts
# after U+E000..U+FFFF, code points before them).
_TEXT = st.text(
    alphabet=st.sampled_from(
        [
            "a",
            "Z",
            "0",
            '"',
            "\\",
            "\x00",
            "\x1f",
            "\x7f",
            "\u2028",
            "é",
            "\ufb01",
            "\U0001f600",
            "/",
        ]
    )
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(_JSON)
@settings(max_examples=400, deadline=None)
def test_jcs_checked_is_jcs(value: object) -> None:
    assert jcs_checked(value) == jcs(value)


@pytest.mark.parametrize("case", VECTORS["jcs"], ids=range(len(VECTORS["jcs"])))
def test_jcs_checked_matches_vector_byte_for_byte(case: dict[str, Any]) -> None:
    assert jcs_checked(case["object"]) == case["jcs"].encode("utf-8")


def test_sha256_known_answer() -> None:
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256(b"abc").hex() == expected


def test_compact_json_size_counts_utf8_bytes_of_compact_json() -> None:
    assert compact_json_size({"a": "é", "b": [1, 2]}) == len('{"a":"é","b":[1,2]}'.encode())
    assert compact_json_size(ENV["envelope"]) < MAX_ENVELOPE_BYTES
    with pytest.raises(EncodingError):
        compact_json_size({"a": b"bytes"})


# --- device keys and signatures --------------------------------------------------------------


def test_device_keys_derive_vector_public_keys() -> None:
    for name in ("victim", "counsellor"):
        keys = device(name)
        assert (keys.ed25519, keys.x25519) == (KEYS[name]["ed25519"], KEYS[name]["x25519"])


def test_device_register_signature_is_reproduced() -> None:
    reg = VECTORS["device_register"]
    assert device(reg["device"]).registration() == reg["payload"]


def test_device_register_vector_verifies() -> None:
    verify_registration(**VECTORS["device_register"]["payload"])


def test_generated_device_registration_verifies() -> None:
    verify_registration(**DeviceKeys.generate().registration())


def flip(b64u: str, index: int = 0) -> str:
    """The same value with one byte changed."""
    raw = bytearray(b64u_decode(b64u))
    raw[index] ^= 0x01
    return b64u_encode(bytes(raw))


@pytest.mark.parametrize("field", ["sig", "x25519", "ed25519"])
def test_device_register_rejects_any_tampered_field(field: str) -> None:
    payload = dict(VECTORS["device_register"]["payload"])
    payload[field] = flip(payload[field])
    with pytest.raises(BadSignatureError):
        verify_registration(**payload)


def test_device_register_rejects_another_devices_box_key() -> None:
    payload = dict(VECTORS["device_register"]["payload"], x25519=KEYS["victim"]["x25519"])
    with pytest.raises(BadSignatureError):
        verify_registration(**payload)


def test_device_register_malformed_sig_is_bad_signature_malformed_key_is_encoding() -> None:
    payload = dict(VECTORS["device_register"]["payload"])
    with pytest.raises(BadSignatureError):
        verify_registration(payload["ed25519"], payload["x25519"], payload["sig"][:-2])
    with pytest.raises(EncodingError):
        verify_registration(payload["ed25519"][:-2], payload["x25519"], payload["sig"])


def test_device_keys_validate_lengths_and_hide_secrets_in_repr() -> None:
    with pytest.raises(EncodingError):
        DeviceKeys.from_private(b"\x00" * 31, b"\x00" * 32)
    keys = device("victim")
    seed = KEYS["victim"]["ed25519_seed"]
    assert seed not in repr(keys) and repr(b64u_decode(seed)) not in repr(keys)


def test_generated_device_keys_differ() -> None:
    assert DeviceKeys.generate().ed25519 != DeviceKeys.generate().ed25519


# --- sealed boxes and scopes -----------------------------------------------------------------


def test_sealed_key_size_is_32_plus_sealbox_overhead() -> None:
    assert SEALED_KEY_BYTES == 80
    assert {len(b64u_decode(v)) for v in ENV["envelope"]["keys"].values()} == {SEALED_KEY_BYTES}


def test_seal_unseal_round_trip_and_wrong_key_fails() -> None:
    recipient = PrivateKey.generate()
    sealed = seal(b"secret", b64u_encode(bytes(recipient.public_key)))
    assert unseal(sealed, recipient) == b"secret"
    with pytest.raises(DecryptionError):
        unseal(sealed, PrivateKey.generate())
    with pytest.raises(DecryptionError):
        unseal("not b64u!", recipient)
    with pytest.raises(EncodingError):
        seal(b"secret", "AAAA")


def test_scope_key_sealed_to_org_opens_with_org_private_key() -> None:
    scope = ScopeKey.generate()
    payload = scope.as_payload(KEYS["org_fier"]["public"])
    assert payload["public"] == scope.public
    opened = open_scope_key(payload["sealed_private"], private(KEYS["org_fier"]["private"]))
    assert bytes(opened) == bytes(scope.private)
    with pytest.raises(DecryptionError):
        open_scope_key(payload["sealed_private"], private(KEYS["org_avim"]["private"]))


def test_scope_key_public_matches_vector() -> None:
    scope = ScopeKey(private(KEYS["care_scope"]["private"]))
    assert scope.public == KEYS["care_scope"]["public"]


# --- the envelope ----------------------------------------------------------------------------


def test_envelope_vector_verifies_under_sender_key() -> None:
    verify_envelope(ENV["envelope"], KEYS[ENV["signed_by"]]["ed25519"])


def test_envelope_jcs_without_sig_matches_vector() -> None:
    env = {k: v for k, v in ENV["envelope"].items() if k != "sig"}
    assert jcs(env) == ENV["jcs_without_sig"].encode("utf-8")


def test_envelope_signature_is_reproduced() -> None:
    assert sign_object(ENV["envelope"], device(ENV["signed_by"]).signing) == ENV["envelope"]["sig"]


def test_build_envelope_reproduces_vector_apart_from_random_sealed_keys() -> None:
    built = build_vector_envelope()
    unsigned = {k: v for k, v in ENV["envelope"].items() if k not in ("keys", "sig")}
    assert {k: v for k, v in built.items() if k not in ("keys", "sig")} == unsigned
    assert isinstance(built["keys"], dict) and set(built["keys"]) == set(RECIPIENTS)
    verify_envelope(built, KEYS[ENV["signed_by"]]["ed25519"])


def test_build_envelope_with_vector_sealed_keys_is_the_exact_vector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_recipient: dict[str, str] = {RECIPIENTS[n]: ENV["envelope"]["keys"][n] for n in RECIPIENTS}
    content_key = b64u_decode(ENV["content_key"])

    def fake_seal(data: bytes, recipient_x25519: str) -> str:
        assert data == content_key
        return by_recipient[recipient_x25519]

    # build_envelope seals through the name its own module imported.
    monkeypatch.setattr(crypto.envelope, "seal", fake_seal)
    built = build_vector_envelope()
    assert built == ENV["envelope"]
    assert list(built) == list(ENV["envelope"])  # same field order as the vector
    assert jcs({k: v for k, v in built.items() if k != "sig"}).decode() == ENV["jcs_without_sig"]


def test_build_envelope_plaintext_is_compact_json_in_given_order() -> None:
    built = build_vector_envelope()
    assert isinstance(built["ciphertext"], str) and isinstance(built["nonce"], str)
    body = SecretBox(b64u_decode(ENV["content_key"])).decrypt(
        b64u_decode(built["ciphertext"]), b64u_decode(built["nonce"])
    )
    assert body == json.dumps(ENV["plaintext"], separators=(",", ":"), ensure_ascii=False).encode()


def test_build_envelope_writes_audience_sorted() -> None:
    built = build_vector_envelope(audience=["investigation", "care"])
    assert built["audience"] == ["care", "investigation"]


def test_build_envelope_uses_fresh_content_key_and_nonce() -> None:
    a = build_vector_envelope(content_key=None, nonce=None)
    b = build_vector_envelope(content_key=None, nonce=None)
    assert a["nonce"] != b["nonce"]
    key_a = envelope_content_key(a, "victim", private(READERS["victim"]))
    key_b = envelope_content_key(b, "victim", private(READERS["victim"]))
    assert key_a != key_b and key_a != b64u_decode(ENV["content_key"])


def test_build_envelope_requires_exactly_victim_plus_audience() -> None:
    with pytest.raises(KeysMismatchError):
        build_vector_envelope(audience=["care"])
    without_victim = {k: v for k, v in RECIPIENTS.items() if k != "victim"}
    with pytest.raises(KeysMismatchError):
        build_vector_envelope(recipients=without_victim)


def test_build_envelope_rejects_non_jcs_plaintext() -> None:
    with pytest.raises(EncodingError):
        build_vector_envelope(plaintext={"text": "x", "sent_at": 1.5})


def test_built_envelope_round_trips_for_every_reader() -> None:
    readers = {name: PrivateKey.generate() for name in ("victim", "care")}
    message = {"text": "Dag — 😀", "sent_at": "2026-01-01T00:00:00Z"}
    sender = DeviceKeys.generate()
    env = build_vector_envelope(
        audience=["care"],
        epoch_id=None,
        plaintext=message,
        recipients={n: b64u_encode(bytes(k.public_key)) for n, k in readers.items()},
        signing_key=sender.signing,
        content_key=None,
        nonce=None,
    )
    verify_envelope(env, sender.ed25519)
    for name, key in readers.items():
        assert open_envelope(env, name, key) == message
    with pytest.raises(DecryptionError):
        open_envelope(env, "investigation", readers["care"])


@pytest.mark.parametrize("name", sorted(READERS))
def test_vector_sealed_key_opens_to_content_key(name: str) -> None:
    key = envelope_content_key(ENV["envelope"], name, private(READERS[name]))
    assert key == b64u_decode(ENV["content_key"])


@pytest.mark.parametrize("name", sorted(READERS))
def test_vector_envelope_opens_to_plaintext(name: str) -> None:
    assert open_envelope(ENV["envelope"], name, private(READERS[name])) == ENV["plaintext"]


def test_vector_ciphertext_opens_with_content_key() -> None:
    opened = open_with_content_key(ENV["envelope"], b64u_decode(ENV["content_key"]))
    assert opened == ENV["plaintext"]


def test_sealed_key_does_not_open_with_another_readers_key() -> None:
    with pytest.raises(DecryptionError):
        envelope_content_key(ENV["envelope"], "care", private(READERS["victim"]))


def test_tampered_ciphertext_does_not_open() -> None:
    env = dict(ENV["envelope"], ciphertext=flip(ENV["envelope"]["ciphertext"], 20))
    with pytest.raises(DecryptionError):
        open_with_content_key(env, b64u_decode(ENV["content_key"]))


def test_ciphertext_that_is_not_a_json_object_does_not_open() -> None:
    key, nonce = b64u_decode(ENV["content_key"]), b"\x01" * 24
    for body in (b"not json", b"[1,2]", b"\xff\xfe"):
        ct = SecretBox(key).encrypt(body, nonce).ciphertext
        env = dict(ENV["envelope"], nonce=b64u_encode(nonce), ciphertext=b64u_encode(ct))
        with pytest.raises(DecryptionError):
            open_with_content_key(env, key)


def test_reader_accepts_any_json_serialisation() -> None:
    key, nonce = b64u_decode(ENV["content_key"]), b"\x02" * 24
    body = b'{ "sent_at" : "t",\n "text" : "caf\\u00e9" }'
    ct = SecretBox(key).encrypt(body, nonce).ciphertext
    env = dict(ENV["envelope"], nonce=b64u_encode(nonce), ciphertext=b64u_encode(ct))
    assert open_with_content_key(env, key) == {"sent_at": "t", "text": "café"}


def _signed_leaves(obj: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() if k != "sig" for p in _signed_leaves(v, (*path, k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _signed_leaves(v, (*path, i))]
    return [path]


def _change_one_byte(value: object) -> object:
    if isinstance(value, int):
        return value ^ 1
    assert isinstance(value, str) and value
    return chr(ord(value[0]) ^ 1) + value[1:]


SIGNED_LEAVES = _signed_leaves(ENV["envelope"])


def test_every_envelope_field_but_sig_is_a_signed_leaf() -> None:
    top = {p[0] for p in SIGNED_LEAVES}
    assert top == set(ENV["envelope"]) - {"sig"}


@pytest.mark.parametrize("path", SIGNED_LEAVES, ids=lambda p: ".".join(map(str, p)))
def test_one_byte_change_of_any_signed_field_fails_verification(path: tuple[Any, ...]) -> None:
    env = copy.deepcopy(ENV["envelope"])
    parent = env
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = _change_one_byte(parent[path[-1]])
    with pytest.raises(BadSignatureError):
        verify_envelope(env, KEYS[ENV["signed_by"]]["ed25519"])


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.pop("epoch_id"),
        lambda e: e.update(extra=1),
        lambda e: e.update(epoch_id=None),
        lambda e: e["keys"].pop("investigation"),
        lambda e: e.update(sig=flip(e["sig"], 63)),
        lambda e: e.update(sig=e["sig"][:-1]),
        lambda e: e.pop("sig"),
    ],
    ids=["no-epoch", "added-field", "null-epoch", "dropped-key", "sig-bit", "sig-short", "no-sig"],
)
def test_structural_changes_fail_verification(change: Any) -> None:
    env = copy.deepcopy(ENV["envelope"])
    change(env)
    with pytest.raises(BadSignatureError):
        verify_envelope(env, KEYS[ENV["signed_by"]]["ed25519"])


def test_envelope_signed_by_another_device_fails_verification() -> None:
    with pytest.raises(BadSignatureError):
        verify_envelope(ENV["envelope"], KEYS["victim"]["ed25519"])


# --- check_envelope_keys ---------------------------------------------------------------------

VKEYS = ENV["envelope"]["keys"]


def test_required_key_names_are_victim_plus_audience() -> None:
    assert required_key_names(["care"]) == {"victim", "care"}
    assert required_key_names(["care", "investigation"]) == {"victim", "care", "investigation"}


@pytest.mark.parametrize("audience", [["care"], ["care", "investigation"]])
def test_check_envelope_keys_accepts_exactly_victim_plus_audience(audience: list[str]) -> None:
    check_envelope_keys({n: VKEYS[n] for n in required_key_names(audience)}, audience)


@pytest.mark.parametrize(
    ("keys", "audience"),
    [
        ({"victim": VKEYS["victim"]}, ["care"]),
        ({"care": VKEYS["care"]}, ["care"]),
        (dict(VKEYS), ["care"]),
        ({"victim": VKEYS["victim"], "care": VKEYS["care"]}, ["care", "investigation"]),
        ({}, ["care"]),
    ],
    ids=["missing-care", "missing-victim", "extra-investigation", "missing-investigation", "none"],
)
def test_check_envelope_keys_rejects_wrong_names(keys: dict[str, str], audience: list[str]) -> None:
    with pytest.raises(KeysMismatchError):
        check_envelope_keys(keys, audience)


@pytest.mark.parametrize(
    "bad",
    [
        b64u_encode(b64u_decode(VKEYS["care"])[:-1]),
        b64u_encode(b64u_decode(VKEYS["care"]) + b"\x00"),
        VKEYS["care"] + "==",
        "",
    ],
    ids=["short", "long", "padded", "empty"],
)
def test_check_envelope_keys_rejects_values_not_sealed_32_byte_keys(bad: str) -> None:
    with pytest.raises(KeysMismatchError):
        check_envelope_keys({"victim": VKEYS["victim"], "care": bad}, ["care"])


@pytest.mark.parametrize(
    "keys",
    [
        {"victim": VKEYS["victim"], "care": VKEYS["care"], "officer": VKEYS["care"]},
        {"victim": VKEYS["victim"], "care": 80},
        {"victim": None, "care": VKEYS["care"]},
    ],
    ids=["unknown-name", "int-value", "null-value"],
)
def test_check_envelope_keys_unknown_name_or_non_string_is_invalid(keys: dict[str, Any]) -> None:
    with pytest.raises(EncodingError):
        check_envelope_keys(keys, ["care"])


# --- signed grant ----------------------------------------------------------------------------


def test_signed_grant_builds_vector_object_and_jcs() -> None:
    g = GRANT["grant"]
    grant = signed_grant(
        request_id=g["request_id"],
        text=g["text"],
        choices=g["choices"],
        investigation_public=g["investigation_public"],
    )
    assert grant == g
    assert jcs(grant) == GRANT["jcs"].encode("utf-8")


def test_signed_grant_signature_is_reproduced_and_verifies() -> None:
    assert device(GRANT["signed_by"]).sign(GRANT["grant"]) == GRANT["sig"]
    verify_object(GRANT["grant"], GRANT["sig"], KEYS[GRANT["signed_by"]]["ed25519"])
    verify_object(dict(GRANT["grant"], sig=GRANT["sig"]), GRANT["sig"], KEYS["victim"]["ed25519"])


@pytest.mark.parametrize(
    "change",
    [
        lambda g: g["choices"].update(retain_for_case_file=True),
        lambda g: g["text"].update(version="informational-nl-2"),
        lambda g: g.update(investigation_public=KEYS["care_scope"]["public"]),
    ],
    ids=["choice", "text-version", "scope"],
)
def test_tampered_signed_grant_fails_verification(change: Any) -> None:
    grant = copy.deepcopy(GRANT["grant"])
    change(grant)
    with pytest.raises(BadSignatureError):
        verify_object(grant, GRANT["sig"], KEYS["victim"]["ed25519"])


def test_grant_signature_by_counsellor_key_fails() -> None:
    with pytest.raises(BadSignatureError):
        verify_object(GRANT["grant"], GRANT["sig"], KEYS["counsellor"]["ed25519"])


def test_verify_object_treats_malformed_sig_as_bad_signature() -> None:
    for sig in ("", "!!", GRANT["sig"] + "A", b64u_encode(b"\x00" * 63)):
        with pytest.raises(BadSignatureError):
            verify_object(GRANT["grant"], sig, KEYS["victim"]["ed25519"])


def test_sign_object_ignores_existing_sig_field() -> None:
    key = SigningKey.generate()
    assert sign_object({"a": 1, "sig": "x"}, key) == sign_object({"a": 1}, key)


# --- sealed org key --------------------------------------------------------------------------

PASSPHRASE = ORG["passphrase"].encode("utf-8")


def test_open_org_key_recovers_vector_private_key() -> None:
    assert bytes(open_org_key(ORG["sealed"], PASSPHRASE)) == b64u_decode(ORG["private"])


def test_seal_org_key_with_vector_salt_and_nonce_reproduces_vector() -> None:
    s = ORG["sealed"]
    sealed = seal_org_key(
        private(ORG["private"]),
        PASSPHRASE,
        key_id=s["key_id"],
        opslimit=s["opslimit"],
        memlimit=s["memlimit"],
        salt=b64u_decode(s["salt"]),
        nonce=b64u_decode(s["nonce"]),
    )
    assert sealed == s
    # The key-encryption key is the vector's Argon2id13 output.
    assert isinstance(sealed["ciphertext"], str)
    opened = SecretBox(b64u_decode(ORG["kek"])).decrypt(
        b64u_decode(sealed["ciphertext"]), b64u_decode(s["nonce"])
    )
    assert opened == b64u_decode(ORG["private"])


def test_org_key_round_trip_with_fresh_salt_and_nonce() -> None:
    key = PrivateKey.generate()
    sealed = seal_org_key(key, b"pw", key_id="k", opslimit=1, memlimit=8192)
    assert sealed["salt"] != ORG["sealed"]["salt"]
    assert bytes(open_org_key(sealed, b"pw")) == bytes(key)


def test_open_org_key_wrong_passphrase_is_decryption_error() -> None:
    with pytest.raises(DecryptionError):
        open_org_key(ORG["sealed"], b"wrong horse battery staple")


@pytest.mark.parametrize(
    "change",
    [{"opslimit": "2"}, {"opslimit": True}, {"memlimit": 1}, {"salt": "AAAA"}, {"nonce": None}],
    ids=["str-ops", "bool-ops", "tiny-mem", "short-salt", "no-nonce"],
)
def test_open_org_key_rejects_malformed_fields(change: dict[str, object]) -> None:
    with pytest.raises(EncodingError):
        open_org_key({**ORG["sealed"], **change}, PASSPHRASE)


# --- module boundaries -----------------------------------------------------------------------


def test_importing_crypto_pulls_in_no_other_bridge_module() -> None:
    code = "import sys, bridge.crypto; print(sorted(m for m in sys.modules if m[:6] == 'bridge'))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    crypto_modules = [f"bridge.crypto.{name}" for name in ("encoding", "envelope", "errors")]
    crypto_modules += ["bridge.crypto.grants", "bridge.crypto.keys"]
    assert out.stdout.strip() == str(["bridge", "bridge.crypto", *crypto_modules])
