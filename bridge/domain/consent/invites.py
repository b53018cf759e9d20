"""Invites: which on-duty officers one goes to (PROTOCOL.md, "Preferences"), and its acceptance.

``officer_gender`` is a hard filter. ``same_officer`` sends the invite to the previous officer
alone while it is on duty, else to all matching. ``region`` goes first; with nobody of that region
on duty, the invite goes to every matching officer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.clock import iso
from bridge.domain.access import Caller, ConversationContext
from bridge.domain.consent.service import Ack, ConsentService, epoch_summary
from bridge.domain.delivery import (
    Effect,
    Emit,
    OnDutyOfficer,
    Outcome,
    account_room,
    care_room,
    investigation_room,
)
from bridge.domain.machine import Event, InviteEvent, InviteState, State
from bridge.domain.participants import participant_view, victim_device_view, victim_of
from bridge.domain.roles import Role
from bridge.domain.transitions import transition
from bridge.errors import Forbidden, NotFound, WrongState
from bridge.store import conversations, invites, participants, requests
from bridge.store.invites import OpenInvite
from bridge.store.models import Invite, Participant

__all__ = ["Invites", "invite_emit", "invite_payload", "invite_recipients", "previous_officer"]


def invite_recipients(
    preferences: Mapping[str, object],
    on_duty: Sequence[OnDutyOfficer],
    previous_officer: str | None,
) -> list[str]:
    """Account ids of the on-duty officers that should see the invite now."""
    gender = preferences.get("officer_gender")
    matching = [o for o in on_duty if gender in (None, "any") or o.gender == gender]
    if preferences.get("same_officer") and any(o.account_id == previous_officer for o in matching):
        return [str(previous_officer)]
    region = preferences.get("region")
    if region is not None:
        local = [o for o in matching if o.region == region]
        if local:
            matching = local
    return sorted({o.account_id for o in matching})


async def previous_officer(
    session: AsyncSession, conversation_id: str, preferences: Mapping[str, object]
) -> str | None:
    """The previous officer :func:`invite_recipients` needs: read only where ``preferences``
    ask for the same officer, as it plays no part otherwise."""
    if not preferences.get("same_officer"):
        return None
    return await requests.previous_officer(session, conversation_id)


def invite_payload(invite: Invite | OpenInvite) -> dict[str, object]:
    """What an officer is shown of an invite: no content and no victim data."""
    return {
        "invite_id": invite.id,
        "purpose": invite.purpose,
        "preferences": invite.preferences,
        "expires_at": iso(invite.expires_at),
    }


def invite_emit(invite: Invite | OpenInvite, account_id: str) -> Emit:
    return Emit("invite", invite_payload(invite), (account_room(account_id),))


class Invites(ConsentService):
    """Invites: what an officer on duty is shown, and its acceptance."""

    async def _open_invites_for(
        self, session: AsyncSession, account_id: str, arriving: OnDutyOfficer | None = None
    ) -> list[OpenInvite]:
        """Pending, unexpired invites this officer is among the recipients of, right now, with
        ``arriving`` counted on duty whether or not its socket shows it yet."""
        now = self.clock()
        on_duty = await self.presence.officers_on_duty()
        if arriving is not None and all(o.account_id != arriving.account_id for o in on_duty):
            on_duty.append(arriving)
        return [
            invite
            for invite in await invites.open_at(session, now)
            if account_id in invite_recipients(invite.preferences, on_duty, invite.previous_officer)
        ]

    async def list_invites(self, caller: Caller) -> Ack:
        async with self.db.reading() as session:
            invites = await self._open_invites_for(session, caller.principal.account_id or "")
        return {"invites": [invite_payload(i) for i in invites]}

    async def officer_on_duty(self, session: AsyncSession, officer: OnDutyOfficer) -> list[Effect]:
        """An officer came on duty (in ``session``'s transaction): it is shown the invites that
        wait for it."""
        invites = await self._open_invites_for(session, officer.account_id, officer)
        return [invite_emit(i, officer.account_id) for i in invites]

    async def accept_invite(self, caller: Caller, invite_id: str) -> Outcome:
        now = self.clock()
        account_id = caller.principal.account_id
        assert account_id is not None and caller.device_id is not None
        async with self.db.session() as session, session.begin():
            # The conversation's lock first, then the invite, its request and epoch read afresh.
            conversation = await conversations.locked(session, invites.conversation_of(invite_id))
            found = None if conversation is None else await invites.with_request(session, invite_id)
            if conversation is None or found is None:
                raise NotFound("no such invite")
            invite, request, epoch = found
            recipients = invite_recipients(
                invite.preferences,
                await self.presence.officers_on_duty(),
                await previous_officer(session, conversation.id, invite.preferences),
            )
            if account_id not in recipients:
                raise Forbidden("this invite is not for you")
            if (
                invite.state != InviteState.PENDING
                or now >= invite.expires_at
                or request.state != State.GRANTED
            ):
                raise WrongState(f"this invite is {invite.state}, it can no longer be accepted")
            # Set before the moves, so that each row is written once (the log's first append
            # flushes what the session holds).
            invite.accepted_by = account_id
            request.officer_account_id = account_id
            await transition(
                session, self.log, invite, InviteEvent.ACCEPT, now=now, actor=caller.actor
            )
            await transition(
                session,
                self.log,
                request,
                Event.ACCEPT,
                now=now,
                actor=caller.actor,
                epoch_id=request.epoch_id,
            )
            officer = Participant(
                conversation_id=conversation.id,
                device_id=caller.device_id,
                account_id=account_id,
                role=Role.OFFICER.value,
                epoch_id=request.epoch_id,
                joined_at=now,
            )
            session.add(officer)
            # Read once the officer is in: the list it is answered with, its device's keys.
            present = await participants.present(session, conversation.id)
            joined = next(p for p in reversed(present) if p.device_id == caller.device_id)
            ctx = ConversationContext(conversation, request, officer, request)  # in force
            effects: list[Effect] = [
                Emit(
                    "participant",
                    {
                        "conversation_id": conversation.id,
                        "event": "joined",
                        "participant": participant_view(joined),
                    },
                    (care_room(conversation.id), investigation_room(conversation.id)),
                )
            ]
            effects += await self.state_effects(session, conversation, request, "bridge.joined")
            effects += await self.pause_if_counsellor_away(session, ctx, now)
        ack: Ack = {
            "conversation_id": conversation.id,
            "epoch": epoch_summary(epoch, with_private=True),
            "care_scope": {"public": conversation.care_public},
            "victim_device": victim_device_view(victim_of(present, conversation.victim_device_id)),
            "participants": [participant_view(p) for p in present],
        }
        return Outcome(ack, effects, (investigation_room(conversation.id),))
