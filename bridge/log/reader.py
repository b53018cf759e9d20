"""The log read back for auditors: pages of entries and checkpoints, RFC 9162 proofs, and the
history of the log key.

Leaf hashes are kept in memory with complete subtrees cached (``Tree``), brought up to
the log's size on each proof, so a proof needs no pass over the log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.clock import Clock
from bridge.crypto import b64u_decode, b64u_encode
from bridge.errors import Invalid
from bridge.log.export_format import ROTATED
from bridge.log.logkey import SignedCheckpoint
from bridge.log.rules import Breach, check_rules
from bridge.log.signed_note import note_body, sign_note
from bridge.log.tree import Tree
from bridge.log.writer import Log, checkpoint_view
from bridge.store import log as stored
from bridge.store.db import Database

__all__ = ["KeyRecord", "LogReader", "Page"]

_RULES_PAGE = 1000  # entries read at a time for the rules


@dataclass(frozen=True)
class Page:
    """Entries as stored (canonical JSON text, hashed as is) and the log's size."""

    entries: Sequence[tuple[int, str]]
    size: int


@dataclass(frozen=True)
class KeyRecord:
    """A log key of the history: the index of the ``log_key.rotated`` entry that handed the log
    over to it (None for the first key), and the sizes of the first and last checkpoints it
    signed (None while it signed none)."""

    key_id: str
    ed25519: str
    rotation_index: int | None
    first_size: int | None
    last_size: int | None

    def view(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "ed25519": self.ed25519,
            "rotation_index": self.rotation_index,
            "first_size": self.first_size,
            "last_size": self.last_size,
        }


class LogReader:
    def __init__(self, db: Database, log: Log, clock: Clock) -> None:
        self.db = db
        self.log = log
        self.clock = clock
        self.tree = Tree()

    async def _size(self) -> int:
        """The log's size now, with the in-memory tree brought up to it."""
        async with self.db.reading() as session:
            size = await stored.size(session)
            if len(self.tree) < size:
                for leaf in await stored.leaf_hashes(session, len(self.tree), size):
                    self.tree.append(b64u_decode(leaf))
        return size

    async def entries(self, start: int, count: int) -> Page:
        async with self.db.reading() as session:
            size = await stored.size(session)
            return Page(await stored.entries(session, start, count), size)

    async def breaches(self) -> tuple[int, list[Breach]]:
        """The log's size and every breach of the agreed rules in it (``bridge/log/rules.py``),
        read page by page in one reading session (one state of the log)."""
        async with self.db.reading() as session:
            size = await stored.size(session)
            entries: list[tuple[int, Any]] = []
            while len(entries) < size:
                page = await stored.entries(session, len(entries), _RULES_PAGE)
                if not page:
                    raise Invalid(
                        f"the log holds {len(entries)} entries where its head says {size}"
                    )
                entries += [(index, json.loads(entry)) for index, entry in page]
        return size, check_rules(entries)

    async def checkpoint(self) -> SignedCheckpoint:
        """A checkpoint covering the whole log now (signed on demand if the last is behind)."""
        async with self.db.session() as session, session.begin():
            return await self.log.checkpoint(session, self.clock())

    async def checkpoint_note(self) -> str:
        """The checkpoint as a C2SP ``tlog-checkpoint`` signed note, for witnesses to cosign."""
        async with self.db.session() as session, session.begin():
            signed = await self.log.checkpoint(session, self.clock())
            key = await self.log.signing_key(session)
        body = note_body(key.origin, signed["size"], b64u_decode(signed["root"]))
        return sign_note(body, key.origin, key.signing)

    async def log_keys(self) -> list[KeyRecord]:
        """Every key the log was signed with, oldest first; the last signs now. Read from the
        ``log_key.rotated`` entries, so it is the history an auditor finds in the log."""
        async with self.db.reading() as session:
            rotations = [
                (index, json.loads(text))
                for index, text in await stored.entries_of_kind(session, ROTATED)
            ]
            ranges = await stored.checkpoint_ranges(session)
        first = self.log.key
        keys: list[tuple[str, str, int | None]] = [(first.key_id, first.ed25519, None)]
        if rotations:
            keys = [(rotations[0][1]["old_key_id"], rotations[0][1]["old_ed25519"], None)]
        keys += [(entry["new_key_id"], entry["new_ed25519"], index) for index, entry in rotations]
        return [
            KeyRecord(key_id, ed25519, index, *ranges.get(key_id, (None, None)))
            for key_id, ed25519, index in keys
        ]

    async def checkpoints(self, start: int, count: int) -> list[SignedCheckpoint]:
        async with self.db.reading() as session:
            return [checkpoint_view(row) for row in await stored.checkpoints(session, start, count)]

    async def inclusion(self, index: int, size: int) -> dict[str, object]:
        if not 0 <= index < size <= await self._size():
            raise Invalid("an inclusion proof needs 0 <= index < size <= the log's size")
        path = self.tree.inclusion_proof(index, size)
        async with self.db.reading() as session:
            leaf = await stored.leaf_hash(session, index)
        return {
            "index": index,
            "size": size,
            "leaf_hash": leaf,
            "path": [b64u_encode(node) for node in path],
        }

    async def consistency(self, first: int, second: int) -> dict[str, object]:
        if not 1 <= first <= second <= await self._size():
            raise Invalid("a consistency proof needs 1 <= first <= second <= the log's size")
        path = self.tree.consistency_proof(first, second)
        return {"first": first, "second": second, "path": [b64u_encode(node) for node in path]}
