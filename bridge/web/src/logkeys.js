// How the audit page follows the log key from the key the auditor trusts, as the offline verifier
// does (bridge/log/export_format.py, `_KeyChain`; docs/audit.md "When the log key changes").
//
// The key changes only at a `log_key.rotated` entry that names the key in force as the old one
// and a new key whose id is its key hash, and only once the old key has signed over it: the first
// checkpoint after the entry must be the old key's, verify under it, and have as root the root
// of the entries it covers. The page holds every entry, so that root is computed here from them
// rather than from a server's inclusion proof: it shows the entry is included and also ties the
// hand-over to the same log the latest checkpoint covers. Hashes and roots are merkle.js's,
// signatures crypto.js's: call `await ready()` of crypto.js first.

import * as crypto from "./crypto.js";
import * as merkle from "./merkle.js";

/** The kind of the entry that hands the log over to a new key. */
export const ROTATED = "log_key.rotated";

/** @typedef {Record<string, any>} Json */
/** @typedef {{key_id: string, ed25519: string}} Key */
/** @typedef {Key & {rotation: {index: number, size: number} | null}} ChainKey a key of the log and
 * the rotation entry and hand-over checkpoint size that brought it in (null for the first) */
/** @typedef {{key: string, values: Record<string, string | number>}} Problem a text key of the
 * page's translations and its values */

const ALG_ED25519 = 0x01;

/**
 * The id checkpoints name a log key by: its C2SP signed-note key hash in hex,
 * `SHA-256(origin || "\n" || 0x01 || key)[:4]` (bridge/log/signed_note.py, `key_hash`). Throws
 * EncodingError unless `ed25519` is b64u of 32 bytes.
 * @param {string} origin @param {string} ed25519
 */
export function keyId(origin, ed25519) {
  const name = new TextEncoder().encode(`${origin}\n`);
  const key = crypto.b64uDecode(ed25519, 32);
  const data = new Uint8Array(name.length + 1 + key.length);
  data.set(name);
  data[name.length] = ALG_ED25519;
  data.set(key, name.length + 1);
  const hash = crypto.sha256(data).subarray(0, 4);
  return Array.from(hash, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * The keys of the log from `first` on, oldest first, and the first problem with a change of key
 * (the keys then end at the one in force before it). `leaves` are the leaf hashes of `entries`;
 * `checkpoints` the signed checkpoints, oldest first, at least up to the first after the last
 * rotation.
 * @param {{origin: string, first: Key, entries: {index: number, entry: Json}[],
 *   leaves: Uint8Array[], checkpoints: Json[]}} log
 * @returns {{keys: ChainKey[], problem: Problem | null}}
 */
export function followKeys({ origin, first, entries, leaves, checkpoints }) {
  /** @type {ChainKey[]} */
  const keys = [{ key_id: first.key_id, ed25519: first.ed25519, rotation: null }];
  for (const { index, entry } of entries) {
    if (entry?.kind !== ROTATED) continue;
    const old = keys[keys.length - 1];
    const handover = checkpoints.find((checkpoint) => Number(checkpoint?.size) > index);
    const problem =
      rotationProblem(entry, old, keys, origin) ?? handoverProblem(handover, old, leaves);
    if (problem) {
      const values = {
        index,
        old: old.key_id,
        named: String(entry.old_key_id ?? ""),
        key: String(entry.new_key_id ?? ""),
      };
      return { keys, problem: { key: problem, values } };
    }
    const rotation = { index, size: Number(handover?.size) };
    keys.push({ key_id: entry.new_key_id, ed25519: entry.new_ed25519, rotation });
  }
  return { keys, problem: null };
}

/**
 * Why a rotation entry cannot hand over from `old`, as a text key; null if it can.
 * @param {Json} entry @param {Key} old @param {Key[]} keys @param {string} origin
 */
function rotationProblem(entry, old, keys, origin) {
  if (entry.old_key_id !== old.key_id || entry.old_ed25519 !== old.ed25519) {
    return "reason.rotationFrom";
  }
  let id = null;
  try {
    id = keyId(origin, String(entry.new_ed25519));
  } catch (err) {
    if (!(err instanceof crypto.CryptoError)) throw err;
  }
  if (id === null || id !== entry.new_key_id) return "reason.rotationId";
  if (keys.some((key) => key.key_id === id)) return "reason.rotationBack";
  return null;
}

/**
 * Why `checkpoint`, the first after a rotation entry, is no hand-over by `old` of the entries
 * whose leaves are given, as a text key; null if it is one.
 * @param {Json | undefined} checkpoint @param {Key} old @param {Uint8Array[]} leaves
 */
function handoverProblem(checkpoint, old, leaves) {
  const size = checkpoint?.size;
  if (!Number.isSafeInteger(size) || size > leaves.length) return "reason.handoverMissing";
  if (checkpoint?.key_id !== old.key_id) return "reason.handoverKey";
  try {
    crypto.verifyObject(/** @type {Json} */ (checkpoint), checkpoint?.sig, old.ed25519);
  } catch (err) {
    if (!(err instanceof crypto.CryptoError)) throw err;
    return "reason.handoverSig";
  }
  let root = new Uint8Array(0);
  try {
    root = crypto.b64uDecode(String(checkpoint?.root), merkle.HASH_SIZE);
  } catch {
    // a root that is no hash matches nothing
  }
  return merkle.sameHash(merkle.root(leaves.slice(0, size)), root) ? null : "reason.handoverRoot";
}
