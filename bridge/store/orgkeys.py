"""Queries of org keys; the caller owns the session and its transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import OrgKey

__all__ = ["of_org"]


async def of_org(session: AsyncSession, org: str) -> OrgKey | None:
    return await session.scalar(select(OrgKey).where(OrgKey.org == org))
