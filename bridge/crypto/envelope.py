"""The envelope (PROTOCOL.md, "The envelope"): built, verified and opened."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import nacl.bindings
import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.utils
from nacl.public import PrivateKey
from nacl.secret import SecretBox
from nacl.signing import SigningKey

from bridge.crypto.encoding import b64u_decode, b64u_encode, jcs
from bridge.crypto.errors import (
    BadSignatureError,
    DecryptionError,
    EncodingError,
    KeysMismatchError,
)
from bridge.crypto.keys import (
    KEY_BYTES,
    SEALED_KEY_BYTES,
    _unseal_key,
    seal,
    sign_object,
    verify_object,
)

MAX_ENVELOPE_BYTES: int = 16 * 1024
KEY_NAMES: frozenset[str] = frozenset({"victim", "care", "investigation"})
NONCE_BYTES = SecretBox.NONCE_SIZE


# --- the envelope ----------------------------------------------------------------------------


def required_key_names(audience: Sequence[str]) -> frozenset[str]:
    """The ``keys`` an envelope must hold: the victim always reads, plus each audience scope."""
    return frozenset({"victim", *audience})


def check_envelope_keys(keys: Mapping[str, object], audience: Sequence[str]) -> None:
    """Server-side shape check of ``keys`` (it cannot open them).

    ``EncodingError`` (``invalid``) for a name outside ``KEY_NAMES`` or a non-string value;
    ``KeysMismatchError`` (``bad_keys``) if the names are not exactly victim + audience or a value
    is not b64u of ``SEALED_KEY_BYTES`` bytes. It cannot tell whether each key seals the same
    content key: recipients detect that only by failing to open the ciphertext.
    """
    for name, value in keys.items():
        if name not in KEY_NAMES:
            raise EncodingError(f"unknown key name {name!r}")
        if not isinstance(value, str):
            raise EncodingError(f"keys.{name} is not a string")
    if set(keys) != required_key_names(audience):
        raise KeysMismatchError("keys must be exactly victim plus the audience")
    for name, value in keys.items():
        try:
            b64u_decode(str(value), size=SEALED_KEY_BYTES)
        except EncodingError as exc:
            raise KeysMismatchError(f"keys.{name} is not a sealed 32-byte key") from exc


def build_envelope(
    *,
    conversation_id: str,
    client_msg_id: str,
    sender_role: str,
    device_id: str,
    kind: str,
    audience: Sequence[str],
    epoch_id: str | None,
    plaintext: Mapping[str, object],
    recipients: Mapping[str, str],
    signing_key: SigningKey,
    content_key: bytes | None = None,
    nonce: bytes | None = None,
) -> dict[str, object]:
    """Encrypt ``plaintext`` to ``recipients`` and sign the envelope with the sender's device key.

    ``recipients`` maps each key name to an X25519 public key and must be exactly victim +
    audience (else ``KeysMismatchError``). The plaintext is the compact UTF-8 JSON of the mapping
    in its given order (``{"text", "sent_at"}``), as the known-answer vector has it; it is not JCS,
    since only the ciphertext is signed and readers accept any JSON object. Pass ``content_key``
    and ``nonce`` only in tests: reusing a nonce under one content key breaks SecretBox.
    Protocol-level rules (kind, epoch_id present iff investigation) are the server's to enforce.
    """
    if set(recipients) != required_key_names(audience):
        raise KeysMismatchError("recipients must be exactly victim plus the audience")
    key = nacl.utils.random(KEY_BYTES) if content_key is None else content_key
    box_nonce = nacl.utils.random(NONCE_BYTES) if nonce is None else nonce
    if len(key) != KEY_BYTES or len(box_nonce) != NONCE_BYTES:
        raise EncodingError("content key must be 32 bytes and nonce 24 bytes")
    jcs(plaintext)  # refuse floats and the like before they reach a reader
    body = json.dumps(plaintext, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ciphertext = SecretBox(key).encrypt(body, box_nonce).ciphertext  # MAC + ciphertext, no nonce
    # The victim's key first, then the audience: order is irrelevant to JCS, but helps readers.
    names = ["victim", *sorted(n for n in recipients if n != "victim")]
    envelope: dict[str, object] = {
        "v": 1,
        "conversation_id": conversation_id,
        "client_msg_id": client_msg_id,
        "sender": {"role": sender_role, "device_id": device_id},
        "kind": kind,
        "audience": sorted(audience),
        "epoch_id": epoch_id,
        "nonce": b64u_encode(box_nonce),
        "ciphertext": b64u_encode(ciphertext),
        "keys": {n: seal(key, recipients[n]) for n in names},
    }
    envelope["sig"] = sign_object(envelope, signing_key)
    return envelope


def verify_envelope(envelope: Mapping[str, object], ed25519: str) -> None:
    """Check the sender's signature over ``jcs(envelope)`` without ``sig``.

    A valid signature proves the registered device produced every field, the sealed keys and
    ciphertext included; it does not prove that all sealed keys hold the same content key.
    Raises ``BadSignatureError`` (also when ``sig`` is missing or malformed).
    """
    sig = envelope.get("sig")
    if not isinstance(sig, str):
        raise BadSignatureError("envelope has no signature")
    verify_object(envelope, sig, ed25519)


def envelope_content_key(
    envelope: Mapping[str, object], key_name: str, private: PrivateKey
) -> bytes:
    """Unseal ``keys[key_name]`` with ``private``; ``DecryptionError`` if absent or unopenable."""
    if key_name not in KEY_NAMES:
        raise EncodingError(f"unknown key name {key_name!r}")
    keys = envelope.get("keys")
    sealed = keys.get(key_name) if isinstance(keys, Mapping) else None
    if not isinstance(sealed, str):
        raise DecryptionError(f"envelope has no {key_name} key")
    return _unseal_key(sealed, private)


def open_with_content_key(envelope: Mapping[str, object], content_key: bytes) -> dict[str, object]:
    """Decrypt the ciphertext with a known content key (e.g. one shared via ``history.share``).

    The SecretBox MAC shows only that someone holding the content key wrote it; authorship comes
    from ``verify_envelope``. ``DecryptionError`` unless it opens to a UTF-8 JSON object.
    """
    if len(content_key) != KEY_BYTES:
        raise EncodingError("content key must be 32 bytes")
    nonce, ciphertext = envelope.get("nonce"), envelope.get("ciphertext")
    try:
        if not isinstance(nonce, str) or not isinstance(ciphertext, str):
            raise DecryptionError("envelope has no nonce or ciphertext")
        raw_nonce = b64u_decode(nonce, size=NONCE_BYTES)
        body = SecretBox(content_key).decrypt(b64u_decode(ciphertext), raw_nonce)
        message = json.loads(body.decode("utf-8"))
    except (EncodingError, nacl.exceptions.CryptoError, UnicodeDecodeError, ValueError) as exc:
        raise DecryptionError("ciphertext does not open") from exc
    if not isinstance(message, dict):
        raise DecryptionError("plaintext is not a JSON object")
    return message


def open_envelope(
    envelope: Mapping[str, object], key_name: str, private: PrivateKey
) -> dict[str, object]:
    """Decrypt with the content key sealed under ``key_name``. Does not verify the signature."""
    return open_with_content_key(envelope, envelope_content_key(envelope, key_name, private))
