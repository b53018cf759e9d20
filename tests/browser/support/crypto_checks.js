// tests/vectors/crypto.json against bridge/web/src/crypto.js: every known answer that
// tests/unit/test_crypto.py checks against bridge/crypto.py, and the same rejections (the b64u
// and JCS groups are encoding_checks.js).

import sodium from "libsodium-wrappers-sumo";
import * as c from "../../../bridge/web/src/crypto.js";
import { runEncoding } from "./encoding_checks.js";
import { check, ok, raises, same, sameBytes, toHex } from "./runner.js";

/** The same b64u value with one byte changed. @param {string} b64u @param {number} [index] */
function flip(b64u, index = 0) {
  const raw = c.b64uDecode(b64u);
  raw[index] ^= 0x01;
  return c.b64uEncode(raw);
}

/** @param {any} value @returns {any} */
function clone(value) {
  return structuredClone(value);
}

/** @param {any} V the parsed vector file */
export function runCrypto(V) {
  runEncoding(V);
  const KEYS = V.keys;
  const ENV = V.envelope;
  const GRANT = V.signed_grant;
  const ORG = V.sealed_org_key;
  const d = (/** @type {string} */ b64u) => c.b64uDecode(b64u);
  const device = (/** @type {string} */ name) =>
    c.DeviceKeys.fromPrivate(d(KEYS[name].ed25519_seed), d(KEYS[name].x25519_private));
  /** @type {Record<string, string>} */
  const READERS = {
    victim: KEYS.victim.x25519_private,
    care: KEYS.care_scope.private,
    investigation: KEYS.investigation_scope.private,
  };
  /** @type {Record<string, string>} */
  const RECIPIENTS = {
    victim: KEYS.victim.x25519,
    care: KEYS.care_scope.public,
    investigation: KEYS.investigation_scope.public,
  };
  const e = ENV.envelope;
  const buildVectorEnvelope = (/** @type {Partial<c.EnvelopeArgs>} */ overrides = {}) =>
    c.buildEnvelope({
      conversationId: e.conversation_id,
      clientMsgId: e.client_msg_id,
      senderRole: e.sender.role,
      deviceId: e.sender.device_id,
      kind: e.kind,
      audience: e.audience,
      epochId: e.epoch_id,
      plaintext: ENV.plaintext,
      recipients: RECIPIENTS,
      signingKey: device(ENV.signed_by).signingKey,
      contentKey: d(ENV.content_key),
      nonce: d(e.nonce),
      ...overrides,
    });
  const withoutSig = (/** @type {Record<string, unknown>} */ o) =>
    Object.fromEntries(Object.entries(o).filter(([k]) => k !== "sig"));

  // --- keys
  for (const name of ["victim", "counsellor"]) {
    check("keys", `device ${name}`, () => {
      const keys = device(name);
      same([keys.ed25519, keys.x25519], [KEYS[name].ed25519, KEYS[name].x25519]);
      same(JSON.stringify(keys).includes(KEYS[name].ed25519_seed), false);
    });
  }
  for (const name of ["care_scope", "investigation_scope", "org_fier", "org_avim"]) {
    check("keys", `scope ${name}`, () =>
      same(new c.ScopeKey(d(KEYS[name].private)).public, KEYS[name].public),
    );
  }

  // --- device.register
  const reg = V.device_register;
  check("device_register", "signature reproduced", () =>
    same(device(reg.device).registration(), reg.payload),
  );
  check("device_register", "vector verifies", () =>
    c.verifyRegistration(reg.payload.ed25519, reg.payload.x25519, reg.payload.sig),
  );
  for (const field of ["sig", "x25519", "ed25519"]) {
    check("device_register", `tampered ${field}`, () => {
      const p = { ...reg.payload, [field]: flip(reg.payload[field]) };
      raises(() => c.verifyRegistration(p.ed25519, p.x25519, p.sig), c.BadSignatureError);
    });
  }
  check("device_register", "another device's box key", () =>
    raises(
      () => c.verifyRegistration(reg.payload.ed25519, KEYS.victim.x25519, reg.payload.sig),
      c.BadSignatureError,
    ),
  );
  check("device_register", "malformed sig is bad signature, malformed key is encoding", () => {
    const p = reg.payload;
    raises(
      () => c.verifyRegistration(p.ed25519, p.x25519, p.sig.slice(0, -2)),
      c.BadSignatureError,
    );
    raises(() => c.verifyRegistration(p.ed25519.slice(0, -2), p.x25519, p.sig), c.EncodingError);
  });

  // --- the envelope
  const sender = KEYS[ENV.signed_by].ed25519;
  check("envelope", "vector verifies under sender key", () => c.verifyEnvelope(e, sender));
  check("envelope", "JCS without sig", () => same(c.jcsText(withoutSig(e)), ENV.jcs_without_sig));
  check("envelope", "signature reproduced", () =>
    same(c.signObject(e, device(ENV.signed_by).signingKey), e.sig),
  );
  check("envelope", "rebuilt with vector content key and nonce", () => {
    const built = buildVectorEnvelope();
    same(Object.keys(built), Object.keys(e)); // same field order as the vector
    const rest = (/** @type {Record<string, unknown>} */ o) =>
      Object.fromEntries(Object.entries(o).filter(([k]) => k !== "keys" && k !== "sig"));
    same(rest(built), rest(e));
    same(Object.keys(/** @type {object} */ (built.keys)), Object.keys(e.keys));
    c.verifyEnvelope(built, sender);
    // Sealed keys are random: with the vector's in their place, JCS and signature are the vector's.
    const withVectorKeys = { ...built, keys: e.keys };
    same(c.jcsText(withoutSig(withVectorKeys)), ENV.jcs_without_sig);
    same(c.signObject(withVectorKeys, device(ENV.signed_by).signingKey), e.sig);
    for (const name of Object.keys(READERS)) {
      sameBytes(c.envelopeContentKey(built, name, d(READERS[name])), d(ENV.content_key));
    }
  });
  check("envelope", "plaintext is compact JSON in given order", () => {
    const built = buildVectorEnvelope();
    same(c.openWithContentKey(built, d(ENV.content_key)), ENV.plaintext);
    same(built.ciphertext, e.ciphertext);
    same(
      JSON.stringify(ENV.plaintext),
      '{"text":"Hoi, ik ben er. Je kunt altijd stoppen.","sent_at":"2026-11-22T14:05:00Z"}',
    );
  });
  check("envelope", "audience written sorted", () =>
    same(buildVectorEnvelope({ audience: ["investigation", "care"] }).audience, [
      "care",
      "investigation",
    ]),
  );
  check("envelope", "fresh content key and nonce", () => {
    const a = buildVectorEnvelope({ contentKey: undefined, nonce: undefined });
    const b = buildVectorEnvelope({ contentKey: undefined, nonce: undefined });
    ok(a.nonce !== b.nonce, "nonces repeat");
    const ka = c.envelopeContentKey(a, "victim", d(READERS.victim));
    const kb = c.envelopeContentKey(b, "victim", d(READERS.victim));
    ok(toHex(ka) !== toHex(kb) && toHex(ka) !== toHex(d(ENV.content_key)), "content keys repeat");
  });
  check("envelope", "recipients exactly victim plus audience", () => {
    raises(() => buildVectorEnvelope({ audience: ["care"] }), c.KeysMismatchError);
    const { victim, ...withoutVictim } = RECIPIENTS;
    raises(() => buildVectorEnvelope({ recipients: withoutVictim }), c.KeysMismatchError);
  });
  check("envelope", "rejects non-JCS plaintext", () =>
    raises(
      () => buildVectorEnvelope({ plaintext: /** @type {any} */ ({ text: "x", sent_at: 1.5 }) }),
      c.EncodingError,
    ),
  );
  for (const name of Object.keys(READERS).sort()) {
    check("envelope", `sealed key opens for ${name}`, () =>
      sameBytes(c.envelopeContentKey(e, name, d(READERS[name])), d(ENV.content_key)),
    );
    check("envelope", `opens to plaintext for ${name}`, () =>
      same(c.openEnvelope(e, name, d(READERS[name])), ENV.plaintext),
    );
  }
  check("envelope", "ciphertext opens with content key", () =>
    same(c.openWithContentKey(e, d(ENV.content_key)), ENV.plaintext),
  );
  check("envelope", "another reader's key does not open", () =>
    raises(() => c.envelopeContentKey(e, "care", d(READERS.victim)), c.DecryptionError),
  );
  check("envelope", "tampered ciphertext does not open", () =>
    raises(
      () => c.openWithContentKey({ ...e, ciphertext: flip(e.ciphertext, 20) }, d(ENV.content_key)),
      c.DecryptionError,
    ),
  );
  check("envelope", "reader accepts any JSON serialisation", () => {
    const body = new TextEncoder().encode('{ "sent_at" : "t",\n "text" : "caf\\u00e9" }');
    const nonce = new Uint8Array(24).fill(2);
    const env = withCiphertext(e, body, nonce, d(ENV.content_key));
    same(c.openWithContentKey(env, d(ENV.content_key)), { sent_at: "t", text: "café" });
  });
  check("envelope", "non-object plaintext does not open", () => {
    const nonce = new Uint8Array(24).fill(1);
    for (const body of [
      new TextEncoder().encode("not json"),
      new TextEncoder().encode("[1,2]"),
      new Uint8Array([0xff, 0xfe]),
    ]) {
      const env = withCiphertext(e, body, nonce, d(ENV.content_key));
      raises(() => c.openWithContentKey(env, d(ENV.content_key)), c.DecryptionError);
    }
  });
  for (const path of signedLeaves(e)) {
    check("envelope", `one-byte change of ${path.join(".")} fails`, () => {
      const env = clone(e);
      let parent = env;
      for (const step of path.slice(0, -1)) parent = parent[step];
      const last = path[path.length - 1];
      const value = parent[last];
      parent[last] =
        typeof value === "number"
          ? value ^ 1
          : String.fromCharCode(value.charCodeAt(0) ^ 1) + value.slice(1);
      raises(() => c.verifyEnvelope(env, sender), c.BadSignatureError);
    });
  }
  /** @type {[string, (env: any) => void][]} */
  const structural = [
    ["no-epoch", (env) => delete env.epoch_id],
    ["added-field", (env) => (env.extra = 1)],
    ["null-epoch", (env) => (env.epoch_id = null)],
    ["dropped-key", (env) => delete env.keys.investigation],
    ["sig-bit", (env) => (env.sig = flip(env.sig, 63))],
    ["sig-short", (env) => (env.sig = env.sig.slice(0, -1))],
    ["no-sig", (env) => delete env.sig],
  ];
  for (const [name, change] of structural) {
    check("envelope", `structural change ${name} fails`, () => {
      const env = clone(e);
      change(env);
      raises(() => c.verifyEnvelope(env, sender), c.BadSignatureError);
    });
  }
  check("envelope", "signed by another device fails", () =>
    raises(() => c.verifyEnvelope(e, KEYS.victim.ed25519), c.BadSignatureError),
  );
  check("envelope", "vector size under the limit", () =>
    ok(c.compactJsonSize(e) < c.MAX_ENVELOPE_BYTES, "too large"),
  );

  // --- signed grant
  const g = GRANT.grant;
  check("signed_grant", "object and JCS", () => {
    const grant = c.signedGrant({
      requestId: g.request_id,
      text: g.text,
      choices: g.choices,
      investigationPublic: g.investigation_public,
    });
    same(grant, g);
    same(c.jcsText(grant), GRANT.jcs);
  });
  check("signed_grant", "signature reproduced", () =>
    same(device(GRANT.signed_by).sign(g), GRANT.sig),
  );
  check("signed_grant", "verifies, with or without its sig field", () => {
    c.verifyObject(g, GRANT.sig, KEYS[GRANT.signed_by].ed25519);
    c.verifyObject({ ...g, sig: GRANT.sig }, GRANT.sig, KEYS.victim.ed25519);
  });
  /** @type {[string, (grant: any) => void][]} */
  const tampered = [
    ["choice", (grant) => (grant.choices.retain_for_case_file = true)],
    ["text-version", (grant) => (grant.text.version = "informational-nl-2")],
    ["scope", (grant) => (grant.investigation_public = KEYS.care_scope.public)],
  ];
  for (const [name, change] of tampered) {
    check("signed_grant", `tampered ${name} fails`, () => {
      const grant = clone(g);
      change(grant);
      raises(() => c.verifyObject(grant, GRANT.sig, KEYS.victim.ed25519), c.BadSignatureError);
    });
  }
  check("signed_grant", "counsellor key fails", () =>
    raises(() => c.verifyObject(g, GRANT.sig, KEYS.counsellor.ed25519), c.BadSignatureError),
  );
  check("signed_grant", "malformed sig is bad signature", () => {
    for (const sig of ["", "!!", `${GRANT.sig}A`, c.b64uEncode(new Uint8Array(63))]) {
      raises(() => c.verifyObject(g, sig, KEYS.victim.ed25519), c.BadSignatureError);
    }
  });

  // --- sealed org key (Argon2id13: each check runs the KDF)
  const s = ORG.sealed;
  check("sealed_org_key", "opens with the passphrase", () =>
    sameBytes(c.openOrgKey(s, ORG.passphrase), d(ORG.private)),
  );
  check("sealed_org_key", "re-sealed with vector salt and nonce", () => {
    const sealed = c.sealOrgKey(d(ORG.private), ORG.passphrase, {
      keyId: s.key_id,
      opslimit: s.opslimit,
      memlimit: s.memlimit,
      salt: d(s.salt),
      nonce: d(s.nonce),
    });
    same(sealed, s);
  });
  check("sealed_org_key", "Argon2id13 output is the vector kek", () =>
    sameBytes(c.orgKek(ORG.passphrase, d(s.salt), s.opslimit, s.memlimit), d(ORG.kek)),
  );
  check("sealed_org_key", "wrong passphrase", () =>
    raises(() => c.openOrgKey(s, "wrong horse battery staple"), c.DecryptionError),
  );
  /** @type {[string, Record<string, unknown>][]} */
  const malformed = [
    ["str-ops", { opslimit: "2" }],
    ["bool-ops", { opslimit: true }],
    ["tiny-mem", { memlimit: 1 }],
    ["short-salt", { salt: "AAAA" }],
    ["no-nonce", { nonce: null }],
  ];
  for (const [name, change] of malformed) {
    check("sealed_org_key", `rejects ${name}`, () =>
      raises(() => c.openOrgKey({ ...s, ...change }, ORG.passphrase), c.EncodingError),
    );
  }
  check("sealed_org_key", "round trip with fresh salt and nonce", () => {
    const key = c.ScopeKey.generate().privateKey;
    const sealed = c.sealOrgKey(key, "pw", { keyId: "k", opslimit: 1, memlimit: 8192 });
    ok(sealed.salt !== s.salt, "salt repeats");
    sameBytes(c.openOrgKey(sealed, "pw"), key);
  });

  // --- round trips with fresh keys
  check("round_trip", "generated registration verifies", () => {
    const r = c.DeviceKeys.generate().registration();
    c.verifyRegistration(r.ed25519, r.x25519, r.sig);
  });
  check("round_trip", "device keys export and import", () => {
    const keys = c.DeviceKeys.generate();
    const { ed25519Seed, x25519Private } = keys.exportPrivate();
    same(c.DeviceKeys.fromPrivate(ed25519Seed, x25519Private).registration(), keys.registration());
  });
  check("round_trip", "seal and unseal", () => {
    const recipient = c.ScopeKey.generate();
    const sealed = c.seal(new TextEncoder().encode("secret"), recipient.public);
    same(new TextDecoder().decode(c.unseal(sealed, recipient.privateKey)), "secret");
    raises(() => c.unseal(sealed, c.ScopeKey.generate().privateKey), c.DecryptionError);
    raises(() => c.unseal("not b64u!", recipient.privateKey), c.DecryptionError);
    raises(() => c.seal(new Uint8Array(1), "AAAA"), c.EncodingError);
  });
  check("round_trip", "scope key sealed to org", () => {
    const scope = c.ScopeKey.generate();
    const payload = scope.asPayload(KEYS.org_fier.public);
    same(payload.public, scope.public);
    sameBytes(c.openScopeKey(payload.sealed_private, d(KEYS.org_fier.private)), scope.privateKey);
    raises(
      () => c.openScopeKey(payload.sealed_private, d(KEYS.org_avim.private)),
      c.DecryptionError,
    );
  });
  check("round_trip", "envelope for every reader", () => {
    const readers = { victim: c.ScopeKey.generate(), care: c.ScopeKey.generate() };
    const message = { text: "Dag — 😀", sent_at: "2026-01-01T00:00:00Z" };
    const author = c.DeviceKeys.generate();
    const env = buildVectorEnvelope({
      audience: ["care"],
      epochId: null,
      plaintext: message,
      recipients: { victim: readers.victim.public, care: readers.care.public },
      signingKey: author.signingKey,
      contentKey: undefined,
      nonce: undefined,
    });
    c.verifyEnvelope(env, author.ed25519);
    for (const [name, key] of Object.entries(readers))
      same(c.openEnvelope(env, name, key.privateKey), message);
    raises(() => c.openEnvelope(env, "investigation", readers.care.privateKey), c.DecryptionError);
  });
  check("round_trip", "sha256 known answer", () =>
    same(
      toHex(c.sha256("abc")),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    ),
  );
}

/**
 * @param {Record<string, unknown>} envelope
 * @param {Uint8Array} body
 * @param {Uint8Array} nonce
 * @param {Uint8Array} key
 */
function withCiphertext(envelope, body, nonce, key) {
  const ciphertext = sodium.crypto_secretbox_easy(body, nonce, key);
  return { ...envelope, nonce: c.b64uEncode(nonce), ciphertext: c.b64uEncode(ciphertext) };
}

/**
 * Paths of every signed leaf of an object (all but `sig`).
 * @param {any} obj
 * @param {(string | number)[]} path
 * @returns {(string | number)[][]}
 */
function signedLeaves(obj, path = []) {
  if (Array.isArray(obj)) return obj.flatMap((v, i) => signedLeaves(v, [...path, i]));
  if (obj !== null && typeof obj === "object") {
    return Object.entries(obj).flatMap(([k, v]) =>
      k === "sig" ? [] : signedLeaves(v, [...path, k]),
    );
  }
  return [path];
}
