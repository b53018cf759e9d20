"""Queries of break-glass requests; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import BreakglassRequest

__all__ = ["locked", "pending"]


async def locked(session: AsyncSession, breakglass_id: str) -> BreakglassRequest | None:
    """The request, its row locked for the decision (on PostgreSQL; SQLite has one writer)."""
    return await session.get(BreakglassRequest, breakglass_id, with_for_update=True)


async def pending(session: AsyncSession) -> Sequence[BreakglassRequest]:
    """Requests that wait for a decision, oldest first."""
    query = (
        select(BreakglassRequest)
        .where(BreakglassRequest.state == "requested")
        .order_by(BreakglassRequest.created_at)
    )
    return (await session.scalars(query)).all()
