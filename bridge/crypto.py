"""Envelope sealing, signing and key encoding shared by the server and the Python client.

What this module guarantees (PROTOCOL.md, "Encoding", "Keys", "The envelope"):

* Binary values travel as unpadded URL-safe base64 (``b64u``); decoding is strict and canonical
  (no padding, no ``+``/``/``, no whitespace, no non-zero trailing bits), matching libsodium's
  ``sodium_base642bin`` so browsers and Python reject exactly the same strings.
* Signed objects are signed over RFC 8785 (JCS) of the object without its ``sig`` field; ``jcs``
  refuses any value outside the protocol's set (str, int, bool, None, list, object) rather than
  guess a canonical form for it.
* An envelope's signature binds every field except ``sig``: routing data, audience, epoch, nonce,
  ciphertext and every sealed key. Opening an envelope does *not* verify it; call
  ``verify_envelope`` with the sender's registered key first.
* Errors: every failure is a ``CryptoError``. A malformed *argument supplied by the caller* (a
  public key, a content key) raises ``EncodingError``; malformed *received* material raises the
  operation's own error: a bad signature string ``BadSignatureError``, an unopenable box or
  envelope ``DecryptionError``, so callers need catch only one error per operation.

This module depends on the standard library and PyNaCl only, so any client can vendor it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import nacl.bindings
import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.utils
from nacl.encoding import _Encoder
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox
from nacl.signing import SigningKey, VerifyKey

__all__ = [
    "KEY_NAMES",
    "MAX_ENVELOPE_BYTES",
    "SEALED_KEY_BYTES",
    "B64UEncoder",
    "BadSignatureError",
    "CryptoError",
    "DecryptionError",
    "DeviceKeys",
    "EncodingError",
    "KeysMismatchError",
    "ScopeKey",
    "b64u_decode",
    "b64u_encode",
    "build_envelope",
    "check_envelope_keys",
    "compact_json_size",
    "envelope_content_key",
    "jcs",
    "open_envelope",
    "open_org_key",
    "open_scope_key",
    "open_with_content_key",
    "required_key_names",
    "seal",
    "seal_org_key",
    "sha256",
    "sign_object",
    "signed_grant",
    "unseal",
    "verify_envelope",
    "verify_object",
    "verify_registration",
]

MAX_ENVELOPE_BYTES: int = 16 * 1024
KEY_NAMES: frozenset[str] = frozenset({"victim", "care", "investigation"})
KEY_BYTES = 32  # X25519 keys, Ed25519 seeds and content keys are all 32 raw bytes
SEALED_KEY_BYTES: int = KEY_BYTES + nacl.bindings.crypto_box_SEALBYTES  # + ephemeral key + MAC
SIGNATURE_BYTES = 64
NONCE_BYTES = SecretBox.NONCE_SIZE
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES
# JCS numbers are IEEE doubles (RFC 8785, 3.2.2.3): beyond 2**53 - 1 a JavaScript client could not
# reproduce the bytes we sign, so such integers are refused rather than signed.
_MAX_SAFE_INTEGER = 2**53 - 1


class CryptoError(Exception):
    """Base class of every error raised by this module."""


class EncodingError(CryptoError):
    """Malformed b64u, a value JCS cannot encode, or a key of the wrong length."""


class BadSignatureError(CryptoError):
    """A signature that does not verify, including one that is not 64 bytes of valid b64u."""


class DecryptionError(CryptoError):
    """A sealed box, SecretBox or envelope that does not open (wrong key, tampered, malformed)."""


class KeysMismatchError(CryptoError):
    """``keys`` are not exactly victim + audience, or one is not a sealed 32-byte key."""


# --- b64u ------------------------------------------------------------------------------------

_B64U_RE = re.compile(r"[A-Za-z0-9_-]*")


def b64u_encode(data: bytes) -> str:
    """Unpadded URL-safe base64 (libsodium's ``URLSAFE_NO_PADDING``, PROTOCOL.md "Encoding")."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, *, size: int | None = None) -> bytes:
    """Strictly decode b64u; with ``size``, the result must be exactly that many bytes.

    Rejects padding, the standard alphabet's ``+``/``/``, whitespace, impossible lengths and
    non-canonical trailing bits (as libsodium does), so each byte string has exactly one
    accepted encoding. Raises ``EncodingError``.
    """
    if not isinstance(text, str) or _B64U_RE.fullmatch(text) is None or len(text) % 4 == 1:
        raise EncodingError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise EncodingError("not unpadded base64url") from exc
    if b64u_encode(data) != text:
        raise EncodingError("non-canonical base64url (trailing bits set)")
    if size is not None and len(data) != size:
        raise EncodingError(f"expected {size} bytes, got {len(data)}")
    return data


class B64UEncoder(_Encoder):
    """A PyNaCl encoder for b64u, e.g. ``VerifyKey(x, encoder=B64UEncoder)``.

    It subclasses PyNaCl's encoder base only so that type checkers accept it as ``encoder=``.
    """

    @staticmethod
    def encode(data: bytes) -> bytes:
        return b64u_encode(data).encode("ascii")

    @staticmethod
    def decode(data: bytes) -> bytes:
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            raise EncodingError("not unpadded base64url") from exc
        return b64u_decode(text)


# --- JCS and hashing -------------------------------------------------------------------------

# RFC 8785 3.2.2.2 (ECMAScript JSON.stringify): escape only '"', '\\' and U+0000..U+001F, using the
# short forms where JSON has them and lowercase \u00xx otherwise; everything else is literal UTF-8.
_JCS_ESCAPES: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x20)}
_JCS_ESCAPES.update(
    {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
)


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as the UTF-16 code units RFC 8785 3.2.3 sorts by.
    return key.encode("utf-16-be")


def _jcs_parts(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):  # before int: bool is an int subclass
        out.append("true" if value else "false")
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise EncodingError("integer outside the IEEE-754 safe range")
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append('"' + value.translate(_JCS_ESCAPES) + '"')
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _jcs_parts(item, out)
        out.append("]")
    elif isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise EncodingError("object keys must be strings")
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            _jcs_parts(key, out)
            out.append(":")
            _jcs_parts(value[key], out)
        out.append("}")
    else:
        # Floats included: the protocol has none, and their JCS form is easy to get wrong.
        raise EncodingError(f"JCS cannot encode {type(value).__name__}")


def jcs(obj: object) -> bytes:
    """RFC 8785 canonical JSON of ``obj`` (str, int, bool, None, list/tuple, str-keyed mapping).

    Raises ``EncodingError`` for floats, bytes, non-string keys, integers beyond 2**53 - 1, lone
    surrogates (not valid I-JSON) and any other type.
    """
    out: list[str] = []
    try:
        _jcs_parts(obj, out)
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodingError("string is not valid Unicode (lone surrogate)") from exc
    except RecursionError as exc:
        raise EncodingError("value nested too deeply") from exc


def sha256(data: bytes) -> bytes:
    """SHA-256 digest (consent texts, Merkle leaves)."""
    return hashlib.sha256(data).digest()


def compact_json_size(obj: object) -> int:
    """Bytes of the compact UTF-8 JSON of ``obj``: what the 16 KiB envelope limit is measured on."""
    try:
        return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise EncodingError("not JSON-encodable") from exc


# --- keys and signatures ---------------------------------------------------------------------


def _public_key(x25519: str) -> PublicKey:
    return PublicKey(b64u_decode(x25519, size=KEY_BYTES))


def _verify_key(ed25519: str) -> VerifyKey:
    return VerifyKey(b64u_decode(ed25519, size=KEY_BYTES))


def _without_sig(obj: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in obj.items() if k != "sig"}


def _verify_detached(message: bytes, sig: str, key: VerifyKey) -> None:
    try:
        raw_sig = b64u_decode(sig, size=SIGNATURE_BYTES)
    except EncodingError as exc:
        raise BadSignatureError("signature is not 64 bytes of b64u") from exc
    try:
        key.verify(message, raw_sig)
    except nacl.exceptions.BadSignatureError as exc:
        raise BadSignatureError("signature does not verify") from exc


def sign_object(obj: Mapping[str, object], key: SigningKey) -> str:
    """Ed25519 detached signature (b64u) over ``jcs(obj)`` without its ``sig`` field.

    Every other field, nested ones included, is covered; an existing ``sig`` is ignored, so this
    also re-signs an object.
    """
    return b64u_encode(key.sign(jcs(_without_sig(obj))).signature)


def verify_object(obj: Mapping[str, object], sig: str, ed25519: str) -> None:
    """Check ``sig`` over ``jcs(obj)`` without ``sig`` against the b64u Ed25519 key.

    Raises ``BadSignatureError`` for a wrong signature and for one that is not 64 bytes of valid
    b64u; ``EncodingError`` for a malformed key or an object JCS cannot encode.
    """
    _verify_detached(jcs(_without_sig(obj)), sig, _verify_key(ed25519))


def verify_registration(ed25519: str, x25519: str, sig: str) -> None:
    """Check a ``device.register`` payload: ``sig`` is Ed25519 over the raw 32-byte X25519 key.

    This proves the holder of the signing key chose that box key. Raises ``EncodingError`` for a
    malformed key, ``BadSignatureError`` for a wrong or malformed signature.
    """
    box_public = b64u_decode(x25519, size=KEY_BYTES)
    _verify_detached(box_public, sig, _verify_key(ed25519))


@dataclass(frozen=True)
class DeviceKeys:
    """A device's Ed25519 signing key and X25519 box key. ``repr`` shows no key material."""

    signing: SigningKey = field(repr=False)
    box: PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> DeviceKeys:
        return cls(SigningKey.generate(), PrivateKey.generate())

    @classmethod
    def from_private(cls, ed25519_seed: bytes, x25519_private: bytes) -> DeviceKeys:
        if len(ed25519_seed) != KEY_BYTES or len(x25519_private) != KEY_BYTES:
            raise EncodingError("device keys must be 32 bytes each")
        return cls(SigningKey(ed25519_seed), PrivateKey(x25519_private))

    @property
    def ed25519(self) -> str:
        return b64u_encode(bytes(self.signing.verify_key))

    @property
    def x25519(self) -> str:
        return b64u_encode(bytes(self.box.public_key))

    def registration(self) -> dict[str, str]:
        """The ``device.register`` payload: both public keys and the binding signature."""
        sig = self.signing.sign(bytes(self.box.public_key)).signature
        return {"ed25519": self.ed25519, "x25519": self.x25519, "sig": b64u_encode(sig)}

    def sign(self, obj: Mapping[str, object]) -> str:
        """``sign_object`` with this device's signing key."""
        return sign_object(obj, self.signing)


# --- sealed boxes and scopes -----------------------------------------------------------------


def seal(data: bytes, recipient_x25519: str) -> str:
    """b64u ``crypto_box_seal`` of ``data``: anonymous, so it says nothing about the sender."""
    try:
        return b64u_encode(SealedBox(_public_key(recipient_x25519)).encrypt(data))
    except nacl.exceptions.CryptoError as exc:  # e.g. a low-order point
        raise EncodingError("not a usable X25519 public key") from exc


def unseal(sealed: str, private: PrivateKey) -> bytes:
    """Open a b64u sealed box; ``DecryptionError`` if it is malformed or not for this key."""
    try:
        raw = b64u_decode(sealed)
    except EncodingError as exc:
        raise DecryptionError("sealed box is not b64u") from exc
    try:
        return SealedBox(private).decrypt(raw)
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionError("sealed box does not open") from exc


def _unseal_key(sealed: str, private: PrivateKey) -> bytes:
    key = unseal(sealed, private)
    if len(key) != KEY_BYTES:
        raise DecryptionError("sealed key is not 32 bytes")
    return key


@dataclass(frozen=True)
class ScopeKey:
    """An X25519 scope keypair: the care scope (per conversation) or an investigation epoch's."""

    private: PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> ScopeKey:
        return cls(PrivateKey.generate())

    @property
    def public(self) -> str:
        return b64u_encode(bytes(self.private.public_key))

    def sealed_to(self, org_public: str) -> str:
        """The raw private key sealed to the org's X25519 key (PROTOCOL.md "Keys")."""
        return seal(bytes(self.private), org_public)

    def as_payload(self, org_public: str) -> dict[str, str]:
        return {"public": self.public, "sealed_private": self.sealed_to(org_public)}


def open_scope_key(sealed_private: str, org_private: PrivateKey) -> PrivateKey:
    """Recover a scope's private key with the org key; ``DecryptionError`` if it does not open."""
    return PrivateKey(_unseal_key(sealed_private, org_private))


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


# --- consent and org keys --------------------------------------------------------------------


def signed_grant(
    *,
    request_id: str,
    text: Mapping[str, object],
    choices: Mapping[str, bool],
    investigation_public: str,
) -> dict[str, object]:
    """The object a victim signs for ``consent.grant`` (PROTOCOL.md): without the sealed key,
    so the audit log can keep grant and signature after retention deletes the key."""
    return {
        "request_id": request_id,
        "text": dict(text),
        "choices": dict(choices),
        "investigation_public": investigation_public,
    }


def _org_kek(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        KEY_BYTES, passphrase, salt, opslimit=opslimit, memlimit=memlimit
    )


def seal_org_key(
    private: PrivateKey,
    passphrase: bytes,
    *,
    key_id: str,
    opslimit: int,
    memlimit: int,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> dict[str, object]:
    """SecretBox of the raw org private key under Argon2id13(passphrase, salt, limits).

    Fresh random salt and nonce unless given (tests only). The result is safe to hand to any
    staff member of the org; its strength is that of the passphrase.
    """
    salt = nacl.utils.random(SALT_BYTES) if salt is None else salt
    nonce = nacl.utils.random(NONCE_BYTES) if nonce is None else nonce
    if len(salt) != SALT_BYTES or len(nonce) != NONCE_BYTES:
        raise EncodingError("salt must be 16 bytes and nonce 24 bytes")
    kek = _org_kek(passphrase, salt, opslimit, memlimit)
    ciphertext = SecretBox(kek).encrypt(bytes(private), nonce).ciphertext
    return {
        "key_id": key_id,
        "salt": b64u_encode(salt),
        "opslimit": opslimit,
        "memlimit": memlimit,
        "nonce": b64u_encode(nonce),
        "ciphertext": b64u_encode(ciphertext),
    }


def _limit(sealed: Mapping[str, object], name: str, low: int, high: int) -> int:
    value = sealed.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EncodingError(f"{name} must be an integer in [{low}, {high}]")
    return value


def open_org_key(sealed: Mapping[str, object], passphrase: bytes) -> PrivateKey:
    """Recover an org private key; ``DecryptionError`` on a wrong passphrase.

    Malformed fields raise ``EncodingError``. The limits are taken as given within libsodium's
    bounds, so a client should fetch the sealed key only from its own server.
    """
    salt, nonce, ciphertext = sealed.get("salt"), sealed.get("nonce"), sealed.get("ciphertext")
    if not (isinstance(salt, str) and isinstance(nonce, str) and isinstance(ciphertext, str)):
        raise EncodingError("sealed org key needs salt, nonce and ciphertext strings")
    argon = nacl.pwhash.argon2id
    opslimit = _limit(sealed, "opslimit", argon.OPSLIMIT_MIN, argon.OPSLIMIT_MAX)
    memlimit = _limit(sealed, "memlimit", argon.MEMLIMIT_MIN, argon.MEMLIMIT_MAX)
    kek = _org_kek(passphrase, b64u_decode(salt, size=SALT_BYTES), opslimit, memlimit)
    try:
        raw = SecretBox(kek).decrypt(b64u_decode(ciphertext), b64u_decode(nonce, size=NONCE_BYTES))
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionError("wrong passphrase or corrupted sealed key") from exc
    if len(raw) != KEY_BYTES:
        raise DecryptionError("sealed org key is not 32 bytes")
    return PrivateKey(raw)
