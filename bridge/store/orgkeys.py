"""Queries of org keys; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import OrgKey

__all__ = ["newest", "versions"]


async def newest(session: AsyncSession, org: str) -> OrgKey | None:
    """The org's key to seal to: its newest version."""
    return await session.scalar(
        select(OrgKey).where(OrgKey.org == org).order_by(OrgKey.version.desc()).limit(1)
    )


async def versions(session: AsyncSession, org: str) -> Sequence[OrgKey]:
    """Every version of the org's key, oldest first."""
    return (
        await session.scalars(select(OrgKey).where(OrgKey.org == org).order_by(OrgKey.version))
    ).all()
