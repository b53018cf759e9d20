"""Bridge requests: propose, grant, decline, withdraw, pause, resume, end (DESIGN.md, "Consent").

Each public method is one transaction: the move of the state table, its log entries, and the
effects to deliver after the commit (see :mod:`bridge.domain.consent.transitions`).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge import crypto
from bridge.clock import iso
from bridge.domain.access import Caller, ConversationContext, active_request, load_context
from bridge.domain.consent.invites import invite_emit, invite_recipients, previous_officer
from bridge.domain.consent.machine import Event, State
from bridge.domain.consent.transitions import SYSTEM, Ack, Transitions, actor
from bridge.domain.core import Core
from bridge.domain.delivery import (
    CloseRoom,
    Effect,
    Emit,
    Outcome,
    care_room,
    investigation_room,
    victim_room,
)
from bridge.domain.participants import participant_view
from bridge.errors import BadSignature, Forbidden, NotFound, WrongState
from bridge.protocol import BridgePropose, ConsentGrant
from bridge.store.models import (
    BridgeRequest,
    Conversation,
    Device,
    Epoch,
    Invite,
    LogEntry,
    Participant,
)

__all__ = ["Bridges", "record_policy"]


class Bridges(Transitions):
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
            "expires_at": iso(request.prompt_expires_at),
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
            await self.log.append(
                session,
                "consent.requested",
                at=now,
                conversation_id=ctx.conversation.id,
                actor=actor(caller),
                request_id=request.id,
                purpose=request.purpose,
                preferences=request.preferences,
                text={"version": text.version, "lang": text.lang, "sha256": text.sha256},
                policy=self.policy.version,
            )
            effects: list[Effect] = [self._prompt(ctx.conversation, request)]
            effects += await self.state_effects(
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
            self.move(request, Event.GRANT, now, None)
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
            index = await self.log.append(
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
            await self.log.append(
                session,
                "invite.created",
                at=now,
                conversation_id=ctx.conversation.id,
                request_id=request.id,
                invite_id=invite.id,
                purpose=invite.purpose,
                preferences=invite.preferences,
                expires_at=iso(invite.expires_at),
            )
            # The consent receipt: a checkpoint that includes the grant, so that the victim (or
            # their lawyer) can later have the grant proven against the log.
            receipt = await self.log.checkpoint(session, now)
            recipients = invite_recipients(
                invite.preferences,
                self.presence.officers_on_duty(),
                await previous_officer(session, ctx.conversation.id),
            )
            if recipients:
                effects = await self.state_effects(
                    session, ctx.conversation, request, "bridge.granted"
                )
            else:
                # Nobody on duty: the invite waits, and victim and counsellor are told so plainly.
                effects = await self.state_effects(
                    session,
                    ctx.conversation,
                    request,
                    "bridge.waiting_for_officer",
                    {"until": _clock_time(invite.expires_at)},
                )
            effects += [invite_emit(invite, account) for account in recipients]
        ack: Ack = {"epoch_id": epoch.id, "receipt": {"index": index, "checkpoint": receipt}}
        return Outcome(ack, effects)

    async def decline(self, caller: Caller, request_id: str) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx, request = await self._request_context(session, caller, request_id)
            if request.state == State.PROPOSED and now >= request.prompt_expires_at:
                raise WrongState("this question has expired")
            effects = await self.transition(
                session,
                ctx.conversation,
                request,
                Event.DECLINE,
                now=now,
                kind="consent.declined",
                actor={"role": "victim"},
                notice_key="bridge.declined",
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
        self.move(request, event, now, reason)
        await self.log.append(
            session,
            kind,
            at=now,
            conversation_id=ctx.conversation.id,
            actor=actor(caller),
            request_id=request.id,
        )
        removed = await self.remove_officer(
            session,
            request,
            now,
            event="left" if event == Event.LEAVE else "removed",
            caller=caller,
        )
        effects = await self.state_effects(
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
            effects = await self.transition(
                session,
                ctx.conversation,
                ctx.request,
                Event.PAUSE,
                now=now,
                kind="bridge.paused",
                actor=actor(caller),
                reason=caller.role,
                notice_key=f"bridge.paused.{caller.role}",
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
            # The victim steers: a pause the victim made, or that leaving made, is lifted only by
            # the victim (a ``victim_away`` pause also by the victim's return, see victim_back).
            if request.reason in ("victim", "victim_away") and caller.role != "victim":
                raise Forbidden("only the victim can lift the victim's pause")
            effects = await self.transition(
                session,
                ctx.conversation,
                request,
                Event.RESUME,
                now=now,
                kind="bridge.resumed",
                actor=actor(caller),
                notice_key="bridge.resumed",
            )
            effects += await self.pause_if_counsellor_away(session, ctx, now)
        return Outcome({}, effects)

    async def end(self, caller: Caller, conversation_id: str) -> Outcome:
        """The counsellor ends the police part; the officer leaves it (``bridge.end``)."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id)
            if ctx.request is None:
                raise WrongState("there is no police part to end")
            # The officer's bridge.end is leaving; the counsellor's ends the police part.
            event, reason = (
                (Event.LEAVE, "officer_left")
                if caller.role == "officer"
                else (Event.END, "counsellor")
            )
            effects = await self._stop(
                session,
                ctx,
                ctx.request,
                caller,
                now,
                event=event,
                reason=reason,
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
            return await self.pause_if_counsellor_away(session, ctx, now)

    async def victim_away(self, conversation_id: str) -> list[Effect]:
        """The victim's last socket left (a quick exit, or a lost connection): the counsellor
        and officer are told, and a joined police part pauses until the victim is back
        (:meth:`victim_back`) or resumes it. A pending consent question stays unanswered: only
        the victim's own tap answers it."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None or conversation.state == "closed":
                return []
            left: list[Effect] = [await _victim_presence(session, conversation, "left")]
            request = await active_request(session, conversation_id)
            if request is None or request.state != State.JOINED:
                return left
            return left + await self.transition(
                session,
                conversation,
                request,
                Event.PAUSE,
                now=now,
                kind="bridge.paused",
                actor=SYSTEM,
                reason="victim_away",
                notice_key="bridge.paused.victim_away",
            )

    async def victim_back(
        self, session: AsyncSession, ctx: ConversationContext, now: datetime
    ) -> list[Effect]:
        """Inside the victim's join: lift a ``victim_away`` pause.

        Only the page that holds the victim's token can join, so this is the same victim coming
        back; a dropped phone connection should not cost her the officer. A pause she made
        herself (reason ``victim``) stays until she resumes it. If the counsellor is away now,
        the bridge goes straight to ``counsellor_away``, as after ``bridge.resume``.
        """
        back: list[Effect] = []
        if not self.presence.victim_present(ctx.conversation.id):
            back.append(await _victim_presence(session, ctx.conversation, "joined"))
        request = ctx.request
        if request is None or request.state != State.PAUSED or request.reason != "victim_away":
            return back
        effects = back + await self.transition(
            session,
            ctx.conversation,
            request,
            Event.RESUME,
            now=now,
            kind="bridge.resumed",
            actor=SYSTEM,
            reason="victim_back",
            notice_key="bridge.resumed.victim_back",
        )
        return effects + await self.pause_if_counsellor_away(session, ctx, now)

    async def counsellor_back(
        self, session: AsyncSession, ctx: ConversationContext, now: datetime
    ) -> list[Effect]:
        """Inside the counsellor's join: lift a ``counsellor_away`` pause."""
        request = ctx.request
        if request is None or request.state != State.PAUSED or request.reason != "counsellor_away":
            return []
        return await self.transition(
            session,
            ctx.conversation,
            request,
            Event.COUNSELLOR_BACK,
            now=now,
            kind="bridge.resumed",
            actor=SYSTEM,
            notice_key="bridge.resumed",
        )

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
                await self.pause_if_counsellor_away(
                    session, ConversationContext(conversation, request, None), now
                )


async def _victim_presence(session: AsyncSession, conversation: Conversation, event: str) -> Emit:
    """``participant`` ``left`` or ``joined`` for the victim, to counsellor and officer."""
    victim = await session.get_one(Device, conversation.victim_device_id)
    participant = await session.scalar(
        select(Participant).where(
            Participant.conversation_id == conversation.id,
            Participant.device_id == victim.id,
        )
    )
    assert participant is not None
    return Emit(
        "participant",
        {
            "conversation_id": conversation.id,
            "event": event,
            "participant": participant_view(participant, victim),
        },
        (care_room(conversation.id), investigation_room(conversation.id)),
    )


def _clock_time(moment: datetime) -> str:
    """A time of day as people in the Netherlands read it (the service's time zone)."""
    try:
        return moment.astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%H:%M")
    except ZoneInfoNotFoundError:
        return moment.strftime("%H:%M UTC")


async def record_policy(core: Core) -> bool:
    """Log ``policy.changed`` when the bridge starts with a policy it has not logged before."""
    policy = core.policy
    async with core.db.session() as session, session.begin():
        last = await session.scalar(
            select(LogEntry.entry)
            .where(LogEntry.kind == "policy.changed")
            .order_by(LogEntry.idx.desc())
            .limit(1)
        )
        if last is not None and json.loads(last).get("sha256") == policy.sha256:
            return False
        await core.log.append(
            session, "policy.changed", at=core.clock(), version=policy.version, sha256=policy.sha256
        )
        return True
