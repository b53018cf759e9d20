"""Queries of messages and of the content keys a victim shared; the caller owns the session."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import Message, SharedKey

__all__ = ["readable", "shared_keys"]


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
