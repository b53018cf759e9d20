"""The append-only Merkle log of consent decisions and accesses (DESIGN.md, "The log").

Every entry is the canonical JSON (JCS) of ``{kind, at, prev_checkpoint, conversation?, actor?,
...}`` with no content and no victim-identifying data; its leaf hash is RFC 9162's
``SHA-256(0x00 || JCS(entry))``. Entries are appended inside the caller's transaction, so a
state change and its entry commit together or not at all. The tree head is kept incrementally
(the compact range in ``log_state``): an append costs O(log n) hashes, never a pass over the log.

Appends are grouped per transaction: the first reads the tree head and locks its row (one writer
at a time, whichever node), and every append of that transaction then works in memory: its
index, entry, leaf hash and the compact range. The entries, the checkpoints they made due and the
new head reach the database together when the session flushes (before its next query, at a
savepoint, at the commit), one multi-row insert and one update however many entries there are.
A rollback, a savepoint's too, takes the group's entries back with it, and every transaction
(and every savepoint's end) reads the head afresh.

A checkpoint ``{size, root, time, key_id, sig}`` is signed with the log key every
``checkpoint_every`` entries, every minute while entries arrive (:func:`run_checkpoints`), and on
demand; every entry names the latest one as ``prev_checkpoint``, so an entry cannot be moved to
before a checkpoint, and the log cannot be cut or rewritten behind one, without it showing.
Grouping changes none of this: the entries and checkpoints of a group are those its appends
would have made one transaction each.

The log key changes only by :meth:`Log.rotate`: a ``log_key.rotated`` entry and a checkpoint of
the old key that covers it, so the key auditors trust signs the hand-over. ``log_state.key_id``
names the key that signs from then on; a node holding another key reads its key file again and,
if that is not the one either, signs nothing (never a checkpoint under a retired key).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import structlog
from sqlalchemy import event as orm_event
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from bridge.clock import iso
from bridge.config import Settings
from bridge.crypto import b64u_decode, b64u_encode, jcs, jcs_checked
from bridge.log import merkle
from bridge.log.logkey import LogKey, SignedCheckpoint, load_log_key, log_key_for
from bridge.store.db import Database
from bridge.store.models import LogEntry, LogState, StoredCheckpoint

__all__ = ["Log", "LogKeyNotCurrent", "checkpoint_view", "open_log", "run_checkpoints"]

_log = structlog.get_logger("bridge.log")

# Key of ``Session.info``: the group of the session's current transaction.
_GROUP: Final = "bridge.log.group"
_MAX_SAFE_INTEGER = 2**53 - 1


def _plain(value: object) -> bool:
    """Whether ``value`` holds only what ``jcs_checked`` may be given: dicts with string keys,
    lists, strings, booleans, None and integers JCS can hold (exact types: a subclass, a float
    or anything else goes to ``jcs``, which encodes it or says why not)."""
    if value is None or type(value) is str or type(value) is bool:
        return True
    if type(value) is int:
        return -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER
    if type(value) is dict:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    if type(value) is list or type(value) is tuple:
        return all(_plain(item) for item in value)
    return False


class LogKeyNotCurrent(RuntimeError):
    """This node's log key is not the one the log signs with now (it was rotated)."""


@dataclass(eq=False)
class _Group:
    """The tree head as one transaction holds it, and what it appended that is not written yet.

    ``state`` is the locked ``log_state`` row; its changes are what make the session flush, and
    :func:`_write` puts the pending rows in before the head's update."""

    state: LogState
    frontier: list[bytes]
    entries: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)


def _write(session: Session, _context: object, _instances: object) -> None:
    """Before a flush: the group's pending entries and checkpoints, and the head's frontier."""
    group: _Group | None = session.info.get(_GROUP)
    if group is None:
        return
    connection = session.connection()
    if group.entries:
        connection.execute(insert(LogEntry), group.entries)
        group.state.frontier = [b64u_encode(node) for node in group.frontier]
        group.entries = []
    if group.checkpoints:
        connection.execute(insert(StoredCheckpoint), group.checkpoints)
        group.checkpoints = []


