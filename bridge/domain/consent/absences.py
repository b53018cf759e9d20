"""The counsellor stays, the victim steers (DESIGN.md principle 6): what the police part does
when the victim's or the counsellor's last socket goes, and when they are back.

A joined bridge pauses while the counsellor is away and goes on by itself when they are back
(``counsellor_away``); it pauses when the victim's connection is lost (a quick exit, a dropped
phone) and goes on when the same victim joins again (``victim_away``). A pause the victim made
herself stays until she lifts it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.access import ConversationContext, in_force
from bridge.domain.consent.service import ConsentService
from bridge.domain.delivery import Effect, Emit, care_room, investigation_room
from bridge.domain.machine import ConversationState, Event, State
from bridge.domain.participants import participant_view, victim_of
from bridge.domain.transitions import SYSTEM
from bridge.store import conversations, participants, requests
from bridge.store.models import Conversation
from bridge.store.participants import Present

__all__ = ["Absences"]


class Absences(ConsentService):
    async def counsellor_away(self, conversation_id: str) -> list[Effect]:
        """The counsellor's last socket left: a joined bridge pauses until they are back."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            found = await conversations.locked_with_bridge(session, conversation_id)
            if found is None:
                return []
            conversation, last = found
            ctx = ConversationContext(conversation, in_force(last), None, last)
            return await self.pause_if_counsellor_away(session, ctx, now)

    async def victim_away(self, conversation_id: str) -> list[Effect]:
        """The victim's last socket left: the counsellor and officer are told, and a joined
        police part pauses until the victim is back (:meth:`victim_back`) or resumes it. A
        pending consent question stays unanswered: only the victim's own tap answers it."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            found = await conversations.locked_with_bridge(session, conversation_id)
            if found is None or found[0].state == ConversationState.CLOSED:
                return []
            conversation, last = found
            present = await participants.present(session, conversation_id)
            left: list[Effect] = [_victim_presence(conversation, present, "left")]
            request = in_force(last)
            if request is None or request.state != State.JOINED:
                return left
            return left + await self.transition(
                session,
                conversation,
                request,
                Event.PAUSE,
                now=now,
                actor=SYSTEM,
                reason="victim_away",
                notice_key="bridge.paused.victim_away",
            )

    async def victim_back(
        self,
        session: AsyncSession,
        ctx: ConversationContext,
        present: list[Present],
        now: datetime,
    ) -> list[Effect]:
        """Inside the victim's join: lift a ``victim_away`` pause.

        Only the page that holds the victim's token can join, so this is the same victim coming
        back; a dropped phone connection should not cost her the officer. A pause she made
        herself (reason ``victim``) stays until she resumes it. If the counsellor is away now,
        the bridge goes straight to ``counsellor_away``, as after ``bridge.resume``.
        """
        back: list[Effect] = []
        if not await self.presence.victim_present(ctx.conversation.id):
            back.append(_victim_presence(ctx.conversation, present, "joined"))
        request = ctx.request
        if request is None or request.state != State.PAUSED or request.reason != "victim_away":
            return back
        effects = back + await self.transition(
            session,
            ctx.conversation,
            request,
            Event.RESUME,
            now=now,
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
            actor=SYSTEM,
            notice_key="bridge.resumed",
        )

    async def pause_all_after_restart(self) -> None:
        """At start nobody is connected: every joined bridge waits for its counsellor."""
        async with self.db.reading() as session:
            joined = [r.conversation_id for r in await requests.in_state(session, State.JOINED)]
        for conversation_id in joined:
            await self.counsellor_away(conversation_id)


def _victim_presence(conversation: Conversation, present: list[Present], event: str) -> Emit:
    """``participant`` ``left`` or ``joined`` for the victim, to counsellor and officer."""
    return Emit(
        "participant",
        {
            "conversation_id": conversation.id,
            "event": event,
            "participant": participant_view(victim_of(present, conversation.victim_device_id)),
        },
        (care_room(conversation.id), investigation_room(conversation.id)),
    )
