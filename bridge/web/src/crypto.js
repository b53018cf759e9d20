// Envelope sealing, signing and key encoding for the browser clients: the twin of bridge/crypto.py.
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

import sodium from "libsodium-wrappers-sumo";

/** Largest compact JSON encoding of an envelope, in bytes (PROTOCOL.md "Encoding"). */
export const MAX_ENVELOPE_BYTES = 16 * 1024;
/** Names a sealed content key may have in an envelope's `keys`. */
export const KEY_NAMES = Object.freeze(["victim", "care", "investigation"]);
const KEY_BYTES = 32; // X25519 keys, Ed25519 seeds and content keys are all 32 raw bytes
const SEAL_BYTES = 48; // crypto_box_SEALBYTES: ephemeral public key + MAC
/** Bytes of a sealed 32-byte key (PROTOCOL.md "The envelope"). */
export const SEALED_KEY_BYTES = KEY_BYTES + SEAL_BYTES;
const SIGNATURE_BYTES = 64;
const NONCE_BYTES = 24; // crypto_secretbox_NONCEBYTES
const SALT_BYTES = 16; // crypto_pwhash_SALTBYTES
// Argon2id limits accepted in a sealed org key. libsodium.js exports its MAX constants overflowed
// (negative) and its 32-bit heap holds at most 2 GiB, so the bounds are written out here.
const OPSLIMIT_MIN = 1;
const OPSLIMIT_MAX = 2 ** 32 - 1;
const MEMLIMIT_MIN = 8192;
const MEMLIMIT_MAX = 2 ** 31;

/** Base class of every error thrown by this module. */
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

/** Resolves once libsodium's WebAssembly module is loaded. */
export async function ready() {
  await sodium.ready;
}

// --- b64u ----------------------------------------------------------------------------------------

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64U_RE = /^[A-Za-z0-9_-]*$/;
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));

/**
 * Unpadded URL-safe base64 (libsodium's URLSAFE_NO_PADDING, PROTOCOL.md "Encoding").
 * @param {Uint8Array} data
 * @returns {string}
 */
