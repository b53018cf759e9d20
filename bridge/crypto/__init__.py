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

The package re-exports every public name; one module per job: ``encoding`` (b64u, JCS, SHA-256),
``keys`` (device keys, signatures, sealed boxes, scope keys), ``envelope``, ``grants`` (the
signed grant and passphrase-sealed org keys) and ``errors``.
"""

from bridge.crypto.encoding import (
    B64UEncoder,
    b64u_decode,
    b64u_encode,
    compact_json_size,
    jcs,
    jcs_checked,
    sha256,
)
from bridge.crypto.envelope import (
    KEY_NAMES,
    MAX_ENVELOPE_BYTES,
    build_envelope,
    check_envelope_keys,
    envelope_content_key,
    open_envelope,
    open_with_content_key,
    required_key_names,
    verify_envelope,
)
from bridge.crypto.errors import (
    BadSignatureError,
    CryptoError,
    DecryptionError,
    EncodingError,
    KeysMismatchError,
)
from bridge.crypto.grants import open_org_key, seal_org_key, signed_grant
from bridge.crypto.keys import (
    SEALED_KEY_BYTES,
    DeviceKeys,
    ScopeKey,
    open_scope_key,
    seal,
    sign_object,
    unseal,
    verify_object,
    verify_registration,
    verify_signed,
)

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
    "jcs_checked",
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
    "verify_signed",
]
