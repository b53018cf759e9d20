// Merkle tree hashes and proof checks of the log, as in RFC 9162 section 2.1: the twin of
// bridge/log/merkle.py, run against the same vectors (tests/vectors/rfc6962/ and the `merkle`
// answers of tests/vectors/crypto.json), so browser and server agree byte for byte.
//
// - RFC 9162 2.1.1: MTH({}) = SHA-256(), leaf = SHA-256(0x00 || d), node = SHA-256(0x01 || left ||
//   right). The functions take leaf hashes (made with `leafHash`), never entries.
// - RFC 9162 2.1.3.2 and 2.1.4.2: verifying inclusion and consistency proofs, with the RFC's bit
//   arithmetic, on BigInt so that it holds for every safe integer size (JS bit operators are
//   32-bit).
// - transparency-dev/merkle proof/verify.go: computing a root apart from comparing it, and the
//   preconditions checked first.
//
// A proof binds a leaf or an old root to a root; the tree size only fixes the proof's shape, so a
// verifier takes each size together with its root from a signed checkpoint. Everything that
// does not verify, bad sizes and indexes included, raises VerificationError. Hashing uses
// libsodium: call `await ready()` of crypto.js first.

import { sha256 } from "./crypto.js";

/** The size of every hash here: SHA-256. */
export const HASH_SIZE = 32;

/** A proof or root did not verify; `expected` is what the caller gave, `calculated` what the
 * proof led to, where there are such values. */
export class VerificationError extends Error {
  /** @param {string} message @param {{expected?: Uint8Array, calculated?: Uint8Array}} [values] */
  constructor(message, { expected, calculated } = {}) {
    super(message);
    this.name = "VerificationError";
    this.expected = expected;
    this.calculated = calculated;
  }
}

/** @param {number} prefix @param {Uint8Array[]} parts */
function prefixed(prefix, ...parts) {
  const out = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0));
  out[0] = prefix;
  let at = 1;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** `SHA-256()`: the root of the empty tree (RFC 9162 2.1.1). */
export function emptyRoot() {
  return sha256(new Uint8Array(0));
}

/** `SHA-256(0x00 || data)`: the hash of one log entry's bytes. @param {Uint8Array} data */
export function leafHash(data) {
  return sha256(prefixed(0x00, data));
}

/** `SHA-256(0x01 || left || right)`: an inner node.
 * @param {Uint8Array} left @param {Uint8Array} right */
export function nodeHash(left, right) {
  return sha256(prefixed(0x01, left, right));
}

