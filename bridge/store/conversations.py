"""Queries of conversations; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ScalarSelect, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.machine import ACTIVE, ConversationState
from bridge.store.models import BridgeRequest, Conversation

__all__ = ["locked", "locked_with_bridge", "waiting", "waiting_count"]

_WAITING = ConversationState.WAITING.value
# The bridge in force sorts before the conversation's other requests (a CASE of constants, not an
# IN list SQLAlchemy expands again at every execution).
_IN_FORCE_FIRST = {state.value: 0 for state in sorted(ACTIVE)}


async def locked(
    session: AsyncSession, conversation_id: str | ScalarSelect[str]
) -> Conversation | None:
    """The conversation read afresh with its row locked until the transaction ends.

    Every change to a conversation, its bridge requests and invites takes this lock first, so
    two transactions (on two connections, or two nodes) never move the same state at once; one
    conversation per transaction, so that with the log's lock after it no two can wait on each
    other. SQLite serialises whole transactions already and ignores it. ``conversation_id`` may
    be a subquery: the conversation of a request or an invite, which never changes.
    """
    return await session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def locked_with_bridge(
    session: AsyncSession, conversation_id: str | ScalarSelect[str]
) -> tuple[Conversation, BridgeRequest | None] | None:
    """The conversation locked and read afresh as :func:`locked` reads it, with its bridge
    request in force, else its latest one (None if it never had one), read afresh too.

    On PostgreSQL the request is read by a statement of its own once the lock is held: a
    statement that waited for the lock would see the other rows as they were when it began,
    missing what the transaction it waited for made. SQLite runs one writing transaction at a
    time (``BEGIN IMMEDIATE``), so there one statement reads both."""
    in_force = case(_IN_FORCE_FIRST, value=BridgeRequest.state, else_=1)
    if session.get_bind().dialect.name == "sqlite":
        row = (
            await session.execute(
                select(Conversation, BridgeRequest)
                .outerjoin(BridgeRequest, BridgeRequest.conversation_id == Conversation.id)
                .where(Conversation.id == conversation_id)
                .order_by(in_force, BridgeRequest.created_at.desc())
                .limit(1)
                .execution_options(populate_existing=True)
            )
        ).first()
        return None if row is None else (row[0], row[1])
    conversation = await locked(session, conversation_id)
    if conversation is None:
        return None
    request = await session.scalar(
        select(BridgeRequest)
        .where(BridgeRequest.conversation_id == conversation.id)
        .order_by(in_force, BridgeRequest.created_at.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return conversation, request


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
