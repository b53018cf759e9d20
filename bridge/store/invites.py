"""Queries of invites; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.machine import InviteState
from bridge.store.models import Invite

__all__ = ["due", "first_deadline", "open_at", "pending_of_request"]

_PENDING = InviteState.PENDING.value


async def pending_of_request(session: AsyncSession, request_id: str) -> Sequence[Invite]:
    return (
        await session.scalars(
            select(Invite).where(Invite.request_id == request_id, Invite.state == _PENDING)
        )
    ).all()


async def open_at(session: AsyncSession, now: datetime) -> Sequence[Invite]:
    """Pending invites not yet expired, oldest first."""
    return (
        await session.scalars(
            select(Invite)
            .where(Invite.state == _PENDING, Invite.expires_at > now)
            .order_by(Invite.created_at)
        )
    ).all()


async def due(
    session: AsyncSession, now: datetime, conversation_id: str | None = None
) -> Sequence[Invite]:
    """Pending invites that no officer took before their deadline (in one conversation), read
    afresh."""
    query = select(Invite).where(Invite.state == _PENDING, Invite.expires_at <= now)
    if conversation_id is not None:
        query = query.where(Invite.conversation_id == conversation_id)
    return (await session.scalars(query.execution_options(populate_existing=True))).all()


async def first_deadline(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(Invite.expires_at)).where(Invite.state == _PENDING))
