"""bridge/log/merkle.py against RFC 9162 section 2.1 and published known answers.

Sources of the expected values, never computed by the module under test:

- ``tests/vectors/rfc6962/``: copied from transparency-dev/merkle (README.md there names each
  file's path and commit): ``testdata/inclusion/`` and ``testdata/consistency/`` (a happy path per
  proof and named mutations, each with ``wantErr``), the reference tree of
  ``testonly/constants.go`` and the hasher answers of ``rfc6962/rfc6962_test.go``.
- ``tests/vectors/crypto.json``, key ``merkle``: the project's shared answers over log entries.
- For a 200-leaf tree, a direct transcription of RFC 9162's recursive definitions (``MTH``,
  ``PATH``, ``SUBPROOF``) in this file, memoised but otherwise unoptimised.
"""

from __future__ import annotations

import ast
import base64
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bridge.crypto import b64u_decode, jcs
from bridge.log import merkle
from bridge.log.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    VerificationError,
    frontier_append,
    frontier_root,
    leaf_hash,
    node_hash,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from bridge.log.tree import Tree

VECTORS = Path(__file__).parents[2] / "vectors"
RFC6962 = VECTORS / "rfc6962"
MODULE = Path(merkle.__file__)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _b64(text: str) -> bytes:
    """The Go vectors' hashes: standard base64 with padding (``[]byte`` in ``encoding/json``)."""
    return base64.b64decode(text, validate=True)


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(node) for node in case["proof"] or []]  # Go writes an empty proof as null


REFERENCE = _load(RFC6962 / "reference-tree.json")
REFERENCE_LEAVES = [leaf_hash(bytes.fromhex(data)) for data in REFERENCE["leaf_inputs"]]
INCLUSION_CASES = sorted((RFC6962 / "inclusion").glob("*/*.json"))
CONSISTENCY_CASES = sorted((RFC6962 / "consistency").glob("*/*.json"))
SHARED = _load(VECTORS / "crypto.json")["merkle"]
SHARED_LEAVES = [b64u_decode(h) for h in SHARED["leaf_hashes"]]


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


# --- The module stands alone ---


