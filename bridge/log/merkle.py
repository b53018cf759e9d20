"""Merkle tree hashes and proofs of the log (DESIGN.md, "The log"), as in RFC 9162 section 2.1.

Pure functions over bytes and ints, using the standard library only, so that an auditor can use
this module alone. The sources, section by section:

- RFC 9162 2.1.1: the hash of a tree, ``MTH({}) = SHA-256()``, ``MTH({d}) = SHA-256(0x00 || d)``
  and ``MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` with ``k`` the largest power
  of two smaller than ``n``. The functions here take leaf hashes (already hashed with
  :func:`leaf_hash`), never entries.
- RFC 9162 2.1.3.1 and 2.1.4.1: building inclusion (``PATH``) and consistency (``PROOF``)
  proofs, in :class:`bridge.log.tree.Tree` (the server's side, beside this module).
- RFC 9162 2.1.3.2 and 2.1.4.2: verifying them, with the RFC's bit arithmetic, in
  :func:`root_from_inclusion_proof`, :func:`verify_inclusion` and :func:`verify_consistency`.
- transparency-dev/merkle ``proof/verify.go``: computing a root apart from comparing it
  (``RootFromInclusionProof`` and ``VerifyInclusion``), the preconditions checked first, the
  expected proof length for messages (``decompInclProof``), and one error carrying both the
  expected and the calculated value (``RootMismatchError``).
- transparency-dev/merkle ``compact/``: a tree head kept incrementally as the roots of its
  perfect subtrees (the frontier), for :func:`frontier_append` and :func:`frontier_root`.

A proof binds a leaf or an old root to a root; the tree size only fixes the proof's shape, so
a verifier takes each size together with its root from a signed checkpoint.

Errors: the verifiers judge untrusted input and raise :class:`VerificationError` for anything
that does not verify, bad sizes and indexes included. The frontier functions (and the tree) are
given our own data and raise :class:`ValueError` for a request outside the tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "VerificationError",
    "frontier_append",
    "frontier_root",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""The size of every hash here: SHA-256."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""The root of the empty tree, RFC 9162 2.1.1: ``MTH({}) = SHA-256()``."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class VerificationError(Exception):
    """A proof or root did not verify; the message says what failed.

    ``expected`` is the value the caller supplied (a root, a proof length) and ``calculated``
    the value the proof led to, where there are such values; the message shows hashes in hex.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: bytes | int | None = None,
        calculated: bytes | int | None = None,
    ) -> None:
        if expected is not None or calculated is not None:
            message = f"{message}: expected {_show(expected)}, calculated {_show(calculated)}"
        super().__init__(message)
        self.expected = expected
        self.calculated = calculated


def _show(value: bytes | int | None) -> str:
    if isinstance(value, bytes):
        return value.hex() if value else "<empty>"
    return str(value)


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one log entry (RFC 9162 2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an inner node (RFC 9162 2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``), where RFC 9162 2.1.1 splits."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} has {len(value)} bytes, expected a {HASH_SIZE}-byte hash")


# --- The tree head, incrementally (a frontier) ---


def frontier_append(frontier: Sequence[bytes], size: int, leaf: bytes) -> list[bytes]:
    """The frontier of a tree of ``size + 1`` leaves, from that of ``size`` leaves and one more.

    A frontier is the list of roots of the perfect subtrees that make up a tree, largest (left)
    first: one for each bit set in ``size``. Appending merges the equal-sized subtrees at the
    right end, as a carry ripples through a binary counter, so it takes at most
    ``log2(size) + 1`` node hashes. Raises ValueError for a frontier that cannot be that of
    ``size`` leaves, or a leaf that is not a hash.
    """
    if size < 0 or len(frontier) != size.bit_count():
        raise ValueError(
            f"a tree of {size} leaves has {max(size, 0).bit_count()} perfect subtrees, "
            f"the frontier has {len(frontier)}"
        )
    _check_hash(leaf, "leaf")
    merged = list(frontier)
    carry = leaf
    while size & 1:
        carry = node_hash(merged.pop(), carry)
        size >>= 1
    merged.append(carry)
    return merged


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The root of the tree a frontier describes; :data:`EMPTY_ROOT` for ``[]``.

    RFC 9162 2.1.1 splits a tree into its largest perfect subtree and the rest, so the root
    folds the subtree roots from the right: ``H(f0, H(f1, ... H(fk-1, fk)))``.
    """
    if not frontier:
        return EMPTY_ROOT
    result = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        result = node_hash(subtree, result)
    return result


def root(leaves: Sequence[bytes]) -> bytes:
    """``MTH`` of a list of leaf hashes (RFC 9162 2.1.1); :data:`EMPTY_ROOT` for none.

    Takes leaf hashes, not entries: hash each entry with :func:`leaf_hash` first. Raises
    ValueError for a leaf that is not a hash.
    """
    frontier: list[bytes] = []
    for size, leaf in enumerate(leaves):
        frontier = frontier_append(frontier, size, leaf)
    return frontier_root(frontier)


# --- Verifying proofs ---


def _check_proof_hashes(leaf_or_root: bytes, what: str, proof: Sequence[bytes]) -> None:
    if len(leaf_or_root) != HASH_SIZE:
        raise VerificationError(f"{what} is not a {HASH_SIZE}-byte hash: {_show(leaf_or_root)}")
    for i, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise VerificationError(f"proof node {i} is not a {HASH_SIZE}-byte hash: {_show(node)}")


def _inclusion_proof_length(index: int, size: int) -> int:
    """The length of an inclusion proof, ``0 <= index < size``: the nodes below and above where
    the paths to ``index`` and ``size - 1`` meet (transparency-dev/merkle ``decompInclProof``)."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_proof_length(first: int, second: int) -> int:
    """The length of a consistency proof, ``0 < first < second`` (transparency-dev/merkle
    ``RootFromConsistencyProof``): the inclusion proof of leaf ``first - 1`` in the second tree,
    less the levels below the first tree's last perfect subtree, plus that subtree's root
    unless it is the whole first tree."""
    below = (first & -first).bit_length() - 1
    seed = 0 if first & (first - 1) == 0 else 1
    return seed + _inclusion_proof_length(first - 1, second) - below


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof for ``leaf`` at ``index`` leads to (RFC 9162 2.1.3.2).

    Computes only; :func:`verify_inclusion` compares. Raises VerificationError unless
    ``0 <= index < size``, the leaf and every node are hashes, and the proof has exactly the
    length a tree of ``size`` leaves needs.
    """
    # Step 1, and the sizes of the hashes.
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is not in a tree of size {size}")
    _check_proof_hashes(leaf, "leaf", proof)
    # Steps 2-4.
    fn, sn = index, size - 1
    result = leaf
    for node in proof:
        if sn == 0:  # 4a: the path has reached the root, the proof goes on
            raise _wrong_inclusion_length(index, size, proof)
        if fn & 1 or fn == sn:
            result = node_hash(node, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, node)
        fn >>= 1
        sn >>= 1
    # Step 5, its check on sn: the proof has ended below the root.
    if sn != 0:
        raise _wrong_inclusion_length(index, size, proof)
    return result


def _wrong_inclusion_length(index: int, size: int, proof: Sequence[bytes]) -> VerificationError:
    return VerificationError(
        f"wrong inclusion proof length for index {index} in a tree of size {size}",
        expected=_inclusion_proof_length(index, size),
        calculated=len(proof),
    )


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` leaves with this ``root``.

    RFC 9162 2.1.3.2. Raises VerificationError if not: for a bad index or proof length (see
    :func:`root_from_inclusion_proof`), or a calculated root other than ``root``.
    """
    if len(root) != HASH_SIZE:
        raise VerificationError(f"root is not a {HASH_SIZE}-byte hash: {_show(root)}")
    calculated = root_from_inclusion_proof(index, size, leaf, proof)
    # Step 5, its comparison.
    if calculated != root:
        raise VerificationError(
            f"inclusion proof for index {index} does not lead to the root of size {size}",
            expected=root,
            calculated=calculated,
        )


