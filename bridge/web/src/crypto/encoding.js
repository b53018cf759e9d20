// Encoding, as bridge/crypto.py does it: strict, canonical b64u and RFC 8785 (JCS). Needs no
// libsodium, so it works before `ready()`.

import { EncodingError } from "./errors.js";

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
export const encoder = new TextEncoder();

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
export function isPlainObject(value) {
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
 * Bytes of the compact UTF-8 JSON of `value`: what the 16 KiB envelope limit is measured on.
 * @param {unknown} value
 * @returns {number}
 */
export function compactJsonSize(value) {
  const text = JSON.stringify(value);
  if (text === undefined) throw new EncodingError("not JSON-encodable");
  return encoder.encode(text).length;
}
