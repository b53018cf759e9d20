"""Conversations: a victim starts one, a counsellor picks it up, each party joins it, the victim
or the counsellor closes it (the messages in it are :mod:`bridge.domain.messages`).

Each public method is one database transaction that returns the ack and the effects to deliver
after the commit. How many conversations wait is told to the counsellors by
:class:`bridge.domain.queue_count.QueueCount`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.clock import iso
from bridge.domain.access import Caller, ConversationContext, checked_context, load_context
from bridge.domain.auth import issue_token
from bridge.domain.consent.bridges import Bridges
from bridge.domain.consent.service import bridge_summary, epoch_summary
from bridge.domain.core import Core
from bridge.domain.delivery import (
    CloseRoom,
    Effect,
    Emit,
    Outcome,
    care_room,
    counsellor_room,
    investigation_room,
    victim_room,
)
from bridge.domain.devices import new_device_id
from bridge.domain.machine import ConversationEvent, ConversationState
from bridge.domain.orgkeys import sealed_to
from bridge.domain.participants import participant_view, victim_device_view, victim_of
from bridge.domain.queue_count import QueueCount
from bridge.domain.roles import Role
from bridge.domain.transitions import start, transition
from bridge.errors import Conflict, Forbidden, NoConsent, NotFound
from bridge.protocol import ConversationCreate
from bridge.store import conversations, devices, participants
from bridge.store.models import Conversation, Device, Epoch, Participant
from bridge.store.participants import Present

__all__ = ["Conversations"]

Ack = dict[str, object]


class Conversations:
    def __init__(self, core: Core, bridges: Bridges) -> None:
        self.db = core.db
        self.log = core.log
        self.bridges = bridges
        self.clock = core.clock
        self.queue_count = QueueCount(core.db)

    async def create(self, body: ConversationCreate, token_lifetime: timedelta) -> Outcome:
        """A victim starts a conversation; the ack is the HTTP answer with the victim token."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            care_key_id = await sealed_to(session, "fier", body.care_scope.key_id, "care_scope")
            device = Device(
                id=new_device_id(),
                account_id=None,
                ed25519=body.device.ed25519,
                x25519=body.device.x25519,
                created_at=now,
            )
            session.add(device)
            try:
                await session.flush()
            except IntegrityError:
                # The unique key on devices.ed25519: an insert refused, not a look-up first.
                raise Conflict("these device keys are in use already") from None
            conversation = Conversation(
                id=str(uuid.uuid4()),
                lang=body.lang,
                victim_device_id=device.id,
                care_public=body.care_scope.public,
                care_sealed_private=body.care_scope.sealed_private,
                care_key_id=care_key_id,
                counsellor_account_id=None,
                last_seq=0,
                created_at=now,
                closed_at=None,
            )
            # The victim's device key is its pseudonym in the log: a grant's signature can be
            # verified from the log alone (PROTOCOL.md, "Log entries").
            await start(
                session,
                self.log,
                conversation,
                now=now,
                victim_device={"ed25519": device.ed25519},
            )
            await session.flush()
            session.add(
                Participant(
                    conversation_id=conversation.id,
                    device_id=device.id,
                    account_id=None,
                    role=Role.VICTIM.value,
                    epoch_id=None,
                    joined_at=now,
                )
            )
            token, _ = await issue_token(
                session, now=now, lifetime=token_lifetime, conversation_id=conversation.id
            )
        ack: Ack = {
            "conversation_id": conversation.id,
            "victim_token": token,
            "device_id": device.id,
        }
        self.queue_count.changed()
        return Outcome(ack, [])

    async def queue(self) -> Ack:
        async with self.db.reading() as session:
            waiting = [
                {"conversation_id": cid, "lang": lang, "waiting_since": iso(since)}
                for cid, lang, since in await conversations.waiting(session)
            ]
        return {"waiting": waiting}

    async def join(self, caller: Caller, conversation_id: str) -> Outcome:
        now = self.clock()
        effects: list[Effect] = []
        picked_up = False
        async with self.db.session() as session, session.begin():
            principal = caller.principal
            found = await conversations.locked_with_bridge(session, conversation_id)
            if found is None:
                raise NotFound("no such conversation")
            conversation, last = found
            if (
                principal.role == Role.COUNSELLOR
                and conversation.state == ConversationState.WAITING
            ):
                # Picking a waiting conversation up makes this counsellor its host.
                await transition(
                    session, self.log, conversation, ConversationEvent.PICK_UP, now=now
                )
                conversation.counsellor_account_id = principal.account_id
                picked_up = True
            ctx = await checked_context(session, caller, conversation, last)
            present = await participants.present(session, conversation_id)
            if principal.role == Role.OFFICER:
                # The officer's participation is still open (checked_context); it must belong
                # to the consent in force.
                assert ctx.officer is not None
                if ctx.request is None or ctx.request.epoch_id != ctx.officer.epoch_id:
                    raise NoConsent("there is no consent for you in this conversation")
            elif principal.role == Role.COUNSELLOR:
                assert caller.device_id is not None  # registration is checked at the edge
                joined = await self._ensure_participant(
                    session, ctx, present, caller.device_id, principal.account_id, now
                )
                if joined is not None:
                    effects.append(joined)
                effects += await self.bridges.counsellor_back(session, ctx, now)
            else:
                effects += await self.bridges.victim_back(session, ctx, present, now)
            view = await self._conversation_view(session, ctx, present, caller)
        if picked_up:
            self.queue_count.changed()
        rooms = {
            Role.VICTIM: (care_room(conversation_id), victim_room(conversation_id)),
            Role.COUNSELLOR: (care_room(conversation_id), counsellor_room(conversation_id)),
            Role.OFFICER: (investigation_room(conversation_id),),
        }[Role(principal.role)]
        if principal.role == Role.VICTIM:
            effects += self.bridges.pending_prompt(ctx)
        return Outcome({"conversation": view}, effects, rooms)

    async def _ensure_participant(
        self,
        session: AsyncSession,
        ctx: ConversationContext,
        present: list[Present],
        device_id: str,
        account_id: str | None,
        now: datetime,
    ) -> Emit | None:
        """The counsellor's device among the participants: added (and ``present``) if it is
        not there yet, with the ``participant`` event that says so."""
        if any(p.device_id == device_id for p in present):
            return None
        session.add(
            Participant(
                conversation_id=ctx.conversation.id,
                device_id=device_id,
                account_id=account_id,
                role=Role.COUNSELLOR.value,
                epoch_id=None,
                joined_at=now,
            )
        )
        device = await devices.keys_of(session, device_id)
        # The newest participant comes last, as the participants are listed in joining order.
        joined = Present(
            Role.COUNSELLOR.value, account_id, device.id, device.ed25519, device.x25519, now
        )
        present.append(joined)
        return Emit(
            "participant",
            {
                "conversation_id": ctx.conversation.id,
                "event": "joined",
                "participant": participant_view(joined),
            },
            (care_room(ctx.conversation.id), investigation_room(ctx.conversation.id)),
        )

    async def _conversation_view(
        self,
        session: AsyncSession,
        ctx: ConversationContext,
        present: list[Present],
        caller: Caller,
    ) -> dict[str, object]:
        conversation = ctx.conversation
        care: dict[str, object] = {"public": conversation.care_public}
        if caller.role != Role.OFFICER:
            care["sealed_private"] = conversation.care_sealed_private
            care["key_id"] = conversation.care_key_id
        epoch: dict[str, object] | None = None
        if ctx.request is not None and ctx.request.epoch_id is not None:
            row = await session.get_one(Epoch, ctx.request.epoch_id)
            epoch = epoch_summary(row, with_private=caller.role == Role.OFFICER)
        return {
            "conversation_id": conversation.id,
            "state": conversation.state,
            "lang": conversation.lang,
            "participants": [participant_view(p) for p in present],
            "care_scope": care,
            "epoch": epoch,
            "last_seq": conversation.last_seq,
            "victim_device": victim_device_view(victim_of(present, conversation.victim_device_id)),
            # The consent state a (re)joining party needs: the bridge in force, else the last one.
            "bridge": None if ctx.last is None else bridge_summary(ctx.last, epoch),
        }

    async def close(self, caller: Caller, conversation_id: str) -> Outcome:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id)
            if caller.role not in (Role.VICTIM, Role.COUNSELLOR):
                raise Forbidden("only the victim or the counsellor closes a conversation")
            effects = await self.bridges.stop_for_close(session, ctx, caller, now)
            await participants.end_all(session, conversation_id, now, "closed")
            await transition(
                session,
                self.log,
                ctx.conversation,
                ConversationEvent.CLOSE,
                now=now,
                actor=caller.actor,
            )
        self.queue_count.changed()
        rooms = (care_room(conversation_id), investigation_room(conversation_id))
        effects.append(Emit("conversation.closed", {"conversation_id": conversation_id}, rooms))
        effects += [CloseRoom(room) for room in rooms]
        return Outcome({}, effects)
