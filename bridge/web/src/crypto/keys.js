// Keys and signatures: device keys (Ed25519 + X25519), signing and verifying JCS objects and
// registrations, sealed boxes, scope keys (PROTOCOL.md "Keys").

import sodium from "libsodium-wrappers-sumo";
import { b64uDecode, b64uEncode, encoder, jcs } from "./encoding.js";
import { BadSignatureError, DecryptionError, EncodingError } from "./errors.js";

/** X25519 keys, Ed25519 seeds and content keys are all 32 raw bytes. */
export const KEY_BYTES = 32;
/** crypto_secretbox_NONCEBYTES */
export const NONCE_BYTES = 24;
const SIGNATURE_BYTES = 64;

/** Resolves once libsodium's WebAssembly module is loaded. */
export async function ready() {
  await sodium.ready;
}

/**
 * SHA-256 digest (consent texts, Merkle leaves).
 * @param {Uint8Array | string} data a string is hashed as UTF-8
 * @returns {Uint8Array}
 */
export function sha256(data) {
  return sodium.crypto_hash_sha256(typeof data === "string" ? encoder.encode(data) : data);
}

// --- keys and signatures -------------------------------------------------------------------------

/** @param {Record<string, unknown>} obj */
function withoutSig(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => k !== "sig"));
}

/** @param {Uint8Array} bytes @param {number} size @param {string} what */
export function checkBytes(bytes, size, what) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== size) {
    throw new EncodingError(`${what} must be ${size} bytes`);
  }
  return bytes;
}

/** @param {Uint8Array} message @param {unknown} sig @param {string} ed25519 */
function verifyDetached(message, sig, ed25519) {
  const key = b64uDecode(ed25519, KEY_BYTES);
  let rawSig;
  try {
    rawSig = b64uDecode(/** @type {string} */ (sig), SIGNATURE_BYTES);
  } catch (err) {
    throw new BadSignatureError("signature is not 64 bytes of b64u", { cause: err });
  }
  if (!sodium.crypto_sign_verify_detached(rawSig, message, key)) {
    throw new BadSignatureError("signature does not verify");
  }
}

/**
 * Ed25519 detached signature (b64u) over `jcs(obj)` without its `sig` field
 * (PROTOCOL.md "Encoding"). An existing `sig` is ignored, so this also re-signs an object.
 * @param {Record<string, unknown>} obj
 * @param {Uint8Array} signingKey libsodium's 64-byte Ed25519 secret key
 * @returns {string}
 */
export function signObject(obj, signingKey) {
  checkBytes(signingKey, 64, "an Ed25519 signing key");
  return b64uEncode(sodium.crypto_sign_detached(jcs(withoutSig(obj)), signingKey));
}

/**
 * Check `sig` over `jcs(obj)` without `sig` against the b64u Ed25519 key.
 *
 * Throws BadSignatureError for a wrong signature and for one that is not 64 bytes of valid b64u;
 * EncodingError for a malformed key or an object JCS cannot encode.
 * @param {Record<string, unknown>} obj
 * @param {string} sig
 * @param {string} ed25519
 */
export function verifyObject(obj, sig, ed25519) {
  verifyDetached(jcs(withoutSig(obj)), sig, ed25519);
}

/**
 * Check a `device.register` payload: `sig` is Ed25519 over the raw 32-byte X25519 key.
 * @param {string} ed25519
 * @param {string} x25519
 * @param {string} sig
 */
export function verifyRegistration(ed25519, x25519, sig) {
  verifyDetached(b64uDecode(x25519, KEY_BYTES), sig, ed25519);
}

/**
 * The X25519 public key of a private key.
 * @param {Uint8Array} privateKey 32 bytes
 * @returns {string} b64u
 */
export function x25519Public(privateKey) {
  checkBytes(privateKey, KEY_BYTES, "an X25519 private key");
  return b64uEncode(sodium.crypto_scalarmult_base(privateKey));
}

/** A device's Ed25519 signing key and X25519 box key. The private halves are not enumerable. */
export class DeviceKeys {
  #signing;
  #box;

