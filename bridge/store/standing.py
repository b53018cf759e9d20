"""What a message in a conversation is checked against, read in one place; the caller owns the
session and its transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.machine import ACTIVE
from bridge.domain.roles import Role
from bridge.store.models import BridgeRequest, Conversation, Participant

__all__ = ["Standing", "read"]

_ACTIVE = [state.value for state in ACTIVE]


@dataclass(frozen=True, slots=True)
class Standing:
    """A conversation as of ``version`` (migration 0005): its state and counsellor, the bridge in
    force ("none" without one), and each officer's latest participation as ``(epoch_id,
    ended)``."""

    conversation_id: str
    version: int
    state: str
    counsellor_account_id: str | None
    bridge_state: str
    epoch_id: str | None
    choices: Mapping[str, object]
    officers: Mapping[str, tuple[str | None, bool]]


async def read(session: AsyncSession, conversation_id: str, *, lock: bool) -> Standing | None:
    """The conversation's standing now (``lock``: its row locked until the transaction ends, as
    ``conversations.locked`` takes it), or None if there is no such conversation."""
    query = select(
        Conversation.version, Conversation.state, Conversation.counsellor_account_id
    ).where(Conversation.id == conversation_id)
    found = (await session.execute(query.with_for_update() if lock else query)).first()
    if found is None:
        return None
    version, state, counsellor = found
    request = (
        await session.execute(
            select(BridgeRequest.state, BridgeRequest.epoch_id, BridgeRequest.choices).where(
                BridgeRequest.conversation_id == conversation_id,
                BridgeRequest.state.in_(_ACTIVE),
            )
        )
    ).first()
    officers: dict[str, tuple[str | None, bool]] = {}
    rows = await session.execute(
        select(Participant.account_id, Participant.epoch_id, Participant.ended_at)
        .where(
            Participant.conversation_id == conversation_id,
            Participant.role == Role.OFFICER.value,
        )
        .order_by(Participant.id)
    )
    for account_id, epoch_id, ended_at in rows.all():
        if account_id is not None:
            officers[account_id] = (epoch_id, ended_at is not None)  # the latest wins
    return Standing(
        conversation_id,
        version,
        state,
        counsellor,
        "none" if request is None else request.state,
        None if request is None else request.epoch_id,
        (None if request is None else request.choices) or {},
        officers,
    )