def test_module_imports_only_the_standard_library() -> None:
    """An auditor must be able to use merkle.py alone: every import, wherever it is, is stdlib."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(MODULE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    assert "hashlib" in imported


@pytest.mark.parametrize(
    "case", _load(RFC6962 / "hasher.json")["cases"], ids=lambda case: case["desc"]
)
def test_hashes_match_rfc6962_hasher_answers(case: dict[str, str]) -> None:
    """rfc6962/rfc6962_test.go TestRFC6962Hasher, e.g. ``echo -n 00 | xxd -r -p | sha256sum``."""
    if case["function"] == "empty_root":
        got = EMPTY_ROOT
    elif case["function"] == "leaf_hash":
        got = leaf_hash(bytes.fromhex(case["data"]))
    else:
        got = node_hash(bytes.fromhex(case["left"]), bytes.fromhex(case["right"]))
    assert got.hex() == case["want"]


def test_empty_root_is_not_the_hash_of_an_empty_leaf() -> None:
    assert len(EMPTY_ROOT) == HASH_SIZE == 32
    assert root([]) == EMPTY_ROOT != leaf_hash(b"")


def test_roots_of_the_reference_tree_at_every_size() -> None:
    """testonly/constants.go RootHashes: sizes 0..8, by ``root``, ``Tree.root`` and frontier."""
    tree = Tree(REFERENCE_LEAVES)
    frontier: list[bytes] = []
    for size, want in enumerate(REFERENCE["root_hashes"]):
        assert root(REFERENCE_LEAVES[:size]).hex() == want
        assert tree.root(size).hex() == want
        assert Tree(REFERENCE_LEAVES[:size]).root().hex() == want
        assert [h.hex() for h in frontier] == REFERENCE["compact_trees"][size]
        assert frontier_root(frontier).hex() == want
        if size < len(REFERENCE_LEAVES):
            frontier = frontier_append(frontier, size, REFERENCE_LEAVES[size])


def test_subtree_hashes_of_the_reference_tree() -> None:
    """testonly/constants.go NodeHashes: every complete subtree, level by level."""
    for level, hashes in enumerate(REFERENCE["node_hashes"]):
        width = 1 << level
        assert len(hashes) == len(REFERENCE_LEAVES) // width
        for i, want in enumerate(hashes):
            assert root(REFERENCE_LEAVES[i * width : (i + 1) * width]).hex() == want


def test_published_cases_include_every_kind_of_mutation() -> None:
    """Guards the copied set: a happy path per proof of verify_test.go and the named mutations."""
    inclusion = {path.stem for path in INCLUSION_CASES}
    consistency = {path.stem for path in CONSISTENCY_CASES}
    assert sum(path.stem == "happy-path" for path in INCLUSION_CASES) == 5
    assert sum(path.stem == "happy-path" for path in CONSISTENCY_CASES) == 5
    assert {
        "wrong-leaf",
        "trailing-garbage",
        "preceding-garbage",
        "removed-component",
        "inserted-component",
        "modified-proof-0-bit-3",
        "leafIdx-minus-1",
        "treeSize-mul-2",
        "random-root",
    } <= inclusion
    assert {
        "swapped-roots",
        "truncated-proof",
        "trailing-garbage",
        "preceding-garbage",
        "empty-proof",
        "modified-proof-0-bit-4",
        "wrong-root1",
        "wrong-root2",
        "size1-minus-1",
    } <= consistency


@pytest.mark.parametrize("path", INCLUSION_CASES, ids=_case_id)
def test_published_inclusion_case(path: Path) -> None:
    """transparency-dev/merkle testdata/inclusion/: each happy path verifies, and ``Tree`` over
    the reference leaves builds that very proof; each mutation raises VerificationError."""
    case = _load(path)
    index, size, leaf = case["leafIdx"], case["treeSize"], _b64(case["leafHash"])
    proof, expected_root = _proof(case), _b64(case["root"])
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(index, size, leaf, proof, expected_root)
        return
    assert root_from_inclusion_proof(index, size, leaf, proof) == expected_root
    verify_inclusion(index, size, leaf, proof, expected_root)
    tree = Tree(REFERENCE_LEAVES)
    assert tree.inclusion_proof(index, size) == proof
    assert tree.root(size) == expected_root
    assert REFERENCE_LEAVES[index] == leaf


@pytest.mark.parametrize("path", CONSISTENCY_CASES, ids=_case_id)
def test_published_consistency_case(path: Path) -> None:
    """transparency-dev/merkle testdata/consistency/: each happy path verifies, and ``Tree``
    over the reference leaves builds that very proof; each mutation raises VerificationError."""
    case = _load(path)
    first, second = case["size1"], case["size2"]
    root1, root2, proof = _b64(case["root1"]), _b64(case["root2"]), _proof(case)
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(first, second, root1, root2, proof)
        return
    verify_consistency(first, second, root1, root2, proof)
    tree = Tree(REFERENCE_LEAVES)
    assert tree.consistency_proof(first, second) == proof
    assert (tree.root(first), tree.root(second)) == (root1, root2)


# --- Our shared answers (tests/vectors/crypto.json, "merkle") ---


def test_shared_leaf_hashes_are_leaf_hashes_of_the_jcs_entries() -> None:
    assert len(SHARED["entries"]) == len(SHARED_LEAVES) == 7
    for entry, want in zip(SHARED["entries"], SHARED_LEAVES, strict=True):
        assert leaf_hash(jcs(entry)) == want


def test_shared_roots_at_every_size() -> None:
    tree = Tree(SHARED_LEAVES)
    frontier: list[bytes] = []
    assert sorted(SHARED["roots"], key=int) == [str(n) for n in range(len(SHARED_LEAVES) + 1)]
    for size in range(len(SHARED_LEAVES) + 1):
        want = b64u_decode(SHARED["roots"][str(size)])
        assert root(SHARED_LEAVES[:size]) == want
        assert tree.root(size) == want
        assert frontier_root(frontier) == want
        if size < len(SHARED_LEAVES):
            frontier = frontier_append(frontier, size, SHARED_LEAVES[size])


def test_shared_inclusion_proofs_are_built_and_verify() -> None:
    tree = Tree(SHARED_LEAVES)
    assert SHARED["inclusion"]
    for case in SHARED["inclusion"]:
        index, size = case["index"], case["size"]
        path = [b64u_decode(h) for h in case["path"]]
        assert tree.inclusion_proof(index, size) == path, case
        verify_inclusion(
            index, size, SHARED_LEAVES[index], path, b64u_decode(SHARED["roots"][str(size)])
        )


def test_shared_consistency_proofs_are_built_and_verify() -> None:
    tree = Tree(SHARED_LEAVES)
    assert SHARED["consistency"]
    for case in SHARED["consistency"]:
        first, second = case["first"], case["second"]
        path = [b64u_decode(h) for h in case["path"]]
        assert tree.consistency_proof(first, second) == path, case
        verify_consistency(
            first,
            second,
            b64u_decode(SHARED["roots"][str(first)]),
            b64u_decode(SHARED["roots"][str(second)]),
            path,
        )


# --- Every proof of a 200-leaf tree, against RFC 9162's recursive definitions ---

SIZE = 200
LEAVES = [leaf_hash(i.to_bytes(2, "big")) for i in range(SIZE)]
OTHER = leaf_hash(b"not in the tree")


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def _mth(start: int, end: int) -> bytes:
    """RFC 9162 2.1.1 MTH(D[start:end]) over LEAVES, as written there."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return LEAVES[start]
    k = _largest_power_of_two_below(n)
    return node_hash(_mth(start, start + k), _mth(start + k, end))


