"""Break-glass under the meldcode (DESIGN.md, "Consent"; DOMAIN.md R20, R25): separate from
consent and rare. A counsellor asks, naming a category the werkafspraken allow; a supervisor of
an organisation the werkafspraken name, never the one who asked, approves or refuses, once. The
victim is told in plain words that the counsellor had to act under the meldcode; the officer of
the conversation learns nothing of it, and the investigation scope is never opened by it.

The log records who asked, the category and who decided (``breakglass.requested``,
``breakglass.approved``, ``breakglass.refused``), and the disclosure register: what kinds of
information went to which agency on which basis (``disclosure.recorded``); no reason, no
content and no victim identity.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.access import Caller, load_context
from bridge.domain.core import Core
from bridge.domain.delivery import SUPERVISORS, Effect, Emit, Outcome, account_room, victim_room
from bridge.domain.machine import BreakglassEvent, BreakglassState, ConversationState
from bridge.domain.transitions import start, transition
from bridge.errors import Forbidden, Invalid, NotFound, WrongState
from bridge.i18n import notice
from bridge.protocol import BreakglassAsk, BreakglassRef, DisclosureRecord
from bridge.store import breakglass as stored
from bridge.store.models import BreakglassRequest, Conversation

__all__ = ["Breakglass"]


class Breakglass:
    def __init__(self, core: Core) -> None:
        self.db, self.log, self.policies, self.clock = core.db, core.log, core.policies, core.clock

    async def request(self, caller: Caller, ask: BreakglassAsk) -> Outcome:
        """The conversation's counsellor asks; every supervisor's socket is told."""
        if ask.category not in self.policies.current.breakglass_categories:
            raise Forbidden(f"the werkafspraken allow no break-glass for {ask.category}")
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, ask.conversation_id)
            if ctx.conversation.state != ConversationState.OPEN:
                raise WrongState("the conversation is not open")
            row = BreakglassRequest(
                id=str(uuid.uuid4()),
                conversation_id=ctx.conversation.id,
                category=ask.category,
                requested_by=caller.principal.account_id,
                decided_by=None,
                created_at=now,
                decided_at=None,
            )
            await start(session, self.log, row, now=now, actor=caller.actor, category=row.category)
        view = _view(row)
        return Outcome(view, [Emit("breakglass.requested", view, (SUPERVISORS,))])

    async def decide(self, caller: Caller, ref: BreakglassRef, event: BreakglassEvent) -> Outcome:
        """A supervisor approves or refuses; the counsellor who asked and the supervisors are
        told, and on approval the victim."""
        if caller.principal.org not in self.policies.current.breakglass_approver_orgs:
            raise Forbidden("the werkafspraken do not let your organisation decide break-glass")
        now = self.clock()
        async with self.db.session() as session, session.begin():
            row = await stored.locked(session, ref.breakglass_id)
            if row is None:
                raise NotFound("no such break-glass request")
            if row.requested_by == caller.principal.account_id:
                raise Forbidden("a break-glass request is decided by a second person")
            await transition(
                session, self.log, row, event, now=now, actor=caller.actor, category=row.category
            )
            row.decided_by, row.decided_at = caller.principal.account_id, now
            effects = await self._told(session, row)
        return Outcome(_view(row), effects)

    async def disclose(self, caller: Caller, record: DisclosureRecord) -> Outcome:
        """An entry of the disclosure register (DOMAIN.md R21), in the log: which kinds of
        information went to which agency on which basis; a meldcode disclosure names the
        approved break-glass request it rests on. Also after the conversation closed."""
        if len(set(record.shared)) != len(record.shared):
            raise Invalid("shared names a kind of information twice")
        if (record.basis == "meldcode") != (record.breakglass_id is not None):
            raise Invalid("a breakglass_id goes with the meldcode basis, and only with it")
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, record.conversation_id, allow_closed=True)
            cited: dict[str, object] = {}
            if record.breakglass_id is not None:
                row = await session.get(BreakglassRequest, record.breakglass_id)
                if row is None or row.conversation_id != ctx.conversation.id:
                    raise NotFound("no such break-glass request in this conversation")
                if row.state != BreakglassState.APPROVED:
                    raise WrongState(f"that break-glass request is {row.state}, not approved")
                cited["breakglass_id"] = row.id
            index = await self.log.append(
                session,
                "disclosure.recorded",
                at=now,
                conversation_id=ctx.conversation.id,
                actor=caller.actor,
                agency=record.agency,
                basis=record.basis,
                shared=sorted(record.shared),
                **cited,
            )
        return Outcome({"index": index})

    async def pending(self) -> dict[str, object]:
        """The requests that wait for a decision, oldest first."""
        async with self.db.reading() as session:
            rows = await stored.pending(session)
        return {"requests": [_view(row) for row in rows]}

    async def _told(self, session: AsyncSession, row: BreakglassRequest) -> list[Effect]:
        view = _view(row)
        told: list[Effect] = [
            Emit("breakglass.decided", view, (account_room(row.requested_by), SUPERVISORS))
        ]
        if row.state == BreakglassState.APPROVED:
            conversation = await session.get_one(Conversation, row.conversation_id)
            text = notice("disclosure.meldcode", conversation.lang)
            payload = {"conversation_id": row.conversation_id, "notice": text}
            told.append(Emit("notice", payload, (victim_room(row.conversation_id),)))
        return told


def _view(row: BreakglassRequest) -> dict[str, object]:
    return {
        "breakglass_id": row.id,
        "conversation_id": row.conversation_id,
        "category": row.category,
        "state": row.state,
    }
