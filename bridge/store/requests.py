"""Queries of bridge requests; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.machine import InviteState, State
from bridge.store.models import BridgeRequest, Invite

__all__ = [
    "conversation_of",
    "due_prompts",
    "first_deadline",
    "in_state",
    "previous_officer",
]


def conversation_of(request_id: str) -> ScalarSelect[str]:
    """The request's conversation as a subquery, for a statement that locks the conversation
    (``conversations.locked_with_bridge``)."""
    return (
        select(BridgeRequest.conversation_id)
        .where(BridgeRequest.id == request_id)
        .correlate(None)
        .scalar_subquery()
    )


async def previous_officer(session: AsyncSession, conversation_id: str) -> str | None:
    """The officer of the conversation's last bridge that had one (for ``same_officer``)."""
    return await session.scalar(
        select(BridgeRequest.officer_account_id)
        .where(
            BridgeRequest.conversation_id == conversation_id,
            BridgeRequest.officer_account_id.is_not(None),
        )
        .order_by(BridgeRequest.created_at.desc())
        .limit(1)
    )


async def in_state(session: AsyncSession, state: State) -> Sequence[BridgeRequest]:
    return (
        await session.scalars(select(BridgeRequest).where(BridgeRequest.state == state.value))
    ).all()


async def due_prompts(
    session: AsyncSession, now: datetime, conversation_id: str | None = None
) -> Sequence[BridgeRequest]:
    """Questions to the victim still unanswered at their deadline (in one conversation),
    read afresh."""
    query = select(BridgeRequest).where(
        BridgeRequest.state == State.PROPOSED.value, BridgeRequest.prompt_expires_at <= now
    )
    if conversation_id is not None:
        query = query.where(BridgeRequest.conversation_id == conversation_id)
    return (await session.scalars(query.execution_options(populate_existing=True))).all()


async def first_deadline(session: AsyncSession) -> datetime | None:
    """The earliest deadline of an unanswered question or a pending invite, in one query."""
    prompt = (
        select(func.min(BridgeRequest.prompt_expires_at))
        .where(BridgeRequest.state == State.PROPOSED.value)
        .scalar_subquery()
    )
    invite = (
        select(func.min(Invite.expires_at))
        .where(Invite.state == InviteState.PENDING.value)
        .scalar_subquery()
    )
    row = (await session.execute(select(prompt, invite))).one()
    deadlines = [d for d in row if d is not None]
    return min(deadlines) if deadlines else None