def _path(m: int, start: int, end: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[start:end])."""
    n = end - start
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*_path(m, start, start + k), _mth(start + k, end)]
    return [*_path(m - k, start + k, end), _mth(start, start + k)]


def _subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1 SUBPROOF(m, D[start:end], b)."""
    n = end - start
    if m == n:
        return [] if b else [_mth(start, end)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*_subproof(m, start, start + k, b), _mth(start + k, end)]
    return [*_subproof(m - k, start + k, end, False), _mth(start, start + k)]


@pytest.fixture(scope="module")
def tree() -> Tree:
    built = Tree()
    for leaf in LEAVES:
        built.append(leaf)
    return built


def _fails(verify: Callable[..., None], *args: Any) -> bool:
    try:
        verify(*args)
    except VerificationError:
        return True
    return False


def _drop_and_add(proof: list[bytes], at: int) -> dict[str, list[bytes]]:
    """The proof with a node dropped (if it has one) and with a foreign node added."""
    mutated = {"added node": [*proof[:at], OTHER, *proof[at:]]}
    if proof:
        at %= len(proof)
        mutated["dropped node"] = proof[:at] + proof[at + 1 :]
    return mutated


def _slipped(
    verify: Callable[..., None],
    good: tuple[Any, ...],
    at: int,
    mutations: dict[str, tuple[Any, ...]],
    seed: int,
) -> list[str]:
    """The names of the mutations that ``verify`` lets through: ``mutations``, and the ``good``
    arguments with a node of their proof (argument ``at``) dropped or one added."""
    for name, mutated in _drop_and_add(good[at], seed).items():
        mutations[name] = (*good[:at], mutated, *good[at + 1 :])
    return [name for name, args in mutations.items() if not _fails(verify, *args)]


def test_every_inclusion_proof_verifies_and_every_mutation_fails(tree: Tree) -> None:
    """All 20,100 pairs ``0 <= index < size <= 200``; each mutated up to five ways.

    The size is not mutated: see ``test_a_proof_alone_does_not_bind_the_tree_size``.
    """
    slipped: list[tuple[str, int, int]] = []
    for size in range(1, SIZE + 1):
        good_root = _mth(0, size)
        wrong_root = _mth(0, size - 1) if size > 1 else OTHER
        for index in range(size):
            leaf = LEAVES[index]
            proof = tree.inclusion_proof(index, size)
            assert proof == _path(index, 0, size), (index, size)
            assert root_from_inclusion_proof(index, size, leaf, proof) == good_root
            verify_inclusion(index, size, leaf, proof, good_root)

            wrong_index = index ^ 1 if index ^ 1 < size else index + 1  # == size when size == 1
            mutations = {
                "wrong leaf": (index, size, OTHER, proof, good_root),
                "wrong root": (index, size, leaf, proof, wrong_root),
                "wrong index": (wrong_index, size, leaf, proof, good_root),
            }
            good = (index, size, leaf, proof, good_root)
            slipped += [
                (name, index, size)
                for name in _slipped(verify_inclusion, good, 3, mutations, index + size)
            ]
    assert slipped == []


