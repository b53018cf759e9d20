// Org keys: the org's X25519 private key sealed under a passphrase (Argon2id13 + SecretBox), as
// the embedded demo keeps it (DESIGN.md "End-to-end encryption").

import sodium from "libsodium-wrappers-sumo";
import { b64uDecode, b64uEncode, encoder } from "./encoding.js";
import { CryptoError, DecryptionError, EncodingError } from "./errors.js";
import { KEY_BYTES, NONCE_BYTES, checkBytes } from "./keys.js";

const SALT_BYTES = 16; // crypto_pwhash_SALTBYTES
// Argon2id limits accepted in a sealed org key. libsodium.js exports its MAX constants overflowed
// (negative) and its 32-bit heap holds at most 2 GiB, so the bounds are written out here.
const OPSLIMIT_MIN = 1;
const OPSLIMIT_MAX = 2 ** 32 - 1;
const MEMLIMIT_MIN = 8192;
const MEMLIMIT_MAX = 2 ** 31;

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
