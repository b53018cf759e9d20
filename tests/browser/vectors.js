// The browser's vector runner (vectors.html): `?suite=crypto` (the default) runs
// tests/vectors/crypto.json against crypto.js, `?suite=merkle` tests/vectors/rfc6962/ and the
// Merkle answers against merkle.js. The report is support/runner.js's.

import { ready } from "../../bridge/web/src/crypto.js";
import { runCrypto } from "./support/crypto_checks.js";
import { runMerkle } from "./support/merkle_checks.js";
import { runVectors, vector } from "./support/runner.js";

/** @type {Record<string, () => Promise<void>>} */
const SUITES = {
  crypto: async () => runCrypto(await vector("crypto.json")),
  merkle: runMerkle,
};

const suite = new URLSearchParams(location.search).get("suite") ?? "crypto";
runVectors(ready, async () => {
  if (!Object.hasOwn(SUITES, suite)) throw new Error(`no suite ${suite}`);
  await SUITES[suite]();
});
