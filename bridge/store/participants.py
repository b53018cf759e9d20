"""Queries of participants (who is in a conversation, with which device); the caller owns the
session and its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.roles import Role
from bridge.store.models import Device, Participant

__all__ = [
    "end_all",
    "is_present",
    "latest_officer",
    "of_device",
    "present_officer",
    "present_with_devices",
]


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


async def of_device(session: AsyncSession, conversation_id: str, device_id: str) -> Participant:
    found = await session.scalar(
        select(Participant).where(
            Participant.conversation_id == conversation_id, Participant.device_id == device_id
        )
    )
    if found is None:
        raise LookupError("the device takes no part in this conversation")
    return found


async def is_present(session: AsyncSession, conversation_id: str, device_id: str) -> bool:
    found = await session.scalar(
        select(Participant.id).where(
            Participant.conversation_id == conversation_id,
            Participant.device_id == device_id,
            Participant.ended_at.is_(None),
        )
    )
    return found is not None


async def present_with_devices(
    session: AsyncSession, conversation_id: str
) -> Sequence[tuple[Participant, Device]]:
    """Every participant that has not left or been removed, the victim included, in order."""
    rows = await session.execute(
        select(Participant, Device)
        .join(Device, Device.id == Participant.device_id)
        .where(Participant.conversation_id == conversation_id, Participant.ended_at.is_(None))
        .order_by(Participant.id)
    )
    return [(p, d) for p, d in rows.all()]


async def end_all(session: AsyncSession, conversation_id: str, now: datetime, reason: str) -> None:
    await session.execute(
        update(Participant)
        .where(Participant.conversation_id == conversation_id, Participant.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
