"""The signed consent grant and org keys sealed under a passphrase (Argon2id)."""

from __future__ import annotations

from collections.abc import Mapping

import nacl.bindings
import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.utils
from nacl.public import PrivateKey
from nacl.secret import SecretBox

from bridge.crypto.encoding import b64u_decode, b64u_encode
from bridge.crypto.envelope import NONCE_BYTES
from bridge.crypto.errors import DecryptionError, EncodingError
from bridge.crypto.keys import KEY_BYTES

SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES


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