export function b64uEncode(data) {
  if (!(data instanceof Uint8Array)) throw new EncodingError("b64uEncode needs a Uint8Array");
  let out = "";
  for (let i = 0; i < data.length; i += 3) {
    const n = (data[i] << 16) | ((data[i + 1] ?? 0) << 8) | (data[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((data.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += ALPHABET[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/**
 * Strictly decode b64u; with `size`, the result must be exactly that many bytes.
 *
 * Rejects padding, "+" and "/", whitespace, impossible lengths and non-canonical trailing bits,
 * exactly as bridge/crypto.py does.
 * @param {string} text
 * @param {number} [size]
 * @returns {Uint8Array}
 */
export function b64uDecode(text, size) {
  if (typeof text !== "string" || !B64U_RE.test(text) || text.length % 4 === 1) {
    throw new EncodingError("not unpadded base64url");
  }
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const c of text) {
    acc = (acc << 6) | /** @type {number} */ (DECODE.get(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) {
    throw new EncodingError("non-canonical base64url (trailing bits set)");
  }
  if (size !== undefined && out.length !== size) {
    throw new EncodingError(`expected ${size} bytes, got ${out.length}`);
  }
  return out;
}

// --- JCS and hashing -----------------------------------------------------------------------------

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const encoder = new TextEncoder();

/** @param {string} s */
function jcsString(s) {
  if (LONE_SURROGATE.test(s)) {
    throw new EncodingError("string is not valid Unicode (lone surrogate)");
  }
  // RFC 8785 3.2.2.2 is ECMAScript's own string serialisation: JSON.stringify is exact here.
  return JSON.stringify(s);
}

/** @param {unknown} value @param {string[]} out */
function jcsParts(value, out) {
  if (value === null) {
    out.push("null");
  } else if (typeof value === "boolean") {
    out.push(value ? "true" : "false");
  } else if (typeof value === "number") {
    // The protocol has integers only; beyond 2**53 - 1 no client could reproduce the signed
    // bytes (RFC 8785 3.2.2.3), so such numbers are refused as in bridge/crypto.py.
    if (!Number.isSafeInteger(value)) {
      throw new EncodingError("JCS encodes only integers within the IEEE-754 safe range");
    }
    out.push(String(value)); // -0 prints as "0", as RFC 8785 requires
  } else if (typeof value === "string") {
    out.push(jcsString(value));
  } else if (Array.isArray(value)) {
    out.push("[");
    value.forEach((item, i) => {
      if (i) out.push(",");
      jcsParts(item, out);
    });
    out.push("]");
  } else if (isPlainObject(value)) {
    out.push("{");
    // Keys sorted by UTF-16 code units (RFC 8785 3.2.3): JavaScript's default string order.
    Object.keys(value)
      .sort()
      .forEach((key, i) => {
        if (i) out.push(",");
        out.push(jcsString(key), ":");
        jcsParts(value[key], out);
      });
    out.push("}");
  } else {
    throw new EncodingError(`JCS cannot encode ${describe(value)}`);
  }
}

/** @param {unknown} value @returns {value is Record<string, unknown>} */
function isPlainObject(value) {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** @param {unknown} value */
function describe(value) {
  if (typeof value !== "object") return typeof value;
  return value?.constructor?.name ?? "object";
}

/**
 * RFC 8785 canonical JSON text of `value` (PROTOCOL.md "Encoding").
 *
 * Throws EncodingError for non-integers, unsafe integers, lone surrogates, undefined, bigint,
 * typed arrays, Maps and any other non-JSON value.
 * @param {unknown} value
 * @returns {string}
 */
export function jcsText(value) {
  /** @type {string[]} */
  const out = [];
  try {
    jcsParts(value, out);
  } catch (err) {
    if (err instanceof RangeError) {
      throw new EncodingError("value nested too deeply", { cause: err });
    }
    throw err;
  }
  return out.join("");
}

/**
 * The UTF-8 bytes of `jcsText(value)`: what signatures are made over.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function jcs(value) {
  return encoder.encode(jcsText(value));
}

/**
 * SHA-256 digest (consent texts, Merkle leaves).
 * @param {Uint8Array | string} data a string is hashed as UTF-8
 * @returns {Uint8Array}
 */
export function sha256(data) {
  return sodium.crypto_hash_sha256(typeof data === "string" ? encoder.encode(data) : data);
}

/**
 * Bytes of the compact UTF-8 JSON of `value`: what the 16 KiB envelope limit is measured on.
 * @param {unknown} value
 * @returns {number}
 */
export function compactJsonSize(value) {
  const text = JSON.stringify(value);
  if (text === undefined) throw new EncodingError("not JSON-encodable");
  return encoder.encode(text).length;
}

// --- keys and signatures -------------------------------------------------------------------------

/** @param {Record<string, unknown>} obj */
function withoutSig(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => k !== "sig"));
}

/** @param {Uint8Array} bytes @param {number} size @param {string} what */
function checkBytes(bytes, size, what) {
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
function unsealKey(sealed, privateKey) {
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
   * `{public, sealed_private}`, as `POST /api/v1/conversations` carries the care scope.
   * @param {string} orgPublic
   */
  asPayload(orgPublic) {
    return { public: this.public, sealed_private: this.sealedTo(orgPublic) };
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

// --- the envelope --------------------------------------------------------------------------------

/**
 * The `keys` an envelope must hold: the victim always reads, plus each audience scope.
 * @param {readonly string[]} audience
 * @returns {Set<string>}
 */
export function requiredKeyNames(audience) {
  return new Set(["victim", ...audience]);
}

/** @param {Set<string>} a @param {Set<string>} b */
function sameSet(a, b) {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

/**
 * @typedef {object} EnvelopeArgs
 * @property {string} conversationId
 * @property {string} clientMsgId
 * @property {string} senderRole "victim" | "counsellor" | "officer"
 * @property {string} deviceId
 * @property {string} kind "message" | "needs_note"
 * @property {string[]} audience ["care"] or ["care", "investigation"]
 * @property {string | null} epochId
 * @property {{text: string, sent_at: string}} plaintext
 * @property {Record<string, string>} recipients key name -> b64u X25519 public key
 * @property {Uint8Array} signingKey the sender device's 64-byte Ed25519 secret key
 * @property {Uint8Array} [contentKey] tests only
 * @property {Uint8Array} [nonce] tests only: reusing a nonce under one content key breaks SecretBox
 */

/**
 * Encrypt `plaintext` to `recipients` and sign the envelope (PROTOCOL.md "The envelope").
 *
 * `recipients` must be exactly victim + audience (else KeysMismatchError). The plaintext is the
 * compact UTF-8 JSON of the object in its own key order (`{"text", "sent_at"}`), as
 * bridge/crypto.py writes it; only the ciphertext is signed, and readers accept any JSON object.
 * @param {EnvelopeArgs} args
 * @returns {Record<string, unknown>}
 */
export function buildEnvelope({
  conversationId,
  clientMsgId,
  senderRole,
  deviceId,
  kind,
  audience,
  epochId,
  plaintext,
  recipients,
  signingKey,
  contentKey,
  nonce,
}) {
  if (!sameSet(new Set(Object.keys(recipients)), requiredKeyNames(audience))) {
    throw new KeysMismatchError("recipients must be exactly victim plus the audience");
  }
  const key = contentKey ?? sodium.crypto_secretbox_keygen();
  const boxNonce = nonce ?? sodium.randombytes_buf(NONCE_BYTES);
  checkBytes(key, KEY_BYTES, "a content key");
  checkBytes(boxNonce, NONCE_BYTES, "a nonce");
  jcs(plaintext); // refuse non-integers and the like before they reach a reader
  const body = encoder.encode(JSON.stringify(plaintext));
  // MAC + ciphertext, no nonce (PROTOCOL.md "The envelope")
  const ciphertext = sodium.crypto_secretbox_easy(body, boxNonce, key);
  // The victim's key first, then the audience: order is irrelevant to JCS, but helps readers.
  const names = [
    "victim",
    ...Object.keys(recipients)
      .filter((n) => n !== "victim")
      .sort(),
  ];
  /** @type {Record<string, unknown>} */
  const envelope = {
    v: 1,
    conversation_id: conversationId,
    client_msg_id: clientMsgId,
    sender: { role: senderRole, device_id: deviceId },
    kind,
    audience: [...audience].sort(),
    epoch_id: epochId,
    nonce: b64uEncode(boxNonce),
    ciphertext: b64uEncode(ciphertext),
    keys: Object.fromEntries(names.map((n) => [n, seal(key, recipients[n])])),
  };
  envelope.sig = signObject(envelope, signingKey);
  return envelope;
}

/**
 * Check the sender's signature over the JCS of the envelope without `sig`.
 *
 * A valid signature proves the registered device produced every field, sealed keys and ciphertext
 * included; not that all sealed keys hold the same content key. Throws BadSignatureError (also
 * when `sig` is missing or malformed).
 * @param {Record<string, unknown>} envelope
 * @param {string} ed25519
 */
export function verifyEnvelope(envelope, ed25519) {
  const sig = envelope.sig;
  if (typeof sig !== "string") throw new BadSignatureError("envelope has no signature");
  verifyObject(envelope, sig, ed25519);
}

/**
 * Unseal `keys[keyName]` with `privateKey`; DecryptionError if absent or unopenable.
 * @param {Record<string, unknown>} envelope
 * @param {string} keyName
 * @param {Uint8Array} privateKey
 * @returns {Uint8Array}
 */
export function envelopeContentKey(envelope, keyName, privateKey) {
  if (!KEY_NAMES.includes(keyName)) {
    throw new EncodingError(`unknown key name ${JSON.stringify(keyName)}`);
  }
  const keys = envelope.keys;
  const sealed = isPlainObject(keys) && Object.hasOwn(keys, keyName) ? keys[keyName] : undefined;
  if (typeof sealed !== "string") throw new DecryptionError(`envelope has no ${keyName} key`);
  return unsealKey(sealed, privateKey);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decrypt the ciphertext with a known content key (e.g. one shared via `history.share`).
 *
 * The SecretBox MAC shows only that someone holding the content key wrote it; authorship comes
 * from `verifyEnvelope`. DecryptionError unless it opens to a UTF-8 JSON object.
 * @param {Record<string, unknown>} envelope
 * @param {Uint8Array} contentKey
 * @returns {Record<string, unknown>}
 */
export function openWithContentKey(envelope, contentKey) {
  checkBytes(contentKey, KEY_BYTES, "a content key");
  const { nonce, ciphertext } = envelope;
  let message;
  try {
    if (typeof nonce !== "string" || typeof ciphertext !== "string") {
      throw new DecryptionError("envelope has no nonce or ciphertext");
    }
    const raw = b64uDecode(ciphertext);
    const body = sodium.crypto_secretbox_open_easy(raw, b64uDecode(nonce, NONCE_BYTES), contentKey);
    message = JSON.parse(strictUtf8.decode(body));
  } catch (err) {
    if (err instanceof DecryptionError) throw err;
    throw new DecryptionError("ciphertext does not open", { cause: err });
  }
  if (!isPlainObject(message)) throw new DecryptionError("plaintext is not a JSON object");
  return message;
}

/**
 * Decrypt with the content key sealed under `keyName`. Does not verify the signature.
 * @param {Record<string, unknown>} envelope
 * @param {string} keyName
 * @param {Uint8Array} privateKey
 * @returns {Record<string, unknown>}
 */
export function openEnvelope(envelope, keyName, privateKey) {
  return openWithContentKey(envelope, envelopeContentKey(envelope, keyName, privateKey));
}

// --- consent and org keys ------------------------------------------------------------------------

/**
 * @typedef {object} GrantArgs
 * @property {string} requestId
 * @property {Record<string, unknown>} text `{version, lang, sha256}` of the consent text
 * @property {Record<string, boolean>} choices
 * @property {string} investigationPublic b64u X25519 key of the new investigation scope
 */

/**
 * The object a victim signs for `consent.grant`: without the sealed key, so the audit log can keep
 * grant and signature after retention deletes the key.
 * @param {GrantArgs} args
 */
export function signedGrant({ requestId, text, choices, investigationPublic }) {
  return {
    request_id: requestId,
    text: { ...text },
    choices: { ...choices },
    investigation_public: investigationPublic,
  };
}

/** @param {string | Uint8Array} passphrase */
function passphraseBytes(passphrase) {
  return typeof passphrase === "string" ? encoder.encode(passphrase) : passphrase;
}

/**
 * The 32-byte Argon2id13 key-encryption key of a sealed org key (PROTOCOL.md "The envelope").
 * Argon2id is deliberately slow: this blocks for the length of the hash.
 * @param {string | Uint8Array} passphrase a string is taken as UTF-8
 * @param {Uint8Array} salt 16 bytes
 * @param {number} opslimit
 * @param {number} memlimit
 * @returns {Uint8Array}
 */
export function orgKek(passphrase, salt, opslimit, memlimit) {
  checkBytes(salt, SALT_BYTES, "a salt");
  const alg = sodium.crypto_pwhash_ALG_ARGON2ID13;
  try {
    const password = passphraseBytes(passphrase);
    return sodium.crypto_pwhash(KEY_BYTES, password, salt, opslimit, memlimit, alg);
  } catch (err) {
    throw new CryptoError("Argon2id failed (limits beyond this browser's memory?)", { cause: err });
  }
}

/**
 * @typedef {object} OrgKeyOptions
 * @property {string} keyId
 * @property {number} opslimit
 * @property {number} memlimit
 * @property {Uint8Array} [salt] tests only
 * @property {Uint8Array} [nonce] tests only
 */

/**
 * SecretBox of the raw org private key under Argon2id13(passphrase, salt, limits).
 * Fresh random salt and nonce unless given (tests only).
 * @param {Uint8Array} privateKey 32 bytes
 * @param {string | Uint8Array} passphrase
 * @param {OrgKeyOptions} options
 */
export function sealOrgKey(privateKey, passphrase, { keyId, opslimit, memlimit, salt, nonce }) {
  checkBytes(privateKey, KEY_BYTES, "an org private key");
  const s = salt ?? sodium.randombytes_buf(SALT_BYTES);
  const n = nonce ?? sodium.randombytes_buf(NONCE_BYTES);
  if (s.length !== SALT_BYTES || n.length !== NONCE_BYTES) {
    throw new EncodingError("salt must be 16 bytes and nonce 24 bytes");
  }
  const kek = orgKek(passphrase, s, opslimit, memlimit);
  return {
    key_id: keyId,
    salt: b64uEncode(s),
    opslimit,
    memlimit,
    nonce: b64uEncode(n),
    ciphertext: b64uEncode(sodium.crypto_secretbox_easy(privateKey, n, kek)),
  };
}

/**
 * @param {Record<string, unknown>} sealed
 * @param {string} name
 * @param {number} low
 * @param {number} high
 */
function limit(sealed, name, low, high) {
  const value = sealed[name];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < low || value > high) {
    throw new EncodingError(`${name} must be an integer in [${low}, ${high}]`);
  }
  return value;
}

/**
 * Recover an org private key from `GET /api/v1/orgs/{org}/sealed-key`; DecryptionError on a
 * wrong passphrase, EncodingError for malformed fields.
 * @param {Record<string, unknown>} sealed
 * @param {string | Uint8Array} passphrase
 * @returns {Uint8Array} the 32-byte X25519 private key
 */
export function openOrgKey(sealed, passphrase) {
  const { salt, nonce, ciphertext } = sealed;
  if (typeof salt !== "string" || typeof nonce !== "string" || typeof ciphertext !== "string") {
    throw new EncodingError("sealed org key needs salt, nonce and ciphertext strings");
  }
  const opslimit = limit(sealed, "opslimit", OPSLIMIT_MIN, OPSLIMIT_MAX);
  const memlimit = limit(sealed, "memlimit", MEMLIMIT_MIN, MEMLIMIT_MAX);
  const rawNonce = b64uDecode(nonce, NONCE_BYTES);
  const rawCiphertext = b64uDecode(ciphertext);
  const kek = orgKek(passphrase, b64uDecode(salt, SALT_BYTES), opslimit, memlimit);
  let raw;
  try {
    raw = sodium.crypto_secretbox_open_easy(rawCiphertext, rawNonce, kek);
  } catch (err) {
    throw new DecryptionError("wrong passphrase or corrupted sealed key", { cause: err });
  }
  if (raw.length !== KEY_BYTES) throw new DecryptionError("sealed org key is not 32 bytes");
  return raw;
}
