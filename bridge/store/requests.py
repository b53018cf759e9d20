"""Queries of bridge requests; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.machine import ACTIVE, State
from bridge.store.models import BridgeRequest

__all__ = [
    "active",
    "due_prompts",
    "first_prompt_deadline",
    "in_state",
    "latest",
    "previous_officer",
]


async def active(session: AsyncSession, conversation_id: str) -> BridgeRequest | None:
    """The conversation's bridge in force, if any (at most one is)."""
    return await session.scalar(
        select(BridgeRequest).where(
            BridgeRequest.conversation_id == conversation_id,
            BridgeRequest.state.in_([s.value for s in ACTIVE]),
        )
    )


async def latest(session: AsyncSession, conversation_id: str) -> BridgeRequest | None:
    return await session.scalar(
        select(BridgeRequest)
        .where(BridgeRequest.conversation_id == conversation_id)
        .order_by(BridgeRequest.created_at.desc())
        .limit(1)
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


async def first_prompt_deadline(session: AsyncSession) -> datetime | None:
    return await session.scalar(
        select(func.min(BridgeRequest.prompt_expires_at)).where(
            BridgeRequest.state == State.PROPOSED.value
        )
    )