def _roots_from_consistency_proof(
    first: int, second: int, first_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The roots of sizes ``first`` and ``second`` that a consistency proof leads to.

    RFC 9162 2.1.4.2 steps 2-6 and step 7's check on sn, for ``0 < first < second`` and a
    non-empty proof of hashes. Raises VerificationError for a proof of the wrong length.
    """
    # Step 2: a first tree of 2**k leaves is itself a perfect subtree of the second, whose
    # root the verifier holds; the proof leaves it out.
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # Steps 3-4.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Steps 5-6.
    first_hash = second_hash = path[0]
    for node in path[1:]:
        if sn == 0:  # the path has reached the root, the proof goes on
            raise _wrong_consistency_length(first, second, proof)
        if fn & 1 or fn == sn:
            first_hash = node_hash(node, first_hash)
            second_hash = node_hash(node, second_hash)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            second_hash = node_hash(second_hash, node)
        fn >>= 1
        sn >>= 1
    # Step 7, its check on sn: the proof has ended below the root.
    if sn != 0:
        raise _wrong_consistency_length(first, second, proof)
    return first_hash, second_hash


def _wrong_consistency_length(first: int, second: int, proof: Sequence[bytes]) -> VerificationError:
    return VerificationError(
        f"wrong consistency proof length from size {first} to size {second}",
        expected=_consistency_proof_length(first, second),
        calculated=len(proof),
    )


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``first`` leaves with ``first_root`` is a prefix of the tree of
    ``second`` leaves with ``second_root`` (RFC 9162 2.1.4.2).

    ``first == second`` needs an empty proof and equal roots (RFC 9162 2.1.4.1:
    ``SUBPROOF(m, D[m], true) = {}``). ``first == 0`` is an error: RFC 9162 2.1.4.2 verifies
    only for ``0 < first``, and a proof from the empty tree proves nothing (transparency-dev
    ``RootFromConsistencyProof`` also refuses it: "consistency proof from empty tree is
    meaningless"). Raises VerificationError for sizes out of that order, a hash of the wrong
    size, a proof of the wrong length, or a calculated root other than the one given.
    """
    if not 1 <= first <= second:
        raise VerificationError(
            f"no consistency proof from size {first} to size {second}: needs 1 <= first <= second"
        )
    _check_proof_hashes(first_root, "first root", proof)
    if len(second_root) != HASH_SIZE:
        raise VerificationError(f"second root is not a {HASH_SIZE}-byte hash: {_show(second_root)}")
    if first == second:
        if proof:
            raise VerificationError(
                f"consistency proof between equal sizes {first} must be empty",
                expected=0,
                calculated=len(proof),
            )
        if first_root != second_root:
            raise VerificationError(
                f"roots of the same size {first} differ",
                expected=first_root,
                calculated=second_root,
            )
        return
    # Step 1.
    if not proof:
        raise VerificationError(f"empty consistency proof from size {first} to size {second}")
    first_hash, second_hash = _roots_from_consistency_proof(first, second, first_root, proof)
    # Step 7, its comparisons.
    if first_hash != first_root:
        raise VerificationError(
            f"consistency proof does not lead to the root of size {first}",
            expected=first_root,
            calculated=first_hash,
        )
    if second_hash != second_root:
        raise VerificationError(
            f"consistency proof does not lead to the root of size {second}",
            expected=second_root,
            calculated=second_hash,
        )