def test_every_consistency_proof_verifies_and_every_mutation_fails(tree: Tree) -> None:
    """All 20,100 pairs ``1 <= first <= second <= 200``; each mutated up to five ways.

    The second size is not mutated: see ``test_a_proof_alone_does_not_bind_the_tree_size``.
    """
    slipped: list[tuple[str, int, int]] = []
    for second in range(1, SIZE + 1):
        root2 = _mth(0, second)
        for first in range(1, second + 1):
            root1 = _mth(0, first)
            proof = tree.consistency_proof(first, second)
            assert proof == _subproof(first, 0, second, True), (first, second)
            verify_consistency(first, second, root1, root2, proof)

            wrong_root1 = _mth(0, first - 1) if first > 1 else OTHER
            other_first = first + 1 if first < second else first - 1  # 0 when both are 1
            mutations = {
                "wrong first root": (first, second, wrong_root1, root2, proof),
                "wrong second root": (first, second, root1, _mth(0, second - 1), proof),
                "wrong first size": (other_first, second, root1, root2, proof),
            }
            good = (first, second, root1, root2, proof)
            slipped += [
                (name, first, second)
                for name in _slipped(verify_consistency, good, 4, mutations, first + second)
            ]
    assert slipped == []


def test_a_proof_alone_does_not_bind_the_tree_size(tree: Tree) -> None:
    """The size only fixes the shape of the path (RFC 9162 2.1.3.2, 2.1.4.2), so a proof for
    size 3 also checks out against the size-3 root claimed as size 4: sizes and roots must come
    together from a signed checkpoint. (transparency-dev/merkle mutates sizes only by ``* 2`` and
    ``/ 2``, which change the proof length.)"""
    verify_inclusion(0, 4, LEAVES[0], tree.inclusion_proof(0, 3), _mth(0, 3))
    verify_consistency(1, 4, _mth(0, 1), _mth(0, 3), tree.consistency_proof(1, 3))


def test_frontier_root_equals_tree_root_at_every_size(tree: Tree) -> None:
    frontier: list[bytes] = []
    for size in range(SIZE + 1):
        assert len(frontier) == size.bit_count()
        assert frontier_root(frontier) == tree.root(size) == _mth(0, size), size
        if size < SIZE:
            frontier = frontier_append(frontier, size, LEAVES[size])


def test_tree_root_defaults_to_all_leaves_and_grows_with_append() -> None:
    grown = Tree(LEAVES[:5])
    assert len(grown) == 5 and grown.root() == _mth(0, 5)
    grown.append(LEAVES[5])
    assert len(grown) == 6 and grown.root() == _mth(0, 6) and grown.root(5) == _mth(0, 5)


# --- Cost: complete subtrees are cached, the frontier is O(log n) ---


@contextmanager
def _counting_node_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    calls = [0]
    real = merkle.node_hash

    def counted(left: bytes, right: bytes) -> bytes:
        calls[0] += 1
        return real(left, right)

    with monkeypatch.context() as patch:
        patch.setattr(merkle, "node_hash", counted)
        yield calls


