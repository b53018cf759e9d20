"""Bridge requests: propose, grant, decline, withdraw, pause, resume, end (DESIGN.md, "Consent").

Each public method is one transaction: the move of the state table, its log entries, and the
effects to deliver after the commit (see :mod:`bridge.domain.consent.service`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from bridge import crypto
from bridge.clock import iso
from bridge.domain.access import Caller, ConversationContext, checked_context, load_context
from bridge.domain.consent.absences import Absences
from bridge.domain.consent.invites import invite_emit, invite_recipients, previous_officer
from bridge.domain.consent.service import Ack
from bridge.domain.delivery import CloseRoom, Effect, Emit, Outcome, investigation_room, victim_room
from bridge.domain.machine import ConversationState, Event, State
from bridge.domain.orgkeys import sealed_to
from bridge.domain.roles import Role
from bridge.domain.transitions import start, transition
from bridge.errors import BadSignature, Forbidden, NotFound, WrongState
from bridge.protocol import BridgePropose, ConsentGrant
from bridge.store import conversations, devices, requests
from bridge.store.models import BridgeRequest, Conversation, Epoch, Invite

__all__ = ["Bridges"]


class Bridges(Absences):
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
        now, policy = self.clock(), self.policies.current
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, proposal.conversation_id)
            if ctx.conversation.state != ConversationState.OPEN:
                raise WrongState("the conversation has no counsellor yet")
            if ctx.request is not None:
                raise WrongState(f"a bridge is {ctx.request.state} already")
            request = BridgeRequest(
                id=str(uuid.uuid4()),
                conversation_id=ctx.conversation.id,
                purpose=proposal.purpose,
                preferences=msgspec.to_builtins(proposal.preferences),
                reason=None,
                proposed_by=caller.principal.account_id,
                prompt_lang=ctx.conversation.lang,
                prompt_expires_at=now + timedelta(seconds=policy.prompt_expiry_seconds),
                choices=None,
                epoch_id=None,
                officer_account_id=None,
                created_at=now,
                updated_at=now,
            )
            text = self.texts.get(request.purpose, request.prompt_lang)
            if not policy.approves_text(text.purpose, text.lang, text.version, text.sha256):
                raise Forbidden(
                    f"the werkafspraken in force approve no consent text for {text.purpose} "
                    f"in {text.lang}"
                )
            await start(
                session,
                self.log,
                request,
                now=now,
                actor=caller.actor,
                purpose=request.purpose,
                preferences=request.preferences,
                text={"version": text.version, "lang": text.lang, "sha256": text.sha256},
                policy=policy.version,
            )
            effects: list[Effect] = [self._prompt(ctx.conversation, request)]
            effects += await self.state_effects(
                session, ctx.conversation, request, "bridge.proposed"
            )
        return Outcome({"request_id": request.id}, effects)

    async def _request_context(
        self, session: AsyncSession, caller: Caller, request_id: str
    ) -> tuple[ConversationContext, BridgeRequest]:
        """The request's conversation as ``caller`` may act on it, and the request, both read
        under the conversation's lock (the request in the same statement when it is the one in
        force)."""
        found = await conversations.locked_with_bridge(
            session, requests.conversation_of(request_id)
        )
        if found is None:
            raise NotFound("no such request")
        ctx = await checked_context(session, caller, *found)
        if ctx.last is not None and ctx.last.id == request_id:
            return ctx, ctx.last
        # An older request, answered already: read for what the refusal says of it.
        return ctx, await session.get_one(BridgeRequest, request_id)

    async def grant(self, caller: Caller, grant: ConsentGrant) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx, request = await self._request_context(session, caller, grant.request_id)
            text = self.texts.check_current(
                request.purpose, grant.text.version, grant.text.lang, grant.text.sha256
            )
            if not self.policies.current.approves_text(
                text.purpose, text.lang, text.version, text.sha256
            ):
                raise Forbidden("the werkafspraken in force no longer approve this consent text")
            scope = grant.investigation_scope
            key_id = await sealed_to(session, "avim", scope.key_id, "investigation_scope")
            if request.state != State.PROPOSED or now >= request.prompt_expires_at:
                raise WrongState(f"this question is {request.state}, it can no longer be answered")
            signed = crypto.signed_grant(
                request_id=grant.request_id,
                text=msgspec.to_builtins(grant.text),
                choices=msgspec.to_builtins(grant.choices),
                investigation_public=grant.investigation_scope.public,
            )
            victim = await devices.keys_of(session, ctx.conversation.victim_device_id)
            try:
                crypto.verify_object(signed, grant.sig, victim.ed25519)
            except crypto.CryptoError:
                raise BadSignature(
                    "the grant is not signed by this conversation's victim"
                ) from None
            epoch = Epoch(
                id=str(uuid.uuid4()),
                conversation_id=ctx.conversation.id,
                request_id=request.id,
                public=scope.public,
                sealed_private=scope.sealed_private,
                key_id=key_id,
                created_at=now,
                ended_at=None,
            )
            invite = Invite(
                id=str(uuid.uuid4()),
                request_id=request.id,
                conversation_id=ctx.conversation.id,
                purpose=request.purpose,
                preferences=request.preferences,
                expires_at=now + timedelta(seconds=self.policies.current.invite_expiry_seconds),
                accepted_by=None,
                created_at=now,
            )
            request.epoch_id = epoch.id
            request.choices = signed["choices"]  # type: ignore[assignment]
            session.add(epoch)
            index = await transition(
                session,
                self.log,
                request,
                Event.GRANT,
                now=now,
                actor=caller.actor,
                epoch_id=epoch.id,
                grant=signed,
                sig=grant.sig,
            )
            await start(
                session,
                self.log,
                invite,
                now=now,
                request_id=request.id,
                purpose=invite.purpose,
                preferences=invite.preferences,
                expires_at=iso(invite.expires_at),
            )
            # The consent receipt: a checkpoint that includes the grant, so that the victim (or
            # their lawyer) can later have the grant proven against the log.
            receipt = await self.log.checkpoint(session, now)
            recipients = invite_recipients(
                invite.preferences,
                await self.presence.officers_on_duty(),
                await previous_officer(session, ctx.conversation.id, invite.preferences),
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
        assert index is not None  # a grant is always logged (bridge.domain.machine)
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
                actor=caller.actor,
                notice_key="bridge.declined",
            )
        return Outcome({}, effects)

    # -- the victim steers: withdraw, pause, resume --------------------------------------------

    async def _stop(
        self,
        session: AsyncSession,
        ctx: ConversationContext,
        request: BridgeRequest,
        caller: Caller,
        now: datetime,
        *,
        event: Event,
        reason: str,
    ) -> list[Effect]:
        """Move to ``ended`` and remove the officer at once: later officer events get no_consent."""
        await transition(
            session, self.log, request, event, now=now, actor=caller.actor, reason=reason
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
            )
        return Outcome({}, effects)

    async def _in_force(
        self, session: AsyncSession, caller: Caller, conversation_id: str, what: str
    ) -> tuple[ConversationContext, BridgeRequest]:
        """The caller's conversation and its bridge in force, or ``wrong_state`` without one."""
        ctx = await load_context(session, caller, conversation_id)
        if ctx.request is None:
            raise WrongState(f"there is no police part {what}")
        return ctx, ctx.request

    async def pause(self, caller: Caller, conversation_id: str) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx, request = await self._in_force(session, caller, conversation_id, "to pause")
            effects = await self.transition(
                session,
                ctx.conversation,
                request,
                Event.PAUSE,
                now=now,
                actor=caller.actor,
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
            if request.reason in ("victim", "victim_away") and caller.role != Role.VICTIM:
                raise Forbidden("only the victim can lift the victim's pause")
            effects = await self.transition(
                session,
                ctx.conversation,
                request,
                Event.RESUME,
                now=now,
                actor=caller.actor,
                notice_key="bridge.resumed",
            )
            effects += await self.pause_if_counsellor_away(session, ctx, now)
        return Outcome({}, effects)

    async def end(self, caller: Caller, conversation_id: str) -> Outcome:
        """The counsellor ends the police part; the officer leaves it (``bridge.end``)."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx, request = await self._in_force(session, caller, conversation_id, "to end")
            # The officer's bridge.end is leaving; the counsellor's ends the police part.
            event, reason = (
                (Event.LEAVE, "officer_left")
                if caller.role == Role.OFFICER
                else (Event.END, "counsellor")
            )
            effects = await self._stop(
                session,
                ctx,
                request,
                caller,
                now,
                event=event,
                reason=reason,
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
        )


def _clock_time(moment: datetime) -> str:
    """A time of day as people in the Netherlands read it (the service's time zone)."""
    try:
        return moment.astimezone(ZoneInfo("Europe/Amsterdam")).strftime("%H:%M")
    except ZoneInfoNotFoundError:
        return moment.strftime("%H:%M UTC")
