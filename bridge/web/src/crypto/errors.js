// The errors of the browser's crypto (crypto.js): one base, and one error per operation.

/** Base class of every error thrown by crypto.js. */
export class CryptoError extends Error {
  /** @param {string} message @param {ErrorOptions} [options] */
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}
/** Malformed b64u, a value JCS cannot encode, or a key of the wrong length. */
export class EncodingError extends CryptoError {}
/** A signature that does not verify, including one that is not 64 bytes of valid b64u. */
export class BadSignatureError extends CryptoError {}
/** A sealed box, SecretBox or envelope that does not open (wrong key, tampered, malformed). */
export class DecryptionError extends CryptoError {}
/** `keys` are not exactly victim + audience, or one is not a sealed 32-byte key. */
export class KeysMismatchError extends CryptoError {}
