"""Queries of messages and of the content keys a victim shared; the caller owns the session."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import cast

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import Message, SharedKey

__all__ = ["by_client_msg_id", "insert", "previous", "readable", "shared_keys"]


async def by_client_msg_id(session: AsyncSession, client_msg_id: str) -> Message | None:
    return await session.scalar(select(Message).where(Message.client_msg_id == client_msg_id))


async def previous(
    session: AsyncSession, client_msg_ids: Collection[str]
) -> dict[str, tuple[str, int]]:
    """``client_msg_id -> (envelope_sha256, seq)`` of those already stored."""
    rows = await session.execute(
        select(Message.client_msg_id, Message.envelope_sha256, Message.seq).where(
            Message.client_msg_id.in_(list(client_msg_ids))
        )
    )
    return {client_msg_id: (digest, seq) for client_msg_id, digest, seq in rows.all()}


async def insert(session: AsyncSession, rows: Sequence[Mapping[str, object]]) -> None:
    """Store messages (the columns of ``Message`` but its id) in one statement, without ORM
    objects: the message path makes thousands a second."""
    await session.execute(_INSERT, rows)


_INSERT = cast(Table, Message.__table__).insert()


async def shared_keys(session: AsyncSession, conversation_id: str, epoch_id: str) -> dict[int, str]:
    """``seq -> sealed content key`` of the earlier messages shared with ``epoch_id``."""
    rows = await session.execute(
        select(SharedKey.seq, SharedKey.key).where(
            SharedKey.conversation_id == conversation_id, SharedKey.epoch_id == epoch_id
        )
    )
    return {seq: key for seq, key in rows.all()}


async def readable(
    session: AsyncSession,
    conversation_id: str,
    after: int,
    limit: int,
    *,
    epoch_id: str | None = None,
    shared: Sequence[int] = (),
) -> Sequence[Message]:
    """Messages after ``after`` in seq order; with ``epoch_id``, only that epoch's
    investigation messages and the ``shared`` seqs (what an officer may read)."""
    conditions = [Message.conversation_id == conversation_id, Message.seq > after]
    if epoch_id is not None:
        conditions.append(
            or_(
                and_(Message.investigation.is_(True), Message.epoch_id == epoch_id),
                Message.seq.in_(list(shared)),
            )
        )
    return (
        await session.scalars(select(Message).where(*conditions).order_by(Message.seq).limit(limit))
    ).all()
