"""Bridge requests: every consent transition, each with its log entry in one transaction.

This is the only code that changes a bridge's state (through :func:`machine.next_state`). Each
public method opens one transaction, changes the request and appends the log entries of
PROTOCOL.md ("Log entries"), and returns the ack and the effects to deliver after the commit.
A refused transition raises before anything is written, so it changes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge import crypto
from bridge.access import Caller, ConversationContext, active_request, load_context
from bridge.consent import log
from bridge.consent.invites import invite_recipients
from bridge.consent.machine import Event, State, next_state
from bridge.consent.texts import ConsentTexts
from bridge.delivery import (
    CloseRoom,
    Effect,
    Emit,
    OnDutyOfficer,
    Outcome,
    Presence,
    account_room,
    care_room,
    counsellor_room,
    investigation_room,
    victim_room,
)
from bridge.errors import BadSignature, Forbidden, NotFound, WrongState
from bridge.i18n import notice
from bridge.participants import participant_view, present_participants, victim_device_view
from bridge.policy import Policy
from bridge.protocol import BridgePropose, ConsentGrant
from bridge.store.db import Database
from bridge.store.models import (
    BridgeRequest,
    Conversation,
    Device,
    Epoch,
    Invite,
    LogEntry,
    Participant,
)

__all__ = ["Bridges", "Outcome", "bridge_summary", "epoch_summary"]

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


def _actor(caller: Caller | None) -> dict[str, object]:
    if caller is None:
        return {"role": "system"}
    if caller.role == "victim":
        return {"role": "victim"}
    return {"role": caller.role, "user_id": caller.principal.account_id}


class Bridges:
    def __init__(
        self,
        db: Database,
        policy: Policy,
        texts: ConsentTexts,
        presence: Presence,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.policy = policy
        self.texts = texts
        self.presence = presence
        self.clock = clock

    # -- helpers -----------------------------------------------------------------------------

    def _move(
        self, request: BridgeRequest, event: Event, now: datetime, reason: str | None
    ) -> None:
        request.state = next_state(State(request.state), event).value
        request.reason = reason
        request.updated_at = now

    async def _epoch(self, session: AsyncSession, request: BridgeRequest) -> Epoch | None:
        return None if request.epoch_id is None else await session.get(Epoch, request.epoch_id)

    async def _state_effects(
        self,
        session: AsyncSession,
        conversation: Conversation,
        request: BridgeRequest,
        key: str,
        values: dict[str, str] | None = None,
    ) -> list[Effect]:
        """``bridge.state`` for victim, counsellor and the epoch's officer, each in its words."""
        epoch = await self._epoch(session, request)
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

    async def _remove_officer(
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
        epoch = await self._epoch(session, request)
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
            await log.append(
                session,
                "officer.left" if event == "left" else "officer.removed",
                at=now,
                conversation_id=request.conversation_id,
                actor=_actor(caller),
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

    # -- the counsellor proposes, the victim answers -------------------------------------------

    def _prompt(self, conversation: Conversation, request: BridgeRequest) -> Emit:
        text = self.texts.get(request.purpose, request.prompt_lang)
        payload = {
            "conversation_id": conversation.id,
            "request_id": request.id,
            "purpose": request.purpose,
            "preferences": request.preferences,
            "text": {
                "version": text.version,
                "lang": text.lang,
                "sha256": text.sha256,
                "body": text.body,
            },
            "expires_at": log.iso(request.prompt_expires_at),
        }
        return Emit("consent.prompt", payload, (victim_room(conversation.id),))

    def pending_prompt(self, ctx: ConversationContext) -> list[Effect]:
        """A victim who (re)joins while a question waits gets it again."""
        if ctx.request is not None and ctx.request.state == State.PROPOSED:
            return [self._prompt(ctx.conversation, ctx.request)]
        return []

    async def propose(self, caller: Caller, proposal: BridgePropose) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, proposal.conversation_id)
            if ctx.conversation.state != "open":
                raise WrongState("the conversation has no counsellor yet")
            if ctx.request is not None:
                raise WrongState(f"a bridge is {ctx.request.state} already")
            request = BridgeRequest(
                id=str(uuid.uuid4()),
                conversation_id=ctx.conversation.id,
                purpose=proposal.purpose,
                preferences=msgspec.to_builtins(proposal.preferences),
                state=State.PROPOSED.value,
                reason=None,
                proposed_by=caller.principal.account_id,
                prompt_lang=ctx.conversation.lang,
                prompt_expires_at=now + timedelta(seconds=self.policy.prompt_expiry_seconds),
                choices=None,
                epoch_id=None,
                officer_account_id=None,
                created_at=now,
                updated_at=now,
            )
            session.add(request)
            text = self.texts.get(request.purpose, request.prompt_lang)
            await log.append(
                session,
                "consent.requested",
                at=now,
                conversation_id=ctx.conversation.id,
                actor=_actor(caller),
                request_id=request.id,
                purpose=request.purpose,
                preferences=request.preferences,
                text={"version": text.version, "lang": text.lang, "sha256": text.sha256},
                policy=self.policy.version,
            )
            effects: list[Effect] = [self._prompt(ctx.conversation, request)]
            effects += await self._state_effects(
                session, ctx.conversation, request, "bridge.proposed"
            )
        return Outcome({"request_id": request.id}, effects)

    async def _request_context(
        self, session: AsyncSession, caller: Caller, request_id: str
    ) -> tuple[ConversationContext, BridgeRequest]:
        request = await session.get(BridgeRequest, request_id)
        if request is None:
            raise NotFound("no such request")
        ctx = await load_context(session, caller, request.conversation_id)
        return ctx, request

    async def grant(self, caller: Caller, grant: ConsentGrant) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx, request = await self._request_context(session, caller, grant.request_id)
            self.texts.check_current(
                request.purpose, grant.text.version, grant.text.lang, grant.text.sha256
            )
            if request.state != State.PROPOSED or now >= request.prompt_expires_at:
                raise WrongState(f"this question is {request.state}, it can no longer be answered")
            signed = crypto.signed_grant(
                request_id=grant.request_id,
                text=msgspec.to_builtins(grant.text),
                choices=msgspec.to_builtins(grant.choices),
                investigation_public=grant.investigation_scope.public,
            )
            victim = await session.get_one(Device, ctx.conversation.victim_device_id)
            try:
                crypto.verify_object(signed, grant.sig, victim.ed25519)
            except crypto.CryptoError:
                raise BadSignature(
                    "the grant is not signed by this conversation's victim"
                ) from None
            self._move(request, Event.GRANT, now, None)
            epoch = Epoch(
                id=str(uuid.uuid4()),
                conversation_id=ctx.conversation.id,
                request_id=request.id,
                public=grant.investigation_scope.public,
                sealed_private=grant.investigation_scope.sealed_private,
                created_at=now,
                ended_at=None,
            )
            invite = Invite(
                id=str(uuid.uuid4()),
                request_id=request.id,
                conversation_id=ctx.conversation.id,
                purpose=request.purpose,
                preferences=request.preferences,
                state="pending",
                expires_at=now + timedelta(seconds=self.policy.invite_expiry_seconds),
                accepted_by=None,
                created_at=now,
            )
            request.epoch_id = epoch.id
            request.choices = signed["choices"]  # type: ignore[assignment]
            session.add_all([epoch, invite])
            index = await log.append(
                session,
                "consent.granted",
                at=now,
                conversation_id=ctx.conversation.id,
                actor={"role": "victim"},
                request_id=request.id,
                epoch_id=epoch.id,
                grant=signed,
                sig=grant.sig,
            )
            await log.append(
                session,
                "invite.created",
                at=now,
                conversation_id=ctx.conversation.id,
                request_id=request.id,
                invite_id=invite.id,
                purpose=invite.purpose,
                preferences=invite.preferences,
                expires_at=log.iso(invite.expires_at),
            )
            recipients = invite_recipients(
                invite.preferences,
                self.presence.officers_on_duty(),
                await self._previous_officer(session, ctx),
            )
            if recipients:
                effects = await self._state_effects(
                    session, ctx.conversation, request, "bridge.granted"
                )
            else:
                # Nobody on duty: the invite waits, and victim and counsellor are told so plainly.
                effects = await self._state_effects(
                    session,
                    ctx.conversation,
                    request,
                    "bridge.waiting_for_officer",
                    {"until": _clock_time(invite.expires_at)},
                )
            effects += [self._invite_emit(invite, account) for account in recipients]
        ack: Ack = {"epoch_id": epoch.id, "receipt": {"index": index, "checkpoint": None}}
        return Outcome(ack, effects)

    async def decline(self, caller: Caller, request_id: str) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx, request = await self._request_context(session, caller, request_id)
            if request.state == State.PROPOSED and now >= request.prompt_expires_at:
                raise WrongState("this question has expired")
            self._move(request, Event.DECLINE, now, None)
            await log.append(
                session,
                "consent.declined",
                at=now,
                conversation_id=ctx.conversation.id,
                actor={"role": "victim"},
                request_id=request.id,
            )
            effects = await self._state_effects(
                session, ctx.conversation, request, "bridge.declined"
            )
        return Outcome({}, effects)

    # -- the victim steers: withdraw, pause, resume --------------------------------------------

    async def _stop(
        self,
        session: AsyncSession,
        ctx: ConversationContext,
        request: BridgeRequest,
        caller: Caller | None,
        now: datetime,
        *,
        event: Event,
        reason: str,
        kind: str,
    ) -> list[Effect]:
        """Move to ``ended`` and remove the officer at once: later officer events get no_consent."""
        self._move(request, event, now, reason)
        await log.append(
            session,
            kind,
            at=now,
            conversation_id=ctx.conversation.id,
            actor=_actor(caller),
            request_id=request.id,
        )
        removed = await self._remove_officer(
            session,
            request,
            now,
            event="left" if event == Event.LEAVE else "removed",
            caller=caller,
        )
        effects = await self._state_effects(
            session, ctx.conversation, request, f"bridge.ended.{reason}"
        )
        # The officer hears "ended" first, then leaves the room: nothing later can reach it.
        return effects + removed + [CloseRoom(investigation_room(ctx.conversation.id))]

    async def withdraw(self, caller: Caller, conversation_id: str) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id)
            if ctx.request is None or ctx.request.state == State.PROPOSED:
                raise WrongState("there is no consent to withdraw")
            effects = await self._stop(
                session,
                ctx,
                ctx.request,
                caller,
                now,
                event=Event.WITHDRAW,
                reason="withdrawn",
                kind="consent.withdrawn",
            )
        return Outcome({}, effects)

    async def pause(self, caller: Caller, conversation_id: str) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id)
            if ctx.request is None:
                raise WrongState("there is no police part to pause")
            self._move(ctx.request, Event.PAUSE, now, caller.role)
            await log.append(
                session,
                "bridge.paused",
                at=now,
                conversation_id=conversation_id,
                actor=_actor(caller),
                request_id=ctx.request.id,
                reason=caller.role,
            )
            effects = await self._state_effects(
                session, ctx.conversation, ctx.request, f"bridge.paused.{caller.role}"
            )
        return Outcome({}, effects)

    async def resume(self, caller: Caller, conversation_id: str) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id)
            request = ctx.request
            if request is None or request.state != State.PAUSED:
                raise WrongState("the police part is not paused")
            if request.reason == "counsellor_away":
                raise WrongState("the police part goes on by itself when the counsellor is back")
            # The victim steers: a pause the victim made is lifted only by the victim.
            if request.reason == "victim" and caller.role != "victim":
                raise Forbidden("only the victim can lift the victim's pause")
            self._move(request, Event.RESUME, now, None)
            await log.append(
                session,
                "bridge.resumed",
                at=now,
                conversation_id=conversation_id,
                actor=_actor(caller),
                request_id=request.id,
            )
            effects = await self._state_effects(
                session, ctx.conversation, request, "bridge.resumed"
            )
            effects += await self._pause_if_counsellor_away(session, ctx, now)
        return Outcome({}, effects)

    async def end(self, caller: Caller, conversation_id: str) -> Outcome:
        """The counsellor ends the police part; the officer leaves it (``bridge.end``)."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id)
            if ctx.request is None:
                raise WrongState("there is no police part to end")
            if caller.role == "officer":
                effects = await self._stop(
                    session,
                    ctx,
                    ctx.request,
                    caller,
                    now,
                    event=Event.LEAVE,
                    reason="officer_left",
                    kind="bridge.ended",
                )
            else:
                effects = await self._stop(
                    session,
                    ctx,
                    ctx.request,
                    caller,
                    now,
                    event=Event.END,
                    reason="counsellor",
                    kind="bridge.ended",
                )
        return Outcome({}, effects)

    async def stop_for_close(
        self, session: AsyncSession, ctx: ConversationContext, caller: Caller, now: datetime
    ) -> list[Effect]:
        """Inside the close transaction: a bridge in force ends with the conversation."""
        if ctx.request is None:
            return []
        return await self._stop(
            session,
            ctx,
            ctx.request,
            caller,
            now,
            event=Event.CLOSE,
            reason="closed",
            kind="bridge.ended",
        )

    # -- the counsellor stays (DESIGN.md principle 6) ------------------------------------------

    async def _pause_if_counsellor_away(
        self, session: AsyncSession, ctx: ConversationContext, now: datetime
    ) -> list[Effect]:
        request = ctx.request
        if request is None or request.state != State.JOINED:
            return []
        if self.presence.counsellor_present(ctx.conversation.id):
            return []
        self._move(request, Event.COUNSELLOR_AWAY, now, "counsellor_away")
        await log.append(
            session,
            "bridge.paused",
            at=now,
            conversation_id=ctx.conversation.id,
            actor={"role": "system"},
            request_id=request.id,
            reason="counsellor_away",
        )
        return await self._state_effects(
            session, ctx.conversation, request, "bridge.paused.counsellor_away"
        )

    async def counsellor_away(self, conversation_id: str) -> list[Effect]:
        """The counsellor's last socket left: a joined bridge pauses until they are back."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                return []
            ctx = ConversationContext(
                conversation, await active_request(session, conversation_id), None
            )
            return await self._pause_if_counsellor_away(session, ctx, now)

    async def counsellor_back(
        self, session: AsyncSession, ctx: ConversationContext, now: datetime
    ) -> list[Effect]:
        """Inside the counsellor's join: lift a ``counsellor_away`` pause."""
        request = ctx.request
        if request is None or request.state != State.PAUSED or request.reason != "counsellor_away":
            return []
        self._move(request, Event.COUNSELLOR_BACK, now, None)
        await log.append(
            session,
            "bridge.resumed",
            at=now,
            conversation_id=ctx.conversation.id,
            actor={"role": "system"},
            request_id=request.id,
            reason="counsellor_back",
        )
        return await self._state_effects(session, ctx.conversation, request, "bridge.resumed")

    async def pause_all_after_restart(self) -> None:
        """At start nobody is connected: every joined bridge waits for its counsellor."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            joined = (
                await session.scalars(
                    select(BridgeRequest).where(BridgeRequest.state == State.JOINED)
                )
            ).all()
            for request in joined:
                conversation = await session.get_one(Conversation, request.conversation_id)
                await self._pause_if_counsellor_away(
                    session, ConversationContext(conversation, request, None), now
                )

    # -- invites: to on-duty officers, no content and no victim data ---------------------------

    @staticmethod
    def _invite_payload(invite: Invite) -> dict[str, object]:
        return {
            "invite_id": invite.id,
            "purpose": invite.purpose,
            "preferences": invite.preferences,
            "expires_at": log.iso(invite.expires_at),
        }

    def _invite_emit(self, invite: Invite, account_id: str) -> Emit:
        return Emit("invite", self._invite_payload(invite), (account_room(account_id),))

    async def _previous_officer(
        self, session: AsyncSession, ctx: ConversationContext
    ) -> str | None:
        return await session.scalar(
            select(BridgeRequest.officer_account_id)
            .where(
                BridgeRequest.conversation_id == ctx.conversation.id,
                BridgeRequest.officer_account_id.is_not(None),
            )
            .order_by(BridgeRequest.created_at.desc())
            .limit(1)
        )

    async def _open_invites_for(self, session: AsyncSession, account_id: str) -> list[Invite]:
        """Pending, unexpired invites this officer is among the recipients of, right now."""
        now = self.clock()
        on_duty = self.presence.officers_on_duty()
        found: list[Invite] = []
        pending = (
            await session.scalars(
                select(Invite)
                .where(Invite.state == "pending", Invite.expires_at > now)
                .order_by(Invite.created_at)
            )
        ).all()
        for invite in pending:
            conversation = await session.get_one(Conversation, invite.conversation_id)
            previous = await self._previous_officer(
                session, ConversationContext(conversation, None, None)
            )
            if account_id in invite_recipients(invite.preferences, on_duty, previous):
                found.append(invite)
        return found

    async def list_invites(self, caller: Caller) -> Ack:
        async with self.db.session() as session:
            invites = await self._open_invites_for(session, caller.principal.account_id or "")
        return {"invites": [self._invite_payload(i) for i in invites]}

    async def officer_on_duty(self, officer: OnDutyOfficer) -> list[Effect]:
        """An officer came on duty: it is shown the invites that wait for it."""
        async with self.db.session() as session:
            invites = await self._open_invites_for(session, officer.account_id)
        return [self._invite_emit(i, officer.account_id) for i in invites]

    async def accept_invite(self, caller: Caller, invite_id: str) -> Outcome:
        now = self.clock()
        account_id = caller.principal.account_id
        assert account_id is not None and caller.device_id is not None
        async with self.db.session() as session, session.begin():
            invite = await session.get(Invite, invite_id)
            if invite is None:
                raise NotFound("no such invite")
            conversation = await session.get_one(Conversation, invite.conversation_id)
            probe = ConversationContext(conversation, None, None)
            recipients = invite_recipients(
                invite.preferences,
                self.presence.officers_on_duty(),
                await self._previous_officer(session, probe),
            )
            if account_id not in recipients:
                raise Forbidden("this invite is not for you")
            request = await session.get_one(BridgeRequest, invite.request_id)
            if (
                invite.state != "pending"
                or now >= invite.expires_at
                or request.state != State.GRANTED
            ):
                raise WrongState(f"this invite is {invite.state}, it can no longer be accepted")
            self._move(request, Event.ACCEPT, now, None)
            request.officer_account_id = account_id
            invite.state = "accepted"
            invite.accepted_by = account_id
            officer = Participant(
                conversation_id=conversation.id,
                device_id=caller.device_id,
                account_id=account_id,
                role="officer",
                epoch_id=request.epoch_id,
                joined_at=now,
            )
            session.add(officer)
            actor = _actor(caller)
            await log.append(
                session,
                "invite.accepted",
                at=now,
                conversation_id=conversation.id,
                actor=actor,
                invite_id=invite.id,
            )
            await log.append(
                session,
                "officer.joined",
                at=now,
                conversation_id=conversation.id,
                actor=actor,
                request_id=request.id,
                epoch_id=request.epoch_id,
            )
            await session.flush()
            epoch = await session.get_one(Epoch, request.epoch_id)
            victim = await session.get_one(Device, conversation.victim_device_id)
            device = await session.get_one(Device, caller.device_id)
            participants = await present_participants(session, conversation.id)
            ctx = ConversationContext(conversation, request, officer)
            effects: list[Effect] = [
                Emit(
                    "participant",
                    {
                        "conversation_id": conversation.id,
                        "event": "joined",
                        "participant": participant_view(officer, device),
                    },
                    (care_room(conversation.id), investigation_room(conversation.id)),
                )
            ]
            effects += await self._state_effects(session, conversation, request, "bridge.joined")
            effects += await self._pause_if_counsellor_away(session, ctx, now)
        ack: Ack = {
            "conversation_id": conversation.id,
            "epoch": epoch_summary(epoch, with_private=True),
            "care_scope": {"public": conversation.care_public},
            "victim_device": victim_device_view(victim),
            "participants": participants,
        }
        return Outcome(ack, effects, (investigation_room(conversation.id),))

    # -- expiry: deadlines live in the database, so they survive a restart ---------------------

    async def next_deadline(self) -> datetime | None:
        async with self.db.session() as session:
            prompt = await session.scalar(
                select(func.min(BridgeRequest.prompt_expires_at)).where(
                    BridgeRequest.state == State.PROPOSED
                )
            )
            invite = await session.scalar(
                select(func.min(Invite.expires_at)).where(Invite.state == "pending")
            )
        deadlines = [d for d in (prompt, invite) if d is not None]
        return min(deadlines) if deadlines else None

    async def expire_due(self) -> list[Effect]:
        """Expire every unanswered question and every invite no officer took in time."""
        now = self.clock()
        effects: list[Effect] = []
        async with self.db.session() as session, session.begin():
            questions = (
                await session.scalars(
                    select(BridgeRequest).where(
                        BridgeRequest.state == State.PROPOSED,
                        BridgeRequest.prompt_expires_at <= now,
                    )
                )
            ).all()
            for request in questions:
                conversation = await session.get_one(Conversation, request.conversation_id)
                self._move(request, Event.EXPIRE, now, "no_answer")
                await log.append(
                    session,
                    "consent.expired",
                    at=now,
                    conversation_id=conversation.id,
                    actor={"role": "system"},
                    request_id=request.id,
                    reason="no_answer",
                )
                effects += await self._state_effects(
                    session, conversation, request, "bridge.expired.no_answer"
                )
            invites = (
                await session.scalars(
                    select(Invite).where(Invite.state == "pending", Invite.expires_at <= now)
                )
            ).all()
            for invite in invites:
                invite.state = "expired"
                request = await session.get_one(BridgeRequest, invite.request_id)
                conversation = await session.get_one(Conversation, request.conversation_id)
                await log.append(
                    session,
                    "invite.expired",
                    at=now,
                    conversation_id=conversation.id,
                    invite_id=invite.id,
                )
                if request.state != State.GRANTED:
                    continue
                self._move(request, Event.EXPIRE, now, "no_officer")
                epoch = await self._epoch(session, request)
                if epoch is not None:
                    epoch.ended_at = now
                await log.append(
                    session,
                    "consent.expired",
                    at=now,
                    conversation_id=conversation.id,
                    actor={"role": "system"},
                    request_id=request.id,
                    reason="no_officer",
                )
                effects += await self._state_effects(
                    session, conversation, request, "bridge.expired.no_officer"
                )
        return effects


def _clock_time(moment: datetime) -> str:
    """A time of day as people in the Netherlands read it (the service's time zone)."""
    try:
        return moment.astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%H:%M")
    except ZoneInfoNotFoundError:
        return moment.strftime("%H:%M UTC")


async def record_policy(db: Database, policy: Policy, now: datetime) -> bool:
    """Log ``policy.changed`` when the bridge starts with a policy it has not logged before."""
    async with db.session() as session, session.begin():
        last = await session.scalar(
            select(LogEntry.entry)
            .where(LogEntry.kind == "policy.changed")
            .order_by(LogEntry.idx.desc())
            .limit(1)
        )
        if last is not None and json.loads(last).get("sha256") == policy.sha256:
            return False
        await log.append(
            session, "policy.changed", at=now, version=policy.version, sha256=policy.sha256
        )
        return True
