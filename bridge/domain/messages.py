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
from bridge.domain.access import Caller, check_access, load_context
from bridge.domain.core import Core
from bridge.domain.delivery import Emit, Outcome, care_room, investigation_room
from bridge.domain.machine import ConversationState, State
from bridge.domain.message_writer import Accepted, MessageWriter
from bridge.domain.roles import Role
from bridge.domain.standings import KEPT, Standings
from bridge.errors import (
    BadKeys,
    BadSignature,
    BridgeError,
    Forbidden,
    Invalid,
    NoConsent,
    NotFound,
    WrongState,
)
from bridge.protocol import Envelope, HistoryShare, SignedEnvelope
from bridge.store import message_batch
from bridge.store.message_batch import Standing
from bridge.store.models import Device, SharedKey

__all__ = ["Messages"]

Ack = dict[str, object]


class Messages:
    def __init__(self, core: Core) -> None:
        self.db = core.db
        self.log = core.log
        self.policies = core.policies
        self.clock = core.clock
        self.standings = Standings(core.db)
        self.writer = MessageWriter(core.db, self.standings, self)
        # Device keys never change once registered.
        self._device_keys: dict[str, str] = {}

    async def send(self, caller: Caller, signed: SignedEnvelope) -> Outcome:
        """Accept one envelope (PROTOCOL.md, "The envelope"): checks, seq, durable, then fan-out.

        Checked against the conversation's kept standing, numbered and stored in a group commit
        (``message_writer``); a refusal is decided on the standing as it is now."""
        envelope = signed.fields
        standing = await self.standings.get(envelope.conversation_id)
        key = await self._device_key(caller)
        try:
            self.admit(caller, standing, envelope)
            self._check_envelope(signed, key)
        except BridgeError:
            standing, seq = await self._reconsider(caller, signed, key)
            if seq is not None:
                return Outcome({"seq": seq}, [])
        now = self.clock()
        written = await self.writer.write(Accepted(caller, signed, standing, now))
        if not written.new:
            return Outcome({"seq": written.seq}, [])
        event = {
            "conversation_id": envelope.conversation_id,
            "seq": written.seq,
            "envelope": signed.sent,
            "server_time": iso(now),
        }
        rooms: tuple[str, ...] = (care_room(envelope.conversation_id),)
        if envelope.investigation:
            rooms += (investigation_room(envelope.conversation_id),)
        return Outcome({"seq": written.seq}, [Emit("message", event, rooms)])

    async def _reconsider(
        self, caller: Caller, signed: SignedEnvelope, key: str
    ) -> tuple[Standing, int | None]:
        """The message was refused against the kept standing: decide on the standing as it is
        now, in the protocol's order (an identical resend is answered with its seq before the
        state's checks, even after the conversation closed). Raises the refusal, or returns the
        standing that admits the message and, for a resend, its seq."""
        envelope = signed.fields
        async with message_batch.transaction(self.db) as statements:
            standing = await self.standings.fresh(statements, envelope.conversation_id)
            self.check_sender(caller, standing, envelope)
            previous = await statements.previous([envelope.client_msg_id])
            digest, seq = previous.get(envelope.client_msg_id, (None, None))
            if digest == signed.digest:
                return standing, seq
            self._check_rules(caller, standing, envelope)
            self._check_envelope(signed, key)
        return standing, None

    @staticmethod
    def _check_envelope(signed: SignedEnvelope, key: str) -> None:
        """The signature with the sender's device key ``key``, and the envelope's keys."""
        envelope = signed.fields
        try:
            crypto.verify_signed(signed.signed, envelope.sig, key)
        except crypto.CryptoError:
            raise BadSignature("the envelope's signature does not verify") from None
        try:
            crypto.check_envelope_keys(envelope.keys, envelope.audience)
        except crypto.CryptoError as exc:
            raise BadKeys(str(exc)) from None

    def admit(self, caller: Caller, standing: Standing, envelope: Envelope) -> None:
        self.check_sender(caller, standing, envelope)
        self._check_rules(caller, standing, envelope)

    @staticmethod
    def check_sender(caller: Caller, standing: Standing, envelope: Envelope) -> None:
        check_access(
            caller.principal,
            standing.conversation_id,
            standing.state,
            standing.counsellor_account_id,
            _officer_ended(caller, standing),
            allow_closed=True,
        )
        if envelope.sender.role != caller.role or envelope.sender.device_id != caller.device_id:
            raise Forbidden("the envelope's sender is not this device")

    def _check_rules(self, caller: Caller, standing: Standing, envelope: Envelope) -> None:
        policy = self.policies.current  # one policy for the whole check
        # PROTOCOL.md: a needs_note only from the counsellor, only if the grant allows it
        # (forbidden comes before any state).
        if envelope.kind == "needs_note" and (
            caller.role not in policy.needs_note_roles
            or not standing.choices.get("share_needs_note")
        ):
            raise Forbidden("the victim did not allow a needs_note, or you may not send one")
        if standing.state == ConversationState.CLOSED:
            raise WrongState("the conversation is closed")
        state, role = standing.bridge_state, caller.role
        if envelope.kind == "needs_note":
            # Already while the bridge waits for its officer.
            if not policy.allows_needs_note(role, state):
                raise WrongState(f"the police part is {state}: it takes no needs_note now")
        elif not policy.allows(role, state, tuple(envelope.audience)):
            if not envelope.investigation or state == State.JOINED:
                raise Forbidden(f"a {role} may not send to {'+'.join(envelope.audience)}")
            if state in ("none", State.PROPOSED):
                raise NoConsent("the victim has not consented to the police reading along")
            raise WrongState(f"the police part is {state}: it takes no messages now")
        if envelope.investigation:
            if envelope.epoch_id != standing.epoch_id:
                raise WrongState("the envelope names an epoch that is not the active one")
            officer = _officer_epoch(caller, standing)
            if officer is not None and officer != envelope.epoch_id:
                raise NoConsent("you joined under another consent")

    async def _device_key(self, caller: Caller) -> str:
        assert caller.device_id is not None  # the event table lets no unregistered socket send
        key = self._device_keys.get(caller.device_id)
        if key is None:
            async with self.db.reading() as session:
                device = await session.get_one(Device, caller.device_id)
            if len(self._device_keys) >= KEPT:
                del self._device_keys[next(iter(self._device_keys))]  # the oldest
            key = self._device_keys[caller.device_id] = device.ed25519
        return key

    async def share_history(
        self, caller: Caller, share: HistoryShare, raw: dict[str, object]
    ) -> Ack:
        now = self.clock()
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, share.conversation_id, allow_closed=True)
            if not self.policies.current.victim_may_share_history:
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


def _officer_ended(caller: Caller, standing: Standing) -> bool | None:
    """Whether the calling officer's latest participation ended (None: never joined)."""
    found = standing.officers.get(caller.principal.account_id or "")
    return None if found is None or caller.role != Role.OFFICER else found[1]


def _officer_epoch(caller: Caller, standing: Standing) -> str | None:
    """The epoch the calling officer joined under (None: not an officer that joined)."""
    found = standing.officers.get(caller.principal.account_id or "")
    return None if found is None or caller.role != Role.OFFICER else found[0]