  /** @param {Uint8Array} ed25519Seed 32 bytes @param {Uint8Array} x25519Private 32 bytes */
  constructor(ed25519Seed, x25519Private) {
    if (
      !(ed25519Seed instanceof Uint8Array) ||
      !(x25519Private instanceof Uint8Array) ||
      ed25519Seed.length !== KEY_BYTES ||
      x25519Private.length !== KEY_BYTES
    ) {
      throw new EncodingError("device keys must be 32 bytes each");
    }
    this.#signing = sodium.crypto_sign_seed_keypair(ed25519Seed);
    this.#box = x25519Private.slice();
    /** @type {string} b64u Ed25519 public key */
    this.ed25519 = b64uEncode(this.#signing.publicKey);
    /** @type {string} b64u X25519 public key */
    this.x25519 = x25519Public(this.#box);
    Object.freeze(this);
  }

  /** @returns {DeviceKeys} */
  static generate() {
    return new DeviceKeys(sodium.randombytes_buf(KEY_BYTES), sodium.randombytes_buf(KEY_BYTES));
  }

  /**
   * @param {Uint8Array} ed25519Seed
   * @param {Uint8Array} x25519Private
   * @returns {DeviceKeys}
   */
  static fromPrivate(ed25519Seed, x25519Private) {
    return new DeviceKeys(ed25519Seed, x25519Private);
  }

  /**
   * The private halves, for the device's own key store (the inverse of `fromPrivate`).
   * @returns {{ed25519Seed: Uint8Array, x25519Private: Uint8Array}}
   */
  exportPrivate() {
    const ed25519Seed = this.#signing.privateKey.slice(0, KEY_BYTES);
    return { ed25519Seed, x25519Private: this.#box.slice() };
  }

  /** libsodium's 64-byte Ed25519 secret key, for signObject and buildEnvelope. */
  get signingKey() {
    return this.#signing.privateKey.slice();
  }

  /** The X25519 private key, for opening sealed keys addressed to this device. */
  get boxPrivate() {
    return this.#box.slice();
  }

  /**
   * The `device.register` payload: both public keys and the binding signature over the raw X25519
   * public key (PROTOCOL.md "Keys").
   * @returns {{ed25519: string, x25519: string, sig: string}}
   */
  registration() {
    const sig = sodium.crypto_sign_detached(b64uDecode(this.x25519), this.#signing.privateKey);
    return { ed25519: this.ed25519, x25519: this.x25519, sig: b64uEncode(sig) };
  }

  /** `signObject` with this device's signing key. @param {Record<string, unknown>} obj */
  sign(obj) {
    return signObject(obj, this.#signing.privateKey);
  }
}

// --- sealed boxes and scopes ---------------------------------------------------------------------

/**
 * b64u crypto_box_seal of `data`: anonymous, so it says nothing about the sender.
 * @param {Uint8Array} data
 * @param {string} recipientX25519 b64u public key
 * @returns {string}
 */
export function seal(data, recipientX25519) {
  const key = b64uDecode(recipientX25519, KEY_BYTES);
  try {
    return b64uEncode(sodium.crypto_box_seal(data, key));
  } catch (err) {
    throw new EncodingError("not a usable X25519 public key", { cause: err }); // e.g. low order
  }
}

/**
 * Open a b64u sealed box; DecryptionError if it is malformed or not for this key.
 * @param {string} sealed
 * @param {Uint8Array} privateKey 32-byte X25519 private key
 * @returns {Uint8Array}
 */
export function unseal(sealed, privateKey) {
  checkBytes(privateKey, KEY_BYTES, "an X25519 private key");
  let raw;
  try {
    raw = b64uDecode(sealed);
  } catch (err) {
    throw new DecryptionError("sealed box is not b64u", { cause: err });
  }
  const publicKey = sodium.crypto_scalarmult_base(privateKey);
  try {
    return sodium.crypto_box_seal_open(raw, publicKey, privateKey);
  } catch (err) {
    throw new DecryptionError("sealed box does not open", { cause: err });
  }
}

/** @param {string} sealed @param {Uint8Array} privateKey */
export function unsealKey(sealed, privateKey) {
  const key = unseal(sealed, privateKey);
  if (key.length !== KEY_BYTES) throw new DecryptionError("sealed key is not 32 bytes");
  return key;
}

/** An X25519 scope keypair: the care scope (per conversation) or an investigation epoch's. */
export class ScopeKey {
  #private;

  /** @param {Uint8Array} privateKey 32 bytes */
  constructor(privateKey) {
    this.#private = checkBytes(privateKey, KEY_BYTES, "a scope private key").slice();
    /** @type {string} b64u X25519 public key */
    this.public = x25519Public(this.#private);
    Object.freeze(this);
  }

  /** @returns {ScopeKey} */
  static generate() {
    return new ScopeKey(sodium.randombytes_buf(KEY_BYTES));
  }

  get privateKey() {
    return this.#private.slice();
  }

  /**
   * The raw private key sealed to the org's X25519 key (PROTOCOL.md "Keys": care to fier,
   * investigation to avim).
   * @param {string} orgPublic
   */
  sealedTo(orgPublic) {
    return seal(this.#private, orgPublic);
  }

  /**
   * `{public, sealed_private, key_id?}`, as `POST /api/v1/conversations` carries the care
   * scope.
   * @param {string} orgPublic
   * @param {string | null} [keyId] the org key version's id, sent along when given
   */
  asPayload(orgPublic, keyId = null) {
    const payload = { public: this.public, sealed_private: this.sealedTo(orgPublic) };
    return keyId === null ? payload : { ...payload, key_id: keyId };
  }
}

/**
 * Recover a scope's private key with the org key; DecryptionError if it does not open.
 * @param {string} sealedPrivate
 * @param {Uint8Array} orgPrivate
 * @returns {Uint8Array}
 */
export function openScopeKey(sealedPrivate, orgPrivate) {
  return unsealKey(sealedPrivate, orgPrivate);
}
