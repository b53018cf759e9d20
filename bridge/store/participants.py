"""Queries of participants (who is in a conversation, with which device); the caller owns the
session and its transaction."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.roles import Role
from bridge.store.models import Device, Participant

__all__ = [
    "Present",
    "end_all",
    "latest_officer",
    "present",
    "present_officer",
]


class Present(NamedTuple):
    """A participant that has not left or been removed, with its device's public keys."""

    role: str
    account_id: str | None
    device_id: str
    ed25519: str
    x25519: str
    joined_at: datetime


async def present_officer(session: AsyncSession, conversation_id: str) -> Participant | None:
    return await session.scalar(
        select(Participant).where(
            Participant.conversation_id == conversation_id,
            Participant.role == Role.OFFICER.value,
            Participant.ended_at.is_(None),
        )
    )


async def latest_officer(
    session: AsyncSession, conversation_id: str, account_id: str | None
) -> Participant | None:
    """This officer's latest participation in the conversation, ended or not."""
    return await session.scalar(
        select(Participant)
        .where(
            Participant.conversation_id == conversation_id,
            Participant.account_id == account_id,
            Participant.role == Role.OFFICER.value,
        )
        .order_by(Participant.id.desc())
        .limit(1)
    )


async def present(session: AsyncSession, conversation_id: str) -> list[Present]:
    """Every participant that has not left or been removed, the victim included, in the order
    they joined."""
    rows = await session.execute(
        select(
            Participant.role,
            Participant.account_id,
            Device.id,
            Device.ed25519,
            Device.x25519,
            Participant.joined_at,
        )
        .join(Device, Device.id == Participant.device_id)
        .where(Participant.conversation_id == conversation_id, Participant.ended_at.is_(None))
        .order_by(Participant.id)
    )
    return [Present._make(row) for row in rows.all()]


async def end_all(session: AsyncSession, conversation_id: str, now: datetime, reason: str) -> None:
    await session.execute(
        update(Participant)
        .where(Participant.conversation_id == conversation_id, Participant.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
