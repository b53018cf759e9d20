"""Queries of conversations; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.machine import ConversationState
from bridge.store.models import Conversation

__all__ = ["locked", "take_seqs", "take_seqs_if_unchanged", "waiting", "waiting_count"]

_WAITING = ConversationState.WAITING.value


async def locked(session: AsyncSession, conversation_id: str) -> Conversation | None:
    """The conversation read afresh with its row locked until the transaction ends.

    Every change to a conversation, its bridge requests and invites takes this lock first, so
    two transactions (on two connections, or two nodes) never move the same state at once; one
    conversation per transaction, so that with the log's lock after it no two can wait on each
    other. SQLite serialises whole transactions already and ignores it.
    """
    return await session.get(
        Conversation, conversation_id, with_for_update=True, populate_existing=True
    )


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


async def take_seqs(session: AsyncSession, count: int, conversation_id: str) -> int:
    """Take the conversation's next ``count`` message numbers in the caller's transaction and
    return the last: gap-free, since a rolled-back transaction gives its numbers back."""
    seq: int | None = await session.scalar(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_seq=Conversation.last_seq + count)
        .returning(Conversation.last_seq)
    )
    if seq is None:
        raise LookupError("no such conversation")
    return seq


async def take_seqs_if_unchanged(
    session: AsyncSession, wanted: Mapping[str, tuple[int, int]]
) -> dict[str, int]:
    """``take_seqs`` for several conversations in one statement, ``conversation_id -> (count,
    version)``, each only if the conversation is still at that version (migration 0005);
    returns ``conversation_id -> last seq taken`` of those that were.

    On PostgreSQL a row another transaction changed is read again once that one commits, so a
    version that moved in the meantime is seen."""
    values: list[str] = []
    params: dict[str, object] = {}
    for n, (conversation_id, (count, version)) in enumerate(wanted.items()):
        values.append(f"(:id{n}, CAST(:n{n} AS INTEGER), CAST(:v{n} AS INTEGER))")
        params |= {f"id{n}": conversation_id, f"n{n}": count, f"v{n}": version}
    rows = await session.execute(
        text(
            f"WITH wanted(id, n, version) AS (VALUES {', '.join(values)}) "
            "UPDATE conversations SET last_seq = conversations.last_seq + wanted.n FROM wanted "
            "WHERE conversations.id = wanted.id AND conversations.version = wanted.version "
            "RETURNING conversations.id, conversations.last_seq"
        ),
        params,
    )
    return {conversation_id: seq for conversation_id, seq in rows.all()}
