"""Queries of invites; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ScalarSelect, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.machine import InviteState
from bridge.store.models import BridgeRequest, Epoch, Invite

__all__ = [
    "OpenInvite",
    "conversation_of",
    "due",
    "open_at",
    "pending_of_request",
    "with_request",
]

_PENDING = InviteState.PENDING.value


class OpenInvite(NamedTuple):
    """A pending invite as officers are shown it, with the officer of its conversation's last
    bridge that had one (what ``same_officer`` asks for)."""

    id: str
    purpose: str
    preferences: dict[str, object]
    expires_at: datetime
    previous_officer: str | None


def conversation_of(invite_id: str) -> ScalarSelect[str]:
    """The invite's conversation as a subquery, for a statement that locks the conversation."""
    return (
        select(Invite.conversation_id)
        .where(Invite.id == invite_id)
        .correlate(None)
        .scalar_subquery()
    )


async def pending_of_request(session: AsyncSession, request_id: str) -> Sequence[Invite]:
    return (
        await session.scalars(
            select(Invite).where(Invite.request_id == request_id, Invite.state == _PENDING)
        )
    ).all()


async def open_at(session: AsyncSession, now: datetime) -> list[OpenInvite]:
    """Pending invites not yet expired, oldest first, each with its previous officer: one query
    however many there are."""
    previous = (
        select(BridgeRequest.officer_account_id)
        .where(
            BridgeRequest.conversation_id == Invite.conversation_id,
            BridgeRequest.officer_account_id.is_not(None),
        )
        .order_by(BridgeRequest.created_at.desc())
        .limit(1)
        .correlate(Invite)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Invite.id, Invite.purpose, Invite.preferences, Invite.expires_at, previous)
        .where(Invite.state == _PENDING, Invite.expires_at > now)
        .order_by(Invite.created_at)
    )
    return [OpenInvite._make(row) for row in rows.all()]


async def with_request(
    session: AsyncSession, invite_id: str
) -> tuple[Invite, BridgeRequest, Epoch] | None:
    """The invite, its bridge request and the epoch the grant made with it (every invite has
    one), read afresh in one query once the caller holds the conversation's lock."""
    row = (
        await session.execute(
            select(Invite, BridgeRequest, Epoch)
            .join(BridgeRequest, BridgeRequest.id == Invite.request_id)
            .join(Epoch, Epoch.id == BridgeRequest.epoch_id)
            .where(Invite.id == invite_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


async def due(
    session: AsyncSession, now: datetime, conversation_id: str | None = None
) -> Sequence[Invite]:
    """Pending invites that no officer took before their deadline (in one conversation), read
    afresh."""
    query = select(Invite).where(Invite.state == _PENDING, Invite.expires_at <= now)
    if conversation_id is not None:
        query = query.where(Invite.conversation_id == conversation_id)
    return (await session.scalars(query.execution_options(populate_existing=True))).all()
