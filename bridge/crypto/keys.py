"""Device keys, signatures over JCS, sealed boxes and scope keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import nacl.bindings
import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.utils
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from bridge.crypto.encoding import b64u_decode, b64u_encode, jcs
from bridge.crypto.errors import BadSignatureError, DecryptionError, EncodingError

KEY_BYTES = 32  # X25519 keys, Ed25519 seeds and content keys are all 32 raw bytes
SEALED_KEY_BYTES: int = KEY_BYTES + nacl.bindings.crypto_box_SEALBYTES  # + ephemeral key + MAC
SIGNATURE_BYTES = 64


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


def verify_signed(message: bytes, sig: str, ed25519: str) -> None:
    """Check ``sig`` over bytes the caller already holds in signed form (the JCS of an object
    without its ``sig``, say); ``BadSignatureError`` if it does not verify, ``EncodingError``
    for a malformed key."""
    _verify_detached(message, sig, _verify_key(ed25519))


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

    def as_payload(self, org_public: str, key_id: str | None = None) -> dict[str, str]:
        """``{public, sealed_private}``, with the org key version's ``key_id`` if given."""
        payload = {"public": self.public, "sealed_private": self.sealed_to(org_public)}
        if key_id is not None:
            payload["key_id"] = key_id
        return payload


def open_scope_key(sealed_private: str, org_private: PrivateKey) -> PrivateKey:
    """Recover a scope's private key with the org key; ``DecryptionError`` if it does not open."""
    return PrivateKey(_unseal_key(sealed_private, org_private))