def test_tree_reuses_complete_subtrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """After one full pass, a root or proof costs at most a few node hashes per level."""
    size = 4096 + 1000
    big = Tree([leaf_hash(i.to_bytes(4, "big")) for i in range(size)])
    with _counting_node_hashes(monkeypatch) as calls:
        big.root()
        assert calls[0] < size  # a tree of n leaves has n - 1 inner nodes
        levels = size.bit_length()
        for probe in (size, size - 1, 4097, 3001, 17):
            calls[0] = 0
            big.root(probe)
            assert calls[0] <= levels, probe
            calls[0] = 0
            big.inclusion_proof(probe // 2, probe)
            big.consistency_proof(probe // 3 + 1, probe)
            assert calls[0] <= 4 * levels, probe


def test_frontier_append_costs_one_hash_per_carry(monkeypatch: pytest.MonkeyPatch) -> None:
    frontier: list[bytes] = []
    with _counting_node_hashes(monkeypatch) as calls:
        for size in range(1100):
            calls[0] = 0
            frontier = frontier_append(frontier, size, LEAVES[size % SIZE])
            # Appending to a tree of size n merges the run of trailing one bits of n.
            assert calls[0] == (size ^ (size + 1)).bit_length() - 1, size


# --- Preconditions and error values ---


@pytest.mark.parametrize(("index", "size"), [(0, 0), (-1, 5), (5, 5), (7, 5), (0, SIZE + 1)])
def test_tree_inclusion_proof_outside_the_tree_is_a_value_error(
    tree: Tree, index: int, size: int
) -> None:
    with pytest.raises(ValueError, match="no inclusion proof"):
        tree.inclusion_proof(index, size)


@pytest.mark.parametrize(("first", "second"), [(0, 0), (0, 3), (4, 3), (-1, 3), (1, SIZE + 1)])
def test_tree_consistency_proof_outside_the_tree_is_a_value_error(
    tree: Tree, first: int, second: int
) -> None:
    with pytest.raises(ValueError, match="no consistency proof"):
        tree.consistency_proof(first, second)


def test_tree_consistency_proof_between_equal_sizes_is_empty(tree: Tree) -> None:
    assert [tree.consistency_proof(n, n) for n in (1, 2, 7, SIZE)] == [[], [], [], []]


@pytest.mark.parametrize("size", [-1, SIZE + 1])
def test_tree_root_outside_the_tree_is_a_value_error(tree: Tree, size: int) -> None:
    with pytest.raises(ValueError, match="no tree of size"):
        tree.root(size)


def test_tree_root_of_size_zero_is_the_empty_root(tree: Tree) -> None:
    assert tree.root(0) == EMPTY_ROOT == Tree().root()


def test_leaves_must_be_hashes_not_entries() -> None:
    """``root``, ``Tree`` and the frontier take leaf hashes; an unhashed entry is refused."""
    entry = jcs(SHARED["entries"][0])
    with pytest.raises(ValueError, match="32-byte hash"):
        root([entry])
    with pytest.raises(ValueError, match="32-byte hash"):
        Tree([LEAVES[0], entry])
    with pytest.raises(ValueError, match="32-byte hash"):
        Tree().append(LEAVES[0][:31])
    with pytest.raises(ValueError, match="32-byte hash"):
        frontier_append([], 0, entry)


@pytest.mark.parametrize(("frontier_length", "size"), [(0, 1), (2, 2), (1, 3), (0, -1)])
def test_frontier_append_refuses_a_frontier_of_the_wrong_size(
    frontier_length: int, size: int
) -> None:
    with pytest.raises(ValueError, match="perfect subtrees"):
        frontier_append(LEAVES[:frontier_length], size, LEAVES[0])


def test_frontier_root_of_nothing_is_the_empty_root() -> None:
    assert frontier_root([]) == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size"), [(0, 0), (-1, 4), (4, 4), (2**64 - 1, 8)])
def test_inclusion_index_outside_the_tree_fails(index: int, size: int) -> None:
    with pytest.raises(VerificationError, match="not in a tree of size"):
        root_from_inclusion_proof(index, size, LEAVES[0], [])


def test_inclusion_failure_names_expected_and_calculated_root(tree: Tree) -> None:
    proof = tree.inclusion_proof(3, 10)
    calculated = root_from_inclusion_proof(3, 10, OTHER, proof)  # computes, never compares
    with pytest.raises(VerificationError) as caught:
        verify_inclusion(3, 10, OTHER, proof, _mth(0, 10))
    assert caught.value.expected == _mth(0, 10)
    assert caught.value.calculated == calculated != _mth(0, 10)
    assert _mth(0, 10).hex() in str(caught.value) and calculated.hex() in str(caught.value)


def test_wrong_inclusion_proof_length_names_both_lengths(tree: Tree) -> None:
    proof = tree.inclusion_proof(3, 10)
    for wrong in (proof[:-1], [*proof, OTHER]):
        with pytest.raises(VerificationError, match="length") as caught:
            root_from_inclusion_proof(3, 10, LEAVES[3], wrong)
        assert (caught.value.expected, caught.value.calculated) == (len(proof), len(wrong))


def test_inclusion_of_wrong_sized_hashes_fails(tree: Tree) -> None:
    proof = tree.inclusion_proof(3, 10)
    with pytest.raises(VerificationError, match="leaf is not a 32-byte hash"):
        verify_inclusion(3, 10, LEAVES[3][:-1], proof, _mth(0, 10))
    with pytest.raises(VerificationError, match="proof node 1 is not a 32-byte hash"):
        verify_inclusion(3, 10, LEAVES[3], [proof[0], proof[1] + b"\x00", *proof[2:]], _mth(0, 10))
    with pytest.raises(VerificationError, match="root is not a 32-byte hash"):
        verify_inclusion(3, 10, LEAVES[3], proof, _mth(0, 10)[:-1])


@pytest.mark.parametrize(("first", "second"), [(0, 0), (0, 1), (0, 5)])
def test_consistency_from_the_empty_tree_fails(first: int, second: int) -> None:
    """RFC 9162 2.1.4.2 verifies only for ``0 < first``: even an empty proof between two empty
    roots, which an older transparency-dev verifier accepted as "always consistent", fails."""
    with pytest.raises(VerificationError, match="1 <= first <= second"):
        verify_consistency(first, second, EMPTY_ROOT, _mth(0, second), [])


def test_consistency_to_a_smaller_tree_fails() -> None:
    with pytest.raises(VerificationError, match="1 <= first <= second"):
        verify_consistency(5, 4, _mth(0, 5), _mth(0, 4), [])


def test_consistency_between_equal_sizes_needs_equal_roots_and_no_proof() -> None:
    verify_consistency(5, 5, _mth(0, 5), _mth(0, 5), [])
    with pytest.raises(VerificationError, match="must be empty"):
        verify_consistency(5, 5, _mth(0, 5), _mth(0, 5), [LEAVES[0]])
    with pytest.raises(VerificationError, match="differ") as caught:
        verify_consistency(5, 5, _mth(0, 5), _mth(0, 4), [])
    assert (caught.value.expected, caught.value.calculated) == (_mth(0, 5), _mth(0, 4))


def test_empty_consistency_proof_between_different_sizes_fails() -> None:
    with pytest.raises(VerificationError, match="empty consistency proof"):
        verify_consistency(4, 8, _mth(0, 4), _mth(0, 8), [])


def test_consistency_failure_names_expected_and_calculated_root(tree: Tree) -> None:
    proof = tree.consistency_proof(6, 13)
    with pytest.raises(VerificationError, match="root of size 13") as caught:
        verify_consistency(6, 13, _mth(0, 6), _mth(0, 12), proof)
    assert (caught.value.expected, caught.value.calculated) == (_mth(0, 12), _mth(0, 13))
    with pytest.raises(VerificationError, match="root of size 6") as caught:
        verify_consistency(6, 13, _mth(0, 5), _mth(0, 13), proof)
    assert (caught.value.expected, caught.value.calculated) == (_mth(0, 5), _mth(0, 6))
    for wrong in (proof[:-1], [*proof, OTHER]):
        with pytest.raises(VerificationError, match="length") as caught:
            verify_consistency(6, 13, _mth(0, 6), _mth(0, 13), wrong)
        assert (caught.value.expected, caught.value.calculated) == (len(proof), len(wrong))


def test_consistency_of_wrong_sized_hashes_fails(tree: Tree) -> None:
    proof = tree.consistency_proof(6, 13)
    with pytest.raises(VerificationError, match="first root is not a 32-byte hash"):
        verify_consistency(6, 13, b"WrongRoot", _mth(0, 13), proof)
    with pytest.raises(VerificationError, match="second root is not a 32-byte hash"):
        verify_consistency(6, 13, _mth(0, 6), b"", proof)
    with pytest.raises(VerificationError, match="proof node 0 is not a 32-byte hash"):
        verify_consistency(6, 13, _mth(0, 6), _mth(0, 13), [b"", *proof[1:]])
