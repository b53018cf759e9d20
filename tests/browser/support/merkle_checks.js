// tests/vectors/rfc6962/ (every file) and the `merkle` answers of tests/vectors/crypto.json
// against bridge/web/src/merkle.js: what tests/unit/log/test_merkle.py checks against
// bridge/log/merkle.py. Each happy path verifies; each named mutation (wantErr) fails with a
// VerificationError.

import * as c from "../../../bridge/web/src/crypto.js";
import * as m from "../../../bridge/web/src/merkle.js";
import { check, fromHex, raises, same, sameBytes, vector } from "./runner.js";

/** @typedef {Record<string, any>} Json */

/** The Go vectors' hashes: standard base64 with padding (Go's `[]byte` in JSON).
 * @param {string} text */
function b64(text) {
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

/** Go writes an empty proof as null. @param {Json} v */
const proofOf = (v) => (v.proof ?? []).map(b64);

/** @param {Json} reference the reference tree */
function runReferenceTree(reference) {
  const leaves = reference.leaf_inputs.map((/** @type {string} */ hex) => m.leafHash(fromHex(hex)));
  reference.root_hashes.forEach((/** @type {string} */ want, /** @type {number} */ size) => {
    check("reference_tree", `root of size ${size}`, () =>
      sameBytes(m.root(leaves.slice(0, size)), fromHex(want)),
    );
  });
  reference.node_hashes.forEach((/** @type {string[]} */ hashes, /** @type {number} */ level) => {
    const width = 2 ** level;
    hashes.forEach((want, i) => {
      check("reference_tree", `subtree ${i} of level ${level}`, () =>
        sameBytes(m.root(leaves.slice(i * width, (i + 1) * width)), fromHex(want)),
      );
    });
  });
  return leaves;
}

/** @param {Json[]} cases hasher.json's */
function runHasher(cases) {
  for (const v of cases) {
    check("hasher", v.desc, () => {
      const got =
        v.function === "empty_root"
          ? m.emptyRoot()
          : v.function === "leaf_hash"
            ? m.leafHash(fromHex(v.data))
            : m.nodeHash(fromHex(v.left), fromHex(v.right));
      sameBytes(got, fromHex(v.want));
    });
  }
}

/** @param {string} name @param {Json} v @param {Uint8Array[]} leaves */
function runInclusion(name, v, leaves) {
  check("inclusion", name, () => {
    const args = /** @type {const} */ ([v.leafIdx, v.treeSize, b64(v.leafHash), proofOf(v)]);
    if (v.wantErr) {
      raises(() => m.verifyInclusion(...args, b64(v.root)), m.VerificationError);
      return;
    }
    sameBytes(m.rootFromInclusionProof(...args), b64(v.root));
    m.verifyInclusion(...args, b64(v.root));
    sameBytes(leaves[v.leafIdx], b64(v.leafHash));
  });
}

/** @param {string} name @param {Json} v */
function runConsistency(name, v) {
  check("consistency", name, () => {
    const verify = () => m.verifyConsistency(v.size1, v.size2, b64(v.root1), b64(v.root2), proofOf(v));
    if (v.wantErr) raises(verify, m.VerificationError);
    else verify();
  });
}

/** crypto.json's `merkle`: leaf hashes of JCS entries, roots, and proofs, each also mutated.
 * @param {Json} shared */
function runShared(shared) {
  const leaves = shared.leaf_hashes.map((/** @type {string} */ h) => c.b64uDecode(h));
  const rootOf = (/** @type {number} */ size) => c.b64uDecode(shared.roots[String(size)]);
  const other = m.leafHash(new TextEncoder().encode("not in the tree"));
  shared.entries.forEach((/** @type {Json} */ entry, /** @type {number} */ i) => {
    check("shared", `leaf ${i} is the hash of its JCS entry`, () =>
      sameBytes(m.leafHash(c.jcs(entry)), leaves[i]),
    );
  });
  check("shared", "roots at every size", () => {
    same(Object.keys(shared.roots).length, leaves.length + 1);
    for (let size = 0; size <= leaves.length; size++) {
      sameBytes(m.root(leaves.slice(0, size)), rootOf(size));
    }
  });
  for (const { index, size, path } of shared.inclusion) {
    const proof = path.map((/** @type {string} */ h) => c.b64uDecode(h));
    const verify = (/** @type {Uint8Array} */ leaf, /** @type {Uint8Array[]} */ nodes) => () =>
      m.verifyInclusion(index, size, leaf, nodes, rootOf(size));
    check("shared", `inclusion ${index} in ${size}`, () => {
      verify(leaves[index], proof)();
      raises(verify(other, proof), m.VerificationError);
      raises(verify(leaves[index], [...proof, other]), m.VerificationError);
      if (proof.length) raises(verify(leaves[index], proof.slice(1)), m.VerificationError);
    });
  }
  for (const { first, second, path } of shared.consistency) {
    const proof = path.map((/** @type {string} */ h) => c.b64uDecode(h));
    const verify = (/** @type {Uint8Array} */ old, /** @type {Uint8Array[]} */ nodes) => () =>
      m.verifyConsistency(first, second, old, rootOf(second), nodes);
    check("shared", `consistency ${first} to ${second}`, () => {
      verify(rootOf(first), proof)();
      raises(verify(other, proof), m.VerificationError);
      raises(verify(rootOf(first), [...proof, other]), m.VerificationError);
    });
  }
}

/** Every Merkle vector, fetched from vectors/. */
export async function runMerkle() {
  const leaves = runReferenceTree(await vector("rfc6962/reference-tree.json"));
  runHasher((await vector("rfc6962/hasher.json")).cases);
  const names = /** @type {string[]} */ (await vector("index.json"));
  for (const kind of ["inclusion", "consistency"]) {
    const prefix = `rfc6962/${kind}/`;
    for (const file of names.filter((n) => n.startsWith(prefix)).sort()) {
      const name = file.slice(prefix.length).replace(/\.json$/, "");
      const v = await vector(file);
      if (kind === "inclusion") runInclusion(name, v, leaves);
      else runConsistency(name, v);
    }
  }
  runShared((await vector("crypto.json")).merkle);
}
