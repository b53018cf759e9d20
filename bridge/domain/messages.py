"""Messages: an envelope accepted, numbered, stored and routed by audience, and the earlier
messages a victim shares (DESIGN.md, "Roles and scopes" and principle 5).

Each public method is one database transaction that returns the ack and the effects to deliver
after the commit. Routing: every message goes to the care room (victim and counsellor); only a
message with ``investigation`` in its audience also goes to the investigation room, which holds
nobody but the officer of the current epoch.
"""

from __future__ import annotations

from bridge import crypto
from bridge.clock import iso
from bridge.domain.access import Caller, ConversationContext, load_context
from bridge.domain.core import Core
from bridge.domain.delivery import Emit, Outcome, care_room, investigation_room
from bridge.domain.machine import ConversationState, State
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
from bridge.protocol import Envelope, HistoryShare, SignedEnvelope
from bridge.store import conversations, messages
from bridge.store.models import Device, Message, SharedKey

__all__ = ["Messages"]

Ack = dict[str, object]


class Messages:
    def __init__(self, core: Core) -> None:
        self.db = core.db
        self.log = core.log
        self.policy = core.policy
        self.clock = core.clock

    async def send(self, caller: Caller, signed: SignedEnvelope) -> Outcome:
        """Accept one envelope (PROTOCOL.md, "The envelope"): checks, seq, durable, then fan-out."""
        now = self.clock()
        envelope, digest = signed.fields, signed.digest
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
                crypto.verify_signed(signed.signed, envelope.sig, device.ed25519)
            except crypto.CryptoError:
                raise BadSignature("the envelope's signature does not verify") from None
            try:
                crypto.check_envelope_keys(envelope.keys, envelope.audience)
            except crypto.CryptoError as exc:
                raise BadKeys(str(exc)) from None
            if previous is not None:
                raise Conflict("this client_msg_id was used for another envelope")
            seq = await conversations.next_seq(session, ctx.conversation.id)
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
                    envelope=signed.canonical.decode(),
                    envelope_sha256=digest,
                    server_time=now,
                )
            )
        event = {
            "conversation_id": ctx.conversation.id,
            "seq": seq,
            "envelope": signed.sent,
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
            if not envelope.investigation or state == State.JOINED:
                raise Forbidden(f"a {role} may not send to {'+'.join(envelope.audience)}")
            if state in ("none", State.PROPOSED):
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
