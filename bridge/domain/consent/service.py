"""What every consent service shares (bridges, invites, expiry): a request's move with the
``bridge.state`` it makes, the removal of the officer, the pause while the counsellor is away.

State changes go through :func:`bridge.domain.transitions.transition` only. Each public method
of the services opens one transaction, moves the request and appends its log entries, and
returns the ack and the effects to deliver after the commit. A refused transition raises before
anything is written, so it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.access import Caller, ConversationContext
from bridge.domain.core import Core
from bridge.domain.delivery import (
    Effect,
    Emit,
    care_room,
    counsellor_room,
    investigation_room,
    victim_room,
)
from bridge.domain.machine import Event, InviteEvent, State
from bridge.domain.participants import participant_view
from bridge.domain.roles import Role
from bridge.domain.transitions import SYSTEM, transition
from bridge.i18n import notice
from bridge.store import devices, invites, participants
from bridge.store.models import BridgeRequest, Conversation, Epoch
from bridge.store.participants import Present

__all__ = ["Ack", "ConsentService", "bridge_summary", "epoch_summary"]

Ack = dict[str, object]


def epoch_summary(epoch: Epoch, *, with_private: bool = False) -> dict[str, object]:
    summary: dict[str, object] = {"epoch_id": epoch.id, "public": epoch.public}
    if with_private:
        summary["sealed_private"] = epoch.sealed_private
        summary["key_id"] = epoch.key_id
    return summary


def bridge_summary(request: BridgeRequest, epoch: dict[str, object] | None) -> dict[str, object]:
    summary: dict[str, object] = {
        "request_id": request.id,
        "purpose": request.purpose,
        "state": request.state,
    }
    if request.reason is not None:
        summary["reason"] = request.reason
    if epoch is not None:
        summary["epoch"] = {"epoch_id": epoch["epoch_id"], "public": epoch["public"]}
    return summary


class ConsentService:
    """What every consent service needs: the database, the log, the policy, texts, presence."""

    def __init__(self, core: Core) -> None:
        self.db = core.db
        self.log = core.log
        self.policies = core.policies
        self.texts = core.texts
        self.presence = core.presence
        self.clock = core.clock

    async def transition(
        self,
        session: AsyncSession,
        conversation: Conversation,
        request: BridgeRequest,
        event: Event,
        *,
        now: datetime,
        actor: Mapping[str, object],
        reason: str | None = None,
        notice_key: str,
        **fields: object,
    ) -> list[Effect]:
        """One move of the request with its log entry, and the ``bridge.state`` it makes."""
        await transition(
            session, self.log, request, event, now=now, actor=actor, reason=reason, **fields
        )
        return await self.state_effects(session, conversation, request, notice_key)

    async def epoch(self, session: AsyncSession, request: BridgeRequest) -> Epoch | None:
        return None if request.epoch_id is None else await session.get(Epoch, request.epoch_id)

    async def state_effects(
        self,
        session: AsyncSession,
        conversation: Conversation,
        request: BridgeRequest,
        key: str,
        values: dict[str, str] | None = None,
    ) -> list[Effect]:
        """``bridge.state`` for victim, counsellor and the epoch's officer, each in its words."""
        epoch = await self.epoch(session, request)
        base = {
            "conversation_id": conversation.id,
            **bridge_summary(request, None if epoch is None else epoch_summary(epoch)),
        }
        staff = {**base, "notice": notice(key, staff=True, values=values)}
        rooms = [counsellor_room(conversation.id)]
        if request.officer_account_id is not None:
            rooms.append(investigation_room(conversation.id))
        return [
            Emit(
                "bridge.state",
                {**base, "notice": notice(key, conversation.lang, values=values)},
                (victim_room(conversation.id),),
            ),
            *(Emit("bridge.state", staff, (room,)) for room in rooms),
        ]

    async def remove_officer(
        self,
        session: AsyncSession,
        request: BridgeRequest,
        now: datetime,
        *,
        event: str,
        caller: Caller | None,
    ) -> list[Effect]:
        """End the officer's participation, its epoch and open invites (DESIGN.md principle 7)."""
        for invite in await invites.pending_of_request(session, request.id):
            await transition(session, self.log, invite, InviteEvent.CANCEL, now=now)
        epoch = await self.epoch(session, request)
        if epoch is not None and epoch.ended_at is None:
            epoch.ended_at = now
        officer = await participants.present_officer(session, request.conversation_id)
        if officer is None:
            return []
        officer.ended_at = now
        officer.end_reason = event
        device = await devices.keys_of(session, officer.device_id)
        shown = Present(
            officer.role,
            officer.account_id,
            device.id,
            device.ed25519,
            device.x25519,
            officer.joined_at,
        )
        await self.log.append(
            session,
            "officer.left" if event == "left" else "officer.removed",
            at=now,
            conversation_id=request.conversation_id,
            actor=SYSTEM if caller is None else caller.actor,
            request_id=request.id,
            officer={"role": Role.OFFICER.value, "user_id": officer.account_id},
        )
        return [
            Emit(
                "participant",
                {
                    "conversation_id": request.conversation_id,
                    "event": event,
                    "participant": participant_view(shown),
                },
                (care_room(request.conversation_id),),
            )
        ]

    async def pause_if_counsellor_away(
        self, session: AsyncSession, ctx: ConversationContext, now: datetime
    ) -> list[Effect]:
        request = ctx.request
        if request is None or request.state != State.JOINED:
            return []
        if await self.presence.counsellor_present(ctx.conversation.id):
            return []
        return await self.transition(
            session,
            ctx.conversation,
            request,
            Event.COUNSELLOR_AWAY,
            now=now,
            actor=SYSTEM,
            reason="counsellor_away",
            notice_key="bridge.paused.counsellor_away",
        )
