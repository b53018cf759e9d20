"""The shared machinery of consent transitions: apply a table move, tell everyone, remove the
officer.

Only this package changes a bridge's state, and only through :func:`machine.next_state`
(via :meth:`Transitions.move`). Each public method of its subclasses (bridges, invites, expiry)
opens one transaction, changes the request and appends the log entries of PROTOCOL.md ("Log
entries"), and returns the ack and the effects to deliver after the commit. A refused transition
raises before anything is written, so it changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.access import Caller, ConversationContext
from bridge.domain.consent.machine import Event, State, next_state
from bridge.domain.core import Core
from bridge.domain.delivery import (
    Effect,
    Emit,
    care_room,
    counsellor_room,
    investigation_room,
    victim_room,
)
from bridge.domain.participants import participant_view
from bridge.i18n import notice
from bridge.store.models import (
    BridgeRequest,
    Conversation,
    Device,
    Epoch,
    Invite,
    Participant,
)

__all__ = ["SYSTEM", "Ack", "Transitions", "actor", "bridge_summary", "epoch_summary"]

Ack = dict[str, object]


def epoch_summary(epoch: Epoch, *, with_private: bool = False) -> dict[str, object]:
    summary: dict[str, object] = {"epoch_id": epoch.id, "public": epoch.public}
    if with_private:
        summary["sealed_private"] = epoch.sealed_private
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


SYSTEM: Mapping[str, object] = {"role": "system"}


def actor(caller: Caller | None) -> dict[str, object]:
    if caller is None:
        return {"role": "system"}
    if caller.role == "victim":
        return {"role": "victim"}
    return {"role": caller.role, "user_id": caller.principal.account_id}


class Transitions:
    """What every consent transition needs: the database, the policy, the texts, presence."""

    def __init__(self, core: Core) -> None:
        self.db = core.db
        self.log = core.log
        self.policy = core.policy
        self.texts = core.texts
        self.presence = core.presence
        self.clock = core.clock

    # -- helpers -----------------------------------------------------------------------------

    def move(self, request: BridgeRequest, event: Event, now: datetime, reason: str | None) -> None:
        request.state = next_state(State(request.state), event).value
        request.reason = reason
        request.updated_at = now

    async def transition(
        self,
        session: AsyncSession,
        conversation: Conversation,
        request: BridgeRequest,
        event: Event,
        *,
        now: datetime,
        kind: str,
        actor: Mapping[str, object],
        reason: str | None = None,
        notice_key: str,
        **fields: object,
    ) -> list[Effect]:
        """One move of the table with its log entry, and the ``bridge.state`` it makes."""
        self.move(request, event, now, reason)
        if reason is not None:
            fields["reason"] = reason
        await self.log.append(
            session,
            kind,
            at=now,
            conversation_id=conversation.id,
            actor=actor,
            request_id=request.id,
            **fields,
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
        effects: list[Effect] = [
            Emit(
                "bridge.state",
                {**base, "notice": notice(key, conversation.lang, values=values)},
                (victim_room(conversation.id),),
            ),
            Emit(
                "bridge.state",
                {**base, "notice": notice(key, staff=True, values=values)},
                (counsellor_room(conversation.id),),
            ),
        ]
        if request.officer_account_id is not None:
            effects.append(
                Emit(
                    "bridge.state",
                    {**base, "notice": notice(key, staff=True, values=values)},
                    (investigation_room(conversation.id),),
                )
            )
        return effects

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
        effects: list[Effect] = []
        await session.execute(
            update(Invite)
            .where(Invite.request_id == request.id, Invite.state == "pending")
            .values(state="cancelled")
        )
        epoch = await self.epoch(session, request)
        if epoch is not None and epoch.ended_at is None:
            epoch.ended_at = now
        officer = await session.scalar(
            select(Participant).where(
                Participant.conversation_id == request.conversation_id,
                Participant.role == "officer",
                Participant.ended_at.is_(None),
            )
        )
        if officer is not None:
            officer.ended_at = now
            officer.end_reason = event
            device = await session.get_one(Device, officer.device_id)
            await self.log.append(
                session,
                "officer.left" if event == "left" else "officer.removed",
                at=now,
                conversation_id=request.conversation_id,
                actor=actor(caller),
                request_id=request.id,
                officer={"role": "officer", "user_id": officer.account_id},
            )
            effects.append(
                Emit(
                    "participant",
                    {
                        "conversation_id": request.conversation_id,
                        "event": event,
                        "participant": participant_view(officer, device),
                    },
                    (care_room(request.conversation_id),),
                )
            )
        return effects

    async def pause_if_counsellor_away(
        self, session: AsyncSession, ctx: ConversationContext, now: datetime
    ) -> list[Effect]:
        request = ctx.request
        if request is None or request.state != State.JOINED:
            return []
        if self.presence.counsellor_present(ctx.conversation.id):
            return []
        return await self.transition(
            session,
            ctx.conversation,
            request,
            Event.COUNSELLOR_AWAY,
            now=now,
            kind="bridge.paused",
            actor=SYSTEM,
            reason="counsellor_away",
            notice_key="bridge.paused.counsellor_away",
        )
