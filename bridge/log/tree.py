"""Building RFC 9162 proofs over the whole log (sections 2.1.3.1 and 2.1.4.1): the server's
side of :mod:`bridge.log.merkle`, which verifies them. Standard library only, like it.

A request outside the tree raises :class:`ValueError`: the tree is given our own data.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.log.merkle import EMPTY_ROOT, _check_hash, _split, node_hash

__all__ = ["Tree"]


class Tree:
    """Leaf hashes in memory, with a cache of perfect-subtree hashes (they never change once
    complete), for proofs over large logs.

    A perfect subtree is cached under ``(start, height)`` the first time it is needed; the hash
    of any other range splits into at most ``log2(n)`` of them (RFC 9162 2.1.1), so after the
    first call a root or proof costs ``O(log n)`` node hashes. Leaves are only appended.
    """

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self._leaves: list[bytes] = []
        self._perfect: dict[tuple[int, int], bytes] = {}
        for leaf in leaves:
            self.append(leaf)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash at the end. Raises ValueError for a leaf that is not a hash."""
        _check_hash(leaf, "leaf")
        self._leaves.append(bytes(leaf))

    def __len__(self) -> int:
        return len(self._leaves)

    def root(self, size: int | None = None) -> bytes:
        """``MTH(D[0:size])``, the root when the log had ``size`` leaves (default: all of them).

        Raises ValueError unless ``0 <= size <= len(self)``.
        """
        if size is None:
            size = len(self)
        if not 0 <= size <= len(self):
            raise ValueError(f"no tree of size {size} in a log of {len(self)} leaves")
        return self._hash(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The inclusion proof ``PATH(index, D[0:size])`` of RFC 9162 2.1.3.1, bottom up.

        Raises ValueError unless ``0 <= index < size <= len(self)``.
        """
        if not 0 <= index < size <= len(self):
            raise ValueError(
                f"no inclusion proof for index {index} in a tree of size {size} "
                f"(a log of {len(self)} leaves)"
            )
        # Walk from the root down to the leaf; each step adds the sibling subtree's hash. The
        # RFC lists them leaf first, so reverse at the end.
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            middle = start + _split(end - start)
            if index < middle:
                path.append(self._hash(middle, end))
                end = middle
            else:
                path.append(self._hash(start, middle))
                start = middle
        path.reverse()
        return path

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The consistency proof ``PROOF(first, D[0:second])`` of RFC 9162 2.1.4.1, bottom up.

        ``first == second`` gives ``[]`` (``SUBPROOF(m, D[m], true) = {}``). Raises ValueError
        unless ``1 <= first <= second <= len(self)``: RFC 9162 defines no proof from the empty
        tree.
        """
        if not 1 <= first <= second <= len(self):
            raise ValueError(
                f"no consistency proof from size {first} to size {second} "
                f"(a log of {len(self)} leaves)"
            )
        # SUBPROOF(m, D[start:end], whole), top down; whole is the RFC's flag b, true while the
        # old tree's root is the root of D[start:end]'s left part and so known to the verifier.
        path: list[bytes] = []
        start, end, whole = 0, second, True
        while first != end:
            middle = start + _split(end - start)
            if first <= middle:
                path.append(self._hash(middle, end))
                end = middle
            else:
                path.append(self._hash(start, middle))
                start, whole = middle, False
        if not whole:
            path.append(self._hash(start, end))
        path.reverse()
        return path

    def _hash(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])`` for a range RFC 9162 2.1.1's split produces (``start < end``)."""
        # The left part of every split is perfect; only the right border is not.
        lefts: list[bytes] = []
        while True:
            width = end - start
            if width & (width - 1) == 0:
                result = self._perfect_hash(start, width.bit_length() - 1)
                break
            middle = start + _split(width)
            lefts.append(self._perfect_hash(start, (middle - start).bit_length() - 1))
            start = middle
        for left in reversed(lefts):
            result = node_hash(left, result)
        return result

    def _perfect_hash(self, start: int, height: int) -> bytes:
        """The hash of the perfect subtree of ``2**height`` leaves from ``start``, cached."""
        if height == 0:
            return self._leaves[start]
        key = (start, height)
        cached = self._perfect.get(key)
        if cached is None:
            half = 1 << (height - 1)
            cached = node_hash(
                self._perfect_hash(start, height - 1),
                self._perfect_hash(start + half, height - 1),
            )
            self._perfect[key] = cached
        return cached
