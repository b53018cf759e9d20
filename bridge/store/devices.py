"""Queries of devices; the caller owns the session and its transaction."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import Device

__all__ = ["DeviceKeys", "keys_of", "with_signing_key"]


class DeviceKeys(NamedTuple):
    """A device's id, its account (None for a victim's) and public keys."""

    id: str
    account_id: str | None
    ed25519: str
    x25519: str


_COLUMNS = (Device.id, Device.account_id, Device.ed25519, Device.x25519)


async def with_signing_key(session: AsyncSession, ed25519: str) -> DeviceKeys | None:
    """The device that holds this Ed25519 key (keys are unique across devices)."""
    row = (await session.execute(select(*_COLUMNS).where(Device.ed25519 == ed25519))).first()
    return None if row is None else DeviceKeys._make(row)


async def keys_of(session: AsyncSession, device_id: str) -> DeviceKeys:
    row = (await session.execute(select(*_COLUMNS).where(Device.id == device_id))).one()
    return DeviceKeys._make(row)
