"""Queries of the log's tables for reading it back (the writer, bridge.log.writer, keeps its
own); the caller owns the session."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import LogEntry, LogState, StoredCheckpoint

__all__ = [
    "checkpoint_ranges",
    "checkpoints",
    "entries",
    "entries_of_kind",
    "last_entry_of_kind",
    "leaf_hash",
    "leaf_hashes",
    "size",
    "size_and_checkpoint_time",
]


async def size(session: AsyncSession) -> int:
    return (await session.get_one(LogState, 1)).size


async def size_and_checkpoint_time(session: AsyncSession) -> tuple[int, str | None]:
    """The log's size and the time of its latest signed checkpoint (None before the first), in
    one query: what a metrics scrape reads."""
    latest = (
        select(StoredCheckpoint.time)
        .order_by(StoredCheckpoint.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(LogState.size, latest).where(LogState.id == 1)
    count, time = (await session.execute(query)).one()
    return count, time


async def entries(session: AsyncSession, start: int, count: int) -> Sequence[tuple[int, str]]:
    """``(index, stored JCS text)`` of up to ``count`` entries from ``start``."""
    rows = await session.execute(
        select(LogEntry.idx, LogEntry.entry)
        .where(LogEntry.idx >= start, LogEntry.idx < start + count)
        .order_by(LogEntry.idx)
    )
    return [(idx, entry) for idx, entry in rows.all()]


async def leaf_hashes(session: AsyncSession, start: int, end: int) -> Sequence[str]:
    rows = await session.scalars(
        select(LogEntry.leaf_hash)
        .where(LogEntry.idx >= start, LogEntry.idx < end)
        .order_by(LogEntry.idx)
    )
    return rows.all()


async def leaf_hash(session: AsyncSession, index: int) -> str | None:
    return await session.scalar(select(LogEntry.leaf_hash).where(LogEntry.idx == index))


async def checkpoints(session: AsyncSession, start: int, count: int) -> Sequence[StoredCheckpoint]:
    rows = await session.scalars(
        select(StoredCheckpoint).order_by(StoredCheckpoint.id).offset(start).limit(count)
    )
    return rows.all()


async def last_entry_of_kind(session: AsyncSession, kind: str) -> str | None:
    """The stored JCS text of the latest entry of ``kind``."""
    return await session.scalar(
        select(LogEntry.entry).where(LogEntry.kind == kind).order_by(LogEntry.idx.desc()).limit(1)
    )


async def entries_of_kind(session: AsyncSession, kind: str) -> Sequence[tuple[int, str]]:
    """``(index, stored JCS text)`` of every entry of ``kind``, in log order."""
    rows = await session.execute(
        select(LogEntry.idx, LogEntry.entry).where(LogEntry.kind == kind).order_by(LogEntry.idx)
    )
    return [(idx, entry) for idx, entry in rows.all()]


async def checkpoint_ranges(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """For each key id, the sizes of the first and the last checkpoint it signed."""
    signed = StoredCheckpoint.size
    rows = await session.execute(
        select(StoredCheckpoint.key_id, func.min(signed), func.max(signed)).group_by(
            StoredCheckpoint.key_id
        )
    )
    return {key_id: (first, last) for key_id, first, last in rows.all()}