def _forget(session: Session, transaction: SessionTransaction) -> None:
    """The transaction ended, or a savepoint did: the group goes with it. (A savepoint rolled
    back takes back appends the group counted, and perhaps the head's lock.) The next append
    reads the head again; a flush's own subtransaction is neither."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(_GROUP, None)


class Log:
    def __init__(
        self, key: LogKey, *, checkpoint_every: int = 100, key_path: Path | None = None
    ) -> None:
        self.key = key
        self.checkpoint_every = checkpoint_every
        self.key_path = key_path  # read again when the log has moved on to another key

    @staticmethod
    async def _group(session: AsyncSession) -> _Group:
        """The group of the session's transaction, the tree head read and locked if it is the
        first call in it."""
        sync = session.sync_session
        group: _Group | None = sync.info.get(_GROUP)
        if group is not None:
            return group
        # FOR UPDATE: appends are serialised on the one row that holds the tree head, held to
        # the commit; populate_existing, since the session may hold the row from an earlier
        # transaction and another writer may have moved it on since.
        state = await session.scalar(
            select(LogState)
            .where(LogState.id == 1)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if state is None:
            raise RuntimeError("the log has no tree head: run the migrations")
        if not orm_event.contains(sync, "before_flush", _write):
            orm_event.listen(sync, "before_flush", _write)
            orm_event.listen(sync, "after_transaction_end", _forget)
        group = _Group(state, [b64u_decode(node) for node in state.frontier])
        sync.info[_GROUP] = group
        return group

    async def append(
        self,
        session: AsyncSession,
        kind: str,
        *,
        at: datetime,
        conversation_id: str | None = None,
        actor: Mapping[str, object] | None = None,
        **fields: object,
    ) -> int:
        """Append one entry in the caller's transaction and return its 0-based index."""
        group = await self._group(session)
        state = group.state
        previous = (
            None
            if state.checkpoint_size is None
            else {"size": state.checkpoint_size, "root": state.checkpoint_root}
        )
        entry: dict[str, object] = {"kind": kind, "at": iso(at), "prev_checkpoint": previous}
        if conversation_id is not None:
            entry["conversation"] = conversation_id
        if actor is not None:
            entry["actor"] = dict(actor)
        entry.update(fields)
        # The entry's JCS is most of an append's work; the fast encoder where it may be used.
        encoded = jcs_checked(entry) if _plain(entry) else jcs(entry)
        leaf = merkle.leaf_hash(encoded)
        index = state.size
        group.entries.append(
            {
                "idx": index,
                "kind": kind,
                "conversation_id": conversation_id,
                "entry": encoded.decode(),
                "leaf_hash": b64u_encode(leaf),
            }
        )
        group.frontier = merkle.frontier_append(group.frontier, index, leaf)
        state.size = index + 1
        due = state.size - (state.checkpoint_size or 0) >= self.checkpoint_every
        # A node without the current key leaves the periodic checkpoint to one that has it
        # rather than refuse the change this entry records.
        if due and self._holds_current_key(state):
            self._sign(group, at)
        return index

    def _holds_current_key(self, state: LogState) -> bool:
        """Whether this node holds the key the log signs with now; after a rotation by another
        process the new key is read from the key file."""
        if state.key_id in (None, self.key.key_id):
            return True
        try:
            key = None if self.key_path is None else load_log_key(self.key_path, self.key.origin)
        except (OSError, ValueError):  # no key file, or an unreadable one: no signature either
            key = None
        if key is not None and key.key_id == state.key_id:
            self.key = key
            _log.info("log_key.reloaded", key_id=key.key_id)
            return True
        _log.error("log_key.not_current", holds=self.key.key_id, current=state.key_id)
        return False

    async def signing_key(self, session: AsyncSession) -> LogKey:
        """The key the log signs with now; ``LogKeyNotCurrent`` if this node lacks it."""
        if not self._holds_current_key((await self._group(session)).state):
            raise LogKeyNotCurrent("this node does not hold the log's current key")
        return self.key

    def _sign(self, group: _Group, now: datetime) -> SignedCheckpoint:
        state = group.state
        if not self._holds_current_key(state):
            raise LogKeyNotCurrent("this node does not hold the log's current key")
        state.key_id = self.key.key_id
        signed = self.key.sign_checkpoint(
            state.size, merkle.frontier_root(group.frontier), iso(now)
        )
        group.checkpoints.append(dict(signed))
        state.checkpoint_size = state.size
        state.checkpoint_root = signed["root"]
        return signed

    async def checkpoint(self, session: AsyncSession, now: datetime) -> SignedCheckpoint:
        """A signed checkpoint covering the whole log, signed now if the latest does not."""
        group = await self._group(session)
        if group.state.checkpoint_size == group.state.size:
            await session.flush()  # the latest may be one this group signed
            latest = await session.scalar(
                select(StoredCheckpoint).order_by(StoredCheckpoint.id.desc()).limit(1)
            )
            if latest is not None:
                return checkpoint_view(latest)
        return self._sign(group, now)

    async def checkpoint_if_behind(self, session: AsyncSession, now: datetime) -> bool:
        """Sign a checkpoint if entries arrived since the latest one."""
        group = await self._group(session)
        if group.state.size == (group.state.checkpoint_size or 0):
            return False
        self._sign(group, now)
        return True

    async def rotate(
        self, session: AsyncSession, new: LogKey, now: datetime, actor: Mapping[str, object]
    ) -> tuple[int, SignedCheckpoint]:
        """Hand the log over to ``new``: the ``log_key.rotated`` entry and a checkpoint of the
        current key that covers it; later checkpoints are the new key's. Returns both."""
        old = await self.signing_key(session)
        index = await self.append(
            session,
            "log_key.rotated",  # export_format.ROTATED: the verifier follows the key from it
            at=now,
            actor=actor,
            old_key_id=old.key_id,
            old_ed25519=old.ed25519,
            new_key_id=new.key_id,
            new_ed25519=new.ed25519,
        )
        handover = await self.checkpoint(session, now)
        (await self._group(session)).state.key_id = new.key_id
        self.key = new
        return index, handover


def open_log(settings: Settings) -> Log:
    """This installation's log, with its key (made on first use)."""
    return Log(
        log_key_for(settings),
        checkpoint_every=settings.checkpoint_every,
        key_path=settings.log_key_path,
    )


def checkpoint_view(row: StoredCheckpoint) -> SignedCheckpoint:
    return SignedCheckpoint(
        size=row.size, root=row.root, time=row.time, key_id=row.key_id, sig=row.sig
    )


async def run_checkpoints(
    db: Database, log: Log, clock: Callable[[], datetime], period: float = 60.0
) -> None:
    """Every ``period`` seconds, sign a checkpoint if the log grew (PROTOCOL.md: every 60 s)."""
    while True:
        await asyncio.sleep(period)
        try:
            async with db.session() as session, session.begin():
                if await log.checkpoint_if_behind(session, clock()):
                    _log.info("checkpoint.signed")
        except Exception:
            _log.exception("checkpoint.failed")
