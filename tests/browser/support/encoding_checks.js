// The b64u and JCS answers of tests/vectors/crypto.json against bridge/web/src/crypto.js, and
// the same rejections as tests/unit/test_crypto.py: strict, canonical encodings on both sides.

import * as c from "../../../bridge/web/src/crypto.js";
import { check, fromHex, raises, same, sameBytes, toHex } from "./runner.js";

/** @param {any} V the parsed vector file */
export function runEncoding(V) {
  // --- b64u
  for (const v of V.b64u) {
    const id = v.b64u || "empty";
    check("b64u", `${id} encode`, () => same(c.b64uEncode(fromHex(v.hex)), v.b64u));
    check("b64u", `${id} decode`, () => same(toHex(c.b64uDecode(v.b64u)), v.hex));
  }
  const badB64u = [
    "AA==",
    "AA=",
    "-_8=",
    "+/8",
    "+_-_",
    "-/-_",
    "A A",
    " AA",
    "AA\n",
    "A",
    "AAAAA",
    "AB",
    "é",
  ];
  for (const text of badB64u) {
    check("b64u_strict", `rejects ${JSON.stringify(text)}`, () =>
      raises(() => c.b64uDecode(text), c.EncodingError),
    );
  }
  check("b64u_strict", "size", () => {
    sameBytes(c.b64uDecode("AAEC", 3), new Uint8Array([0, 1, 2]));
    raises(() => c.b64uDecode("AAEC", 32), c.EncodingError);
  });

  // --- JCS
  V.jcs.forEach((/** @type {any} */ v, /** @type {number} */ i) => {
    check("jcs", String(i), () => {
      same(c.jcsText(v.object), v.jcs);
      sameBytes(c.jcs(v.object), new TextEncoder().encode(v.jcs));
    });
  });
  check("jcs_strict", "escapes only quote, backslash and controls", () => {
    const value = '"\\\x00\x08\t\n\x0c\r\x1f\x7f\u2028/é';
    same(c.jcsText(value), '"\\"\\\\\\u0000\\b\\t\\n\\f\\r\\u001f\x7f\u2028/é"');
  });
  check("jcs_strict", "bool distinct from int", () =>
    same(c.jcsText([true, false, 1, 0, null]), "[true,false,1,0,null]"),
  );
  /** @type {[string, unknown][]} */
  const badJcs = [
    ["half", 0.5],
    ["fraction", 1.5],
    ["nan", [NaN]],
    ["infinity", Infinity],
    ["big", 2 ** 53],
    ["-big", -(2 ** 53)],
    ["surrogate", "\ud800"],
    ["surrogate-key", { "\udc00": 1, a: 2 }],
    ["bytes", new Uint8Array(1)],
    ["map", new Map()],
    ["undefined", { a: undefined }],
    ["bigint", 1n],
  ];
  for (const [name, value] of badJcs) {
    check("jcs_strict", `rejects ${name}`, () => raises(() => c.jcs(value), c.EncodingError));
  }
  check("jcs_strict", "accepts the largest safe integers", () =>
    same(c.jcsText([2 ** 53 - 1, -(2 ** 53 - 1)]), "[9007199254740991,-9007199254740991]"),
  );
}
