"""Queries of the policy-signing keys and the policies put in force; the caller owns the session
and its transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import PolicyKey, PolicyVersion

__all__ = ["in_force", "key", "keys", "newest_serial"]


async def keys(session: AsyncSession, *, with_revoked: bool) -> Sequence[PolicyKey]:
    """The registered policy-signing keys (those not revoked, unless ``with_revoked``)."""
    query = select(PolicyKey).order_by(PolicyKey.org, PolicyKey.registered_at)
    if not with_revoked:
        query = query.where(PolicyKey.revoked_at.is_(None))
    return (await session.scalars(query)).all()


async def key(session: AsyncSession, vkey: str) -> PolicyKey | None:
    return await session.get(PolicyKey, vkey)


async def in_force(session: AsyncSession) -> PolicyVersion | None:
    """The policy with the highest serial, or None before the first is applied."""
    return await session.scalar(
        select(PolicyVersion).order_by(PolicyVersion.serial.desc()).limit(1)
    )


async def newest_serial(session: AsyncSession) -> int | None:
    """The serial of the policy in force: what a node compares with its own, cheaply."""
    return await session.scalar(select(func.max(PolicyVersion.serial)))
