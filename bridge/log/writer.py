"""The append-only Merkle log of consent decisions and accesses (DESIGN.md, "The log").

Every entry is the canonical JSON (JCS) of ``{kind, at, prev_checkpoint, conversation?, actor?,
...}`` with no content and no victim-identifying data; its leaf hash is RFC 9162's
``SHA-256(0x00 || JCS(entry))``. Entries are appended inside the caller's transaction, so a
state change and its entry commit together or not at all. The tree head is kept incrementally
(the compact range in ``log_state``): an append costs O(log n) hashes, never a pass over the log.

A checkpoint ``{size, root, time, key_id, sig}`` is signed with the log key every
``checkpoint_every`` entries, every minute while entries arrive (:func:`run_checkpoints`), and on
demand; every entry names the latest one as ``prev_checkpoint``, so an entry cannot be moved to
before a checkpoint, and the log cannot be cut or rewritten behind one, without it showing.

The log key changes only by :meth:`Log.rotate`: a ``log_key.rotated`` entry and a checkpoint of
the old key that covers it, so the key auditors trust signs the hand-over. ``log_state.key_id``
names the key that signs from then on; a node holding another key reads its key file again and,
if that is not the one either, signs nothing (never a checkpoint under a retired key).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.clock import iso
from bridge.config import Settings
from bridge.crypto import b64u_decode, b64u_encode, jcs
from bridge.log import merkle
from bridge.log.logkey import LogKey, SignedCheckpoint, load_log_key, log_key_for
from bridge.store.db import Database
from bridge.store.models import LogEntry, LogState, StoredCheckpoint

__all__ = ["Log", "LogKeyNotCurrent", "checkpoint_view", "open_log", "run_checkpoints"]

_log = structlog.get_logger("bridge.log")


class LogKeyNotCurrent(RuntimeError):
    """This node's log key is not the one the log signs with now (it was rotated)."""


class Log:
    def __init__(
        self, key: LogKey, *, checkpoint_every: int = 100, key_path: Path | None = None
    ) -> None:
        self.key = key
        self.checkpoint_every = checkpoint_every
        self.key_path = key_path  # read again when the log has moved on to another key

    @staticmethod
    async def _state(session: AsyncSession) -> LogState:
        # FOR UPDATE: appends are serialised on the one row that holds the tree head.
        state = await session.scalar(select(LogState).where(LogState.id == 1).with_for_update())
        if state is None:
            raise RuntimeError("the log has no tree head: run the migrations")
        return state

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
        state = await self._state(session)
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
        encoded = jcs(entry)
        leaf = merkle.leaf_hash(encoded)
        index = state.size
        session.add(
            LogEntry(
                idx=index,
                kind=kind,
                conversation_id=conversation_id,
                entry=encoded.decode(),
                leaf_hash=b64u_encode(leaf),
            )
        )
        frontier = [b64u_decode(node) for node in state.frontier]
        state.frontier = [b64u_encode(n) for n in merkle.frontier_append(frontier, index, leaf)]
        state.size = index + 1
        due = state.size - (state.checkpoint_size or 0) >= self.checkpoint_every
        # A node without the current key leaves the periodic checkpoint to one that has it
        # rather than refuse the change this entry records.
        if due and self._holds_current_key(state):
            await self._sign(session, state, at)
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
        if not self._holds_current_key(await self._state(session)):
            raise LogKeyNotCurrent("this node does not hold the log's current key")
        return self.key

    async def _sign(
        self, session: AsyncSession, state: LogState, now: datetime
    ) -> SignedCheckpoint:
        if not self._holds_current_key(state):
            raise LogKeyNotCurrent("this node does not hold the log's current key")
        state.key_id = self.key.key_id
        root = merkle.frontier_root([b64u_decode(node) for node in state.frontier])
        signed = self.key.sign_checkpoint(state.size, root, iso(now))
        session.add(
            StoredCheckpoint(
                size=state.size,
                root=signed["root"],
                time=signed["time"],
                key_id=signed["key_id"],
                sig=signed["sig"],
            )
        )
        state.checkpoint_size = state.size
        state.checkpoint_root = signed["root"]
        return signed

    async def checkpoint(self, session: AsyncSession, now: datetime) -> SignedCheckpoint:
        """A signed checkpoint covering the whole log, signed now if the latest does not."""
        state = await self._state(session)
        if state.checkpoint_size == state.size:
            latest = await session.scalar(
                select(StoredCheckpoint).order_by(StoredCheckpoint.id.desc()).limit(1)
            )
            if latest is not None:
                return checkpoint_view(latest)
        return await self._sign(session, state, now)

    async def checkpoint_if_behind(self, session: AsyncSession, now: datetime) -> bool:
        """Sign a checkpoint if entries arrived since the latest one."""
        state = await self._state(session)
        if state.size == (state.checkpoint_size or 0):
            return False
        await self._sign(session, state, now)
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
        (await self._state(session)).key_id = new.key_id
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
