// The envelope (PROTOCOL.md "The envelope"): content encrypted once with a fresh content key,
// that key sealed to the victim and to each audience scope, the whole signed by the sender's
// device; and the grant object a victim signs.

import sodium from "libsodium-wrappers-sumo";
import { b64uDecode, b64uEncode, encoder, isPlainObject, jcs } from "./encoding.js";
import { BadSignatureError, DecryptionError, EncodingError, KeysMismatchError } from "./errors.js";
import {
  KEY_BYTES,
  NONCE_BYTES,
  checkBytes,
  seal,
  signObject,
  unsealKey,
  verifyObject,
} from "./keys.js";

/** Largest compact JSON encoding of an envelope, in bytes (PROTOCOL.md "Encoding"). */
export const MAX_ENVELOPE_BYTES = 16 * 1024;
/** Names a sealed content key may have in an envelope's `keys`. */
export const KEY_NAMES = Object.freeze(["victim", "care", "investigation"]);
const SEAL_BYTES = 48; // crypto_box_SEALBYTES: ephemeral public key + MAC
/** Bytes of a sealed 32-byte key (PROTOCOL.md "The envelope"). */
export const SEALED_KEY_BYTES = KEY_BYTES + SEAL_BYTES;

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

// --- consent ---------------------------------------------------------------------------------------

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
