"""Conversations and the routing of their messages by audience (DESIGN.md, "Roles and scopes").

Each public method is one database transaction that returns the ack and the effects to deliver
after the commit. Routing: every message goes to the care room (victim and counsellor); only a
message with ``investigation`` in its audience also goes to the investigation room, which holds
nobody but the officer of the current epoch. An officer reads back only its own epoch.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bridge import crypto
from bridge.clock import iso
from bridge.domain.access import Caller, ConversationContext, load_context
from bridge.domain.auth import issue_token
from bridge.domain.consent.bridges import Bridges
from bridge.domain.consent.service import bridge_summary, epoch_summary
from bridge.domain.core import Core
from bridge.domain.delivery import (
    COUNSELLORS,
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
from bridge.domain.machine import ConversationEvent, ConversationState, State
from bridge.domain.participants import participant_view, present_participants, victim_device_view
from bridge.domain.roles import Role
from bridge.domain.transitions import start, transition
from bridge.errors import (
    BadKeys,
    BadSignature,
    Conflict,
    Forbidden,
    Invalid,
    NoConsent,
    NotFound,
    WrongState,
)
from bridge.protocol import ConversationCreate, Envelope, HistoryShare
from bridge.store import conversations, devices, messages, participants, requests
from bridge.store.models import Conversation, Device, Epoch, Message, Participant, SharedKey

__all__ = ["Conversations"]

Ack = dict[str, object]


def _envelope_digest(raw: dict[str, object]) -> str:
    return crypto.b64u_encode(crypto.sha256(crypto.jcs(raw)))


class Conversations:
    def __init__(self, core: Core, bridges: Bridges) -> None:
        self.db = core.db
        self.log = core.log
        self.policy = core.policy
        self.bridges = bridges
        self.clock = core.clock

    async def create(self, body: ConversationCreate, token_lifetime: timedelta) -> Outcome:
        """A victim starts a conversation; the ack is the HTTP answer with the victim token."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            if await devices.with_signing_key(session, body.device.ed25519) is not None:
                raise Conflict("these device keys are in use already")
            device = Device(
                id=new_device_id(),
                account_id=None,
                ed25519=body.device.ed25519,
                x25519=body.device.x25519,
                created_at=now,
            )
            session.add(device)
            await session.flush()
            conversation = Conversation(
                id=str(uuid.uuid4()),
                lang=body.lang,
                victim_device_id=device.id,
                care_public=body.care_scope.public,
                care_sealed_private=body.care_scope.sealed_private,
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
            queue = await self.queue_effect(session)
        ack: Ack = {
            "conversation_id": conversation.id,
            "victim_token": token,
            "device_id": device.id,
        }
        return Outcome(ack, [queue])

    async def queue(self) -> Ack:
        async with self.db.session() as session:
            waiting = [
                {"conversation_id": cid, "lang": lang, "waiting_since": iso(since)}
                for cid, lang, since in await conversations.waiting(session)
            ]
        return {"waiting": waiting}

    async def queue_effect(self, session: AsyncSession) -> Emit:
        count = await conversations.waiting_count(session)
        return Emit("queue", {"waiting": count}, (COUNSELLORS,))

    async def join(self, caller: Caller, conversation_id: str) -> Outcome:
        now = self.clock()
        effects: list[Effect] = []
        async with self.db.session() as session, session.begin():
            principal = caller.principal
            conversation = await session.get(Conversation, conversation_id)
            if (
                principal.role == Role.COUNSELLOR
                and conversation is not None
                and conversation.state == ConversationState.WAITING
            ):
                # Picking a waiting conversation up makes this counsellor its host.
                await transition(
                    session, self.log, conversation, ConversationEvent.PICK_UP, now=now
                )
                conversation.counsellor_account_id = principal.account_id
                await session.flush()
                effects.append(await self.queue_effect(session))
            ctx = await load_context(session, caller, conversation_id)
            if principal.role == Role.OFFICER:
                # The officer's participation is still open (load_context); it must belong to
                # the consent in force.
                assert ctx.officer is not None
                if ctx.request is None or ctx.request.epoch_id != ctx.officer.epoch_id:
                    raise NoConsent("there is no consent for you in this conversation")
            elif principal.role == Role.COUNSELLOR:
                assert caller.device_id is not None  # registration is checked at the edge
                joined = await self._ensure_participant(
                    session, ctx, caller.device_id, principal.account_id, now
                )
                if joined is not None:
                    effects.append(joined)
                effects += await self.bridges.counsellor_back(session, ctx, now)
            else:
                effects += await self.bridges.victim_back(session, ctx, now)
            view = await self._conversation_view(session, ctx, caller)
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
        device_id: str,
        account_id: str | None,
        now: datetime,
    ) -> Emit | None:
        if await participants.is_present(session, ctx.conversation.id, device_id):
            return None
        participant = Participant(
            conversation_id=ctx.conversation.id,
            device_id=device_id,
            account_id=account_id,
            role=Role.COUNSELLOR.value,
            epoch_id=None,
            joined_at=now,
        )
        session.add(participant)
        device = await session.get_one(Device, device_id)
        return Emit(
            "participant",
            {
                "conversation_id": ctx.conversation.id,
                "event": "joined",
                "participant": participant_view(participant, device),
            },
            (care_room(ctx.conversation.id), investigation_room(ctx.conversation.id)),
        )

    async def _conversation_view(
        self, session: AsyncSession, ctx: ConversationContext, caller: Caller
    ) -> dict[str, object]:
        conversation = ctx.conversation
        victim = await session.get_one(Device, conversation.victim_device_id)
        care: dict[str, object] = {"public": conversation.care_public}
        if caller.role != Role.OFFICER:
            care["sealed_private"] = conversation.care_sealed_private
        epoch: dict[str, object] | None = None
        if ctx.request is not None and ctx.request.epoch_id is not None:
            row = await session.get_one(Epoch, ctx.request.epoch_id)
            epoch = epoch_summary(row, with_private=caller.role == Role.OFFICER)
        # The consent state a (re)joining party needs: the bridge in force, else the last one.
        latest = ctx.request or await requests.latest(session, conversation.id)
        return {
            "conversation_id": conversation.id,
            "state": conversation.state,
            "lang": conversation.lang,
            "participants": await present_participants(session, conversation.id),
            "care_scope": care,
            "epoch": epoch,
            "last_seq": conversation.last_seq,
            "victim_device": victim_device_view(victim),
            "bridge": None if latest is None else bridge_summary(latest, epoch),
        }

    async def send(self, caller: Caller, envelope: Envelope, raw: dict[str, object]) -> Outcome:
        """Accept one envelope (PROTOCOL.md, "The envelope"): checks, seq, durable, then fan-out."""
        now = self.clock()
        digest = _envelope_digest(raw)
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, envelope.conversation_id, allow_closed=True)
            if envelope.sender.role != caller.role or envelope.sender.device_id != caller.device_id:
                raise Forbidden("the envelope's sender is not this device")
            previous = await messages.by_client_msg_id(session, envelope.client_msg_id)
            if previous is not None and previous.envelope_sha256 == digest:
                # An identical resend (a lost ack, even one the conversation's closing came
                # after): the same seq, nothing new (idempotency).
                return Outcome({"seq": previous.seq}, [])
            if envelope.kind == "needs_note":
                self._check_needs_note_sender(caller, ctx)
            if ctx.conversation.state == ConversationState.CLOSED:
                raise WrongState("the conversation is closed")
            self._check_audience(caller, ctx, envelope)
            device = await session.get_one(Device, caller.device_id)
            try:
                crypto.verify_envelope(raw, device.ed25519)
            except crypto.CryptoError:
                raise BadSignature("the envelope's signature does not verify") from None
            try:
                crypto.check_envelope_keys(envelope.keys, envelope.audience)
            except crypto.CryptoError as exc:
                raise BadKeys(str(exc)) from None
            if previous is not None:
                raise Conflict("this client_msg_id was used for another envelope")
            seq = await conversations.next_seq(session, ctx.conversation.id)
            text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
            session.add(
                Message(
                    conversation_id=ctx.conversation.id,
                    seq=seq,
                    client_msg_id=envelope.client_msg_id,
                    sender_device_id=device.id,
                    sender_role=caller.role,
                    kind=envelope.kind,
                    investigation=envelope.investigation,
                    epoch_id=envelope.epoch_id,
                    envelope=text,
                    envelope_sha256=digest,
                    server_time=now,
                )
            )
        event = {
            "conversation_id": ctx.conversation.id,
            "seq": seq,
            "envelope": raw,
            "server_time": iso(now),
        }
        rooms: tuple[str, ...] = (care_room(ctx.conversation.id),)
        if envelope.investigation:
            rooms += (investigation_room(ctx.conversation.id),)
        return Outcome({"seq": seq}, [Emit("message", event, rooms)])

    def _check_needs_note_sender(self, caller: Caller, ctx: ConversationContext) -> None:
        # PROTOCOL.md: only the counsellor, only if the grant allows it (forbidden comes before
        # any state).
        choices = (ctx.request.choices if ctx.request is not None else None) or {}
        if caller.role not in self.policy.needs_note_roles or not choices.get("share_needs_note"):
            raise Forbidden("the victim did not allow a needs_note, or you may not send one")

    def _check_audience(self, caller: Caller, ctx: ConversationContext, envelope: Envelope) -> None:
        state, role = ctx.bridge_state, caller.role
        if envelope.kind == "needs_note":
            # Already while the bridge waits for its officer.
            if not self.policy.allows_needs_note(role, state):
                raise WrongState(f"the police part is {state}: it takes no needs_note now")
        elif not self.policy.allows(role, state, tuple(envelope.audience)):
            if not envelope.investigation or state == "joined":
                raise Forbidden(f"a {role} may not send to {'+'.join(envelope.audience)}")
            if state in ("none", "proposed"):
                raise NoConsent("the victim has not consented to the police reading along")
            raise WrongState(f"the police part is {state}: it takes no messages now")
        if envelope.investigation:
            assert ctx.request is not None
            if envelope.epoch_id != ctx.request.epoch_id:
                raise WrongState("the envelope names an epoch that is not the active one")
            if ctx.officer is not None and ctx.officer.epoch_id != envelope.epoch_id:
                raise NoConsent("you joined under another consent")

    async def share_history(
        self, caller: Caller, share: HistoryShare, raw: dict[str, object]
    ) -> Ack:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, share.conversation_id, allow_closed=True)
            if not self.policy.victim_may_share_history:
                raise Forbidden("the werkafspraken do not allow sharing earlier messages")
            if ctx.conversation.state == ConversationState.CLOSED:
                raise WrongState("the conversation is closed")
            if ctx.request is None or ctx.request.state not in (
                State.JOINED,
                State.PAUSED,
                State.GRANTED,
            ):
                raise NoConsent("there is no consent to share with")
            if ctx.request.epoch_id != share.epoch_id:
                raise WrongState("that is not the active epoch")
            device = await session.get_one(Device, caller.device_id)
            try:
                crypto.verify_object(raw, share.sig, device.ed25519)
            except crypto.CryptoError:
                raise BadSignature(
                    "the share is not signed by this conversation's victim"
                ) from None
            seqs = sorted({item.seq for item in share.items})
            if len(seqs) != len(share.items):
                raise Invalid("each message is shared once")
            if seqs[-1] > ctx.conversation.last_seq:
                raise NotFound(f"there is no message {seqs[-1]} in this conversation")
            for item in share.items:
                await session.merge(
                    SharedKey(
                        conversation_id=share.conversation_id,
                        seq=item.seq,
                        epoch_id=share.epoch_id,
                        key=item.key,
                    )
                )
            await self.log.append(
                session,
                "history.shared",
                at=now,
                conversation_id=share.conversation_id,
                actor=caller.actor,
                epoch_id=share.epoch_id,
                seqs=seqs,
            )
        return {"shared": len(seqs)}

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
            effects.append(await self.queue_effect(session))
        rooms = (care_room(conversation_id), investigation_room(conversation_id))
        effects.append(Emit("conversation.closed", {"conversation_id": conversation_id}, rooms))
        effects += [CloseRoom(room) for room in rooms]
        return Outcome({}, effects)
