"""The expiry loop: unanswered questions and invites no officer took, on time, after restarts too.

Deadlines live in the database; the loop sleeps until the earliest one, or until woken because
a new one was made on this node (at most ``RECHECK_SECONDS``, for those other nodes made), and
hands what expired to the delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.consent.service import ConsentService
from bridge.domain.delivery import Effect
from bridge.domain.machine import Event, InviteEvent, State
from bridge.domain.transitions import SYSTEM, transition
from bridge.store import conversations, invites, requests
from bridge.store.models import BridgeRequest, Conversation

__all__ = ["Expiry", "ExpiryLoop"]

_log = structlog.get_logger("bridge.expiry")

RECHECK_SECONDS = 30.0


class ExpiryLoop:
    def __init__(
        self,
        expiry: Expiry,
        deliver: Callable[[list[Effect]], Awaitable[None]],
        clock: Callable[[], datetime],
    ) -> None:
        self.expiry = expiry
        self.deliver = deliver
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        due = True  # at start: whatever fell due while no node ran
        while True:
            self._wake.clear()
            try:
                if due:
                    await self.deliver(await self.expiry.expire_due())
                    due = False
                deadline = await self.expiry.next_deadline()
            except Exception:
                _log.exception("expiry.failed")
                deadline = None
                await asyncio.sleep(1)
            # A deadline another node made did not wake this loop: look again now and then, so
            # that a node that dies leaves its deadlines to the others.
            timeout = RECHECK_SECONDS
            if deadline is not None:
                timeout = min(timeout, max(0.0, (deadline - self.clock()).total_seconds()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                due = True
            else:
                # Woken for a deadline just made, which lies ahead: the pass over what is due
                # waits for the earliest deadline, unless that has come (or the last failed).
                due = due or (deadline is not None and deadline <= self.clock())


class Expiry(ConsentService):
    """Deadlines live in the database, so they survive a restart."""

    async def next_deadline(self) -> datetime | None:
        async with self.db.reading() as session:
            return await requests.first_deadline(session)

    async def expire_due(self) -> list[Effect]:
        """Expire every unanswered question and every invite no officer took in time.

        One transaction per conversation, under its lock, reading what is due again once it
        holds it: with several nodes each may find the same deadline, and the first to take the
        lock expires it while the others find nothing left to do."""
        now = self.clock()
        async with self.db.reading() as session:
            due = {r.conversation_id for r in await requests.due_prompts(session, now)}
            due |= {i.conversation_id for i in await invites.due(session, now)}
        effects: list[Effect] = []
        for conversation_id in sorted(due):
            effects += await self._expire_conversation(conversation_id, now)
        return effects

    async def _expire_conversation(self, conversation_id: str, now: datetime) -> list[Effect]:
        effects: list[Effect] = []
        async with self.db.session() as session, session.begin():
            conversation = await conversations.locked(session, conversation_id)
            if conversation is None:
                return []
            for request in await requests.due_prompts(session, now, conversation_id):
                effects += await self._expire(session, conversation, request, now, "no_answer")
            for invite in await invites.due(session, now, conversation_id):
                await transition(session, self.log, invite, InviteEvent.EXPIRE, now=now)
                request = await session.get_one(BridgeRequest, invite.request_id)
                if request.state == State.GRANTED:
                    epoch = await self.epoch(session, request)
                    if epoch is not None:
                        epoch.ended_at = now
                    effects += await self._expire(session, conversation, request, now, "no_officer")
        return effects

    async def _expire(
        self,
        session: AsyncSession,
        conversation: Conversation,
        request: BridgeRequest,
        now: datetime,
        reason: str,
    ) -> list[Effect]:
        return await self.transition(
            session,
            conversation,
            request,
            Event.EXPIRE,
            now=now,
            actor=SYSTEM,
            reason=reason,
            notice_key=f"bridge.expired.{reason}",
        )
