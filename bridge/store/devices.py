"""Queries of devices; the caller owns the session and its transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import Device

__all__ = ["with_signing_key"]


async def with_signing_key(session: AsyncSession, ed25519: str) -> Device | None:
    """The device that holds this Ed25519 key (keys are unique across devices)."""
    return await session.scalar(select(Device).where(Device.ed25519 == ed25519))