/** @param {Uint8Array} a @param {Uint8Array} b */
export function sameHash(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** @param {unknown} value */
function isHash(value) {
  return value instanceof Uint8Array && value.length === HASH_SIZE;
}

// --- the tree head -------------------------------------------------------------------------------

/**
 * `MTH` of leaf hashes; `emptyRoot()` for none. Kept as the roots of the perfect subtrees, largest
 * first (a frontier): appending merges the equal-sized ones at the right end, as a carry ripples
 * through a binary counter, and the root folds them from the right, `H(f0, H(f1, ... fk))`,
 * which is RFC 9162's split at the largest power of two.
 * @param {Uint8Array[]} leaves
 */
export function root(leaves) {
  /** @type {Uint8Array[]} */
  const frontier = [];
  leaves.forEach((leaf, size) => {
    if (!isHash(leaf)) throw new VerificationError(`leaf ${size} is not a ${HASH_SIZE}-byte hash`);
    let carry = leaf;
    for (let n = size; n % 2 === 1; n = Math.floor(n / 2)) {
      carry = nodeHash(/** @type {Uint8Array} */ (frontier.pop()), carry);
    }
    frontier.push(carry);
  });
  if (frontier.length === 0) return emptyRoot();
  let result = frontier[frontier.length - 1];
  for (let i = frontier.length - 2; i >= 0; i--) result = nodeHash(frontier[i], result);
  return result;
}

// --- verifying proofs ----------------------------------------------------------------------------

/** A size or index from the caller as a BigInt; null for anything but a safe integer.
 * @param {unknown} n */
function count(n) {
  return typeof n === "number" && Number.isSafeInteger(n) ? BigInt(n) : null;
}

/** @param {unknown} leafOrRoot @param {string} what @param {unknown[]} proof */
function checkHashes(leafOrRoot, what, proof) {
  if (!isHash(leafOrRoot)) throw new VerificationError(`${what} is not a ${HASH_SIZE}-byte hash`);
  if (!Array.isArray(proof)) throw new VerificationError("the proof is not a list");
  proof.forEach((node, i) => {
    if (!isHash(node)) throw new VerificationError(`proof node ${i} is not a ${HASH_SIZE}-byte hash`);
  });
}

/**
 * The root an inclusion proof for `leaf` at `index` leads to (RFC 9162 2.1.3.2). Computes
 * only; `verifyInclusion` compares. Raises VerificationError unless `0 <= index < size`, the
 * leaf and every node are hashes, and the proof has the length a tree of `size` leaves needs.
 * @param {number} index @param {number} size @param {Uint8Array} leaf @param {Uint8Array[]} proof
 */
export function rootFromInclusionProof(index, size, leaf, proof) {
  const i = count(index);
  const n = count(size);
  // Step 1, and the sizes of the hashes.
  if (i === null || n === null || i < 0n || i >= n) {
    throw new VerificationError(`leaf index ${index} is not in a tree of size ${size}`);
  }
  checkHashes(leaf, "leaf", proof);
  // Steps 2-5.
  let result = leaf;
  const fits = climb(i, n - 1n, proof, {
    left: (node) => (result = nodeHash(node, result)),
    right: (node) => (result = nodeHash(result, node)),
  });
  if (!fits) {
    throw new VerificationError(
      `wrong inclusion proof length for index ${index} in a tree of size ${size}`,
    );
  }
  return result;
}

/**
 * Check that `leaf` is at `index` in the tree of `size` leaves with root `expected` (RFC 9162
 * 2.1.3.2); raises VerificationError if not.
 * @param {number} index @param {number} size @param {Uint8Array} leaf @param {Uint8Array[]} proof
 * @param {Uint8Array} expected
 */
export function verifyInclusion(index, size, leaf, proof, expected) {
  if (!isHash(expected)) throw new VerificationError(`root is not a ${HASH_SIZE}-byte hash`);
  const calculated = rootFromInclusionProof(index, size, leaf, proof);
  // Step 5, its comparison.
  if (!sameHash(calculated, expected)) {
    throw new VerificationError(
      `inclusion proof for index ${index} does not lead to the root of size ${size}`,
      { expected, calculated },
    );
  }
}

/**
 * Check that the tree of `first` leaves with `firstRoot` is a prefix of the tree of `second`
 * leaves with `secondRoot` (RFC 9162 2.1.4.2); raises VerificationError if not.
 *
 * `first == second` needs an empty proof and equal roots. `first == 0` fails: RFC 9162
 * verifies only for `0 < first`, and a proof from the empty tree proves nothing.
 * @param {number} first @param {number} second @param {Uint8Array} firstRoot
 * @param {Uint8Array} secondRoot @param {Uint8Array[]} proof
 */
export function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  const m = count(first);
  const n = count(second);
  if (m === null || n === null || m < 1n || m > n) {
    throw new VerificationError(
      `no consistency proof from size ${first} to size ${second}: needs 1 <= first <= second`,
    );
  }
  checkHashes(firstRoot, "first root", proof);
  if (!isHash(secondRoot)) throw new VerificationError(`second root is not a ${HASH_SIZE}-byte hash`);
  if (m === n) {
    if (proof.length) {
      throw new VerificationError(`consistency proof between equal sizes ${first} must be empty`);
    }
    if (!sameHash(firstRoot, secondRoot)) {
      throw new VerificationError(`roots of the same size ${first} differ`, {
        expected: firstRoot,
        calculated: secondRoot,
      });
    }
    return;
  }
  // Step 1.
  if (!proof.length) {
    throw new VerificationError(`empty consistency proof from size ${first} to size ${second}`);
  }
  const [firstHash, secondHash] = rootsFromConsistencyProof(m, n, firstRoot, proof);
  // Step 7, its comparisons.
  if (!sameHash(firstHash, firstRoot)) {
    throw new VerificationError(`consistency proof does not lead to the root of size ${first}`, {
      expected: firstRoot,
      calculated: firstHash,
    });
  }
  if (!sameHash(secondHash, secondRoot)) {
    throw new VerificationError(`consistency proof does not lead to the root of size ${second}`, {
      expected: secondRoot,
      calculated: secondHash,
    });
  }
}

/**
 * The roots of sizes `first` and `second` a non-empty consistency proof leads to, for
 * `0 < first < second`: RFC 9162 2.1.4.2 steps 2-6 and step 7's check on sn.
 * @param {bigint} first @param {bigint} second @param {Uint8Array} firstRoot
 * @param {Uint8Array[]} proof
 */
function rootsFromConsistencyProof(first, second, firstRoot, proof) {
  // Step 2: a first tree of 2**k leaves is itself a perfect subtree of the second, whose root
  // the verifier holds; the proof leaves it out.
  const path = (first & (first - 1n)) === 0n ? [firstRoot, ...proof] : proof;
  // Steps 3-4.
  let fn = first - 1n;
  let sn = second - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  // Steps 5-7.
  let firstHash = path[0];
  let secondHash = path[0];
  const fits = climb(fn, sn, path.slice(1), {
    left: (node) => {
      firstHash = nodeHash(node, firstHash);
      secondHash = nodeHash(node, secondHash);
    },
    right: (node) => (secondHash = nodeHash(secondHash, node)),
  });
  if (!fits) {
    throw new VerificationError(`wrong consistency proof length from size ${first} to size ${second}`);
  }
  return [firstHash, secondHash];
}

/**
 * The walk up the tree that both verifications share (RFC 9162 2.1.3.2 steps 3-5, 2.1.4.2
 * steps 5-7), from node `fn` of a tree whose last node is `sn`: each proof node is a sibling
 * on the `left` or the `right` of the hash so far. False if the proof does not end exactly at
 * the root (too long, or too short).
 * @param {bigint} fn @param {bigint} sn @param {Uint8Array[]} nodes
 * @param {{left: (node: Uint8Array) => void, right: (node: Uint8Array) => void}} sides
 */
function climb(fn, sn, nodes, { left, right }) {
  for (const node of nodes) {
    if (sn === 0n) return false; // the path has reached the root, the proof goes on
    if (fn & 1n || fn === sn) {
      left(node);
      while (fn && !(fn & 1n)) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      right(node);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n;
}
