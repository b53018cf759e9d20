// Envelope sealing, signing and key encoding for the browser clients: the twin of bridge/crypto.py,
// one module per job under crypto/ (errors, encoding, keys, envelope, orgkey), all of it here.
//
// Byte for byte what the Python side produces and accepts (PROTOCOL.md "Encoding", "Keys",
// "The envelope"); tests/vectors/crypto.json is run against both. The guarantees are the same:
//
// * Binary values travel as unpadded URL-safe base64 (b64u). Decoding is strict and canonical (no
//   padding, no "+" or "/", no whitespace, no non-zero trailing bits), so each byte string has
//   exactly one accepted encoding, here as in Python.
// * Signed objects are signed over RFC 8785 (JCS) of the object without its `sig` field; `jcs`
//   refuses anything outside the protocol's values (string, safe integer, boolean, null, array,
//   plain object) rather than guess a canonical form for it.
// * An envelope's signature binds every field except `sig`. Opening an envelope does not verify
//   it: call `verifyEnvelope` with the sender's registered key first.
// * Every failure is a CryptoError. A malformed argument supplied by the caller (a public key, a
//   content key) is an EncodingError; malformed received material raises the operation's own
//   error (BadSignatureError, DecryptionError), so a caller catches one error per operation.
//
// Keys are Uint8Array: X25519 private keys and Ed25519 seeds are 32 bytes; an Ed25519 signing key
// is libsodium's 64-byte secret key (seed followed by public key). Public keys travel as b64u.
// Call `await ready()` once before anything but the b64u and JCS functions.

export { b64uDecode, b64uEncode, compactJsonSize, jcs, jcsText } from "./crypto/encoding.js";
export {
  BadSignatureError,
  CryptoError,
  DecryptionError,
  EncodingError,
  KeysMismatchError,
} from "./crypto/errors.js";
export {
  KEY_NAMES,
  MAX_ENVELOPE_BYTES,
  SEALED_KEY_BYTES,
  buildEnvelope,
  envelopeContentKey,
  openEnvelope,
  openWithContentKey,
  requiredKeyNames,
  signedGrant,
  verifyEnvelope,
} from "./crypto/envelope.js";
export {
  DeviceKeys,
  ScopeKey,
  openScopeKey,
  ready,
  seal,
  sha256,
  signObject,
  unseal,
  verifyObject,
  verifyRegistration,
  x25519Public,
} from "./crypto/keys.js";
export { openOrgKey, orgKek, sealOrgKey } from "./crypto/orgkey.js";
