"""Queries of conversations; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.machine import ConversationState
from bridge.store.models import Conversation

__all__ = ["next_seq", "waiting", "waiting_count"]

_WAITING = ConversationState.WAITING.value


async def waiting(session: AsyncSession) -> Sequence[tuple[str, str, datetime]]:
    """``(id, lang, created_at)`` of every conversation waiting for a counsellor, oldest first."""
    rows = await session.execute(
        select(Conversation.id, Conversation.lang, Conversation.created_at)
        .where(Conversation.state == _WAITING)
        .order_by(Conversation.created_at)
    )
    return [(cid, lang, since) for cid, lang, since in rows.all()]


async def waiting_count(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Conversation).where(Conversation.state == _WAITING)
    )
    return count or 0


async def next_seq(session: AsyncSession, conversation_id: str) -> int:
    """The conversation's next message number, taken in the caller's transaction: gap-free,
    since a rolled-back transaction gives its number back."""
    seq: int | None = await session.scalar(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_seq=Conversation.last_seq + 1)
        .returning(Conversation.last_seq)
    )
    if seq is None:
        raise LookupError("no such conversation")
    return seq
