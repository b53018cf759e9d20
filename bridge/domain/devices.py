"""Staff device registration: an Ed25519 + X25519 key pair bound to one account, logged."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bridge import crypto
from bridge.domain.auth import Principal
from bridge.domain.consent.invites import Invites
from bridge.domain.core import Core
from bridge.domain.delivery import Effect, OnDutyOfficer, Outcome
from bridge.domain.roles import Role
from bridge.errors import BadSignature, Conflict
from bridge.log.writer import Log
from bridge.store import devices
from bridge.store.models import Device

__all__ = ["Devices", "new_device_id"]


def new_device_id() -> str:
    return "dev-" + secrets.token_hex(8)


async def _register(
    session: AsyncSession, log: Log, principal: Principal, ed25519: str, x25519: str, now: datetime
) -> str:
    """The device id for these keys; the same keys on the same account give the same id."""
    device = await devices.with_signing_key(session, ed25519)
    if device is not None:
        if device.account_id != principal.account_id or device.x25519 != x25519:
            raise Conflict("these device keys belong to another device")
        return device.id
    device_id = new_device_id()
    session.add(
        Device(
            id=device_id,
            account_id=principal.account_id,
            ed25519=ed25519,
            x25519=x25519,
            created_at=now,
        )
    )
    await log.append(
        session,
        "device.registered",
        at=now,
        actor={"role": principal.role, "user_id": principal.account_id},
        device_id=device_id,
        ed25519=ed25519,
        x25519=x25519,
    )
    return device_id


class Devices:
    def __init__(self, core: Core, invites: Invites) -> None:
        self.db, self.log, self.clock = core.db, core.log, core.clock
        self.invites = invites

    async def register(self, principal: Principal, ed25519: str, x25519: str, sig: str) -> Outcome:
        """``device.register``: the device id, and for an officer, now on duty, the invites that
        wait for it (read in the same transaction). ``sig`` is the Ed25519 signature of the raw
        X25519 key: the device holds both private keys."""
        try:
            crypto.verify_registration(ed25519, x25519, sig)
        except crypto.CryptoError:
            raise BadSignature("sig must sign the X25519 key with the Ed25519 key") from None
        async with self.db.session() as session, session.begin():
            device_id = await _register(session, self.log, principal, ed25519, x25519, self.clock())
            effects: list[Effect] = []
            if principal.role == Role.OFFICER and principal.account_id is not None:
                on_duty = OnDutyOfficer(principal.account_id, principal.region, principal.gender)
                effects = await self.invites.officer_on_duty(session, on_duty)
        return Outcome({"device_id": device_id}, effects)
