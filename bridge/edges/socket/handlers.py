"""The handlers of the client events: each makes one domain call, has its effects delivered
(after the commit, through the fan-out) and returns the ack's fields.

They receive a payload that passed its schema, from a socket whose role may send the event
(``table.EventTable.answer`` checks both first).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from bridge.domain.consent.breakglass import Breakglass
from bridge.domain.consent.bridges import Bridges
from bridge.domain.consent.invites import Invites
from bridge.domain.conversations import Conversations
from bridge.domain.core import Core
from bridge.domain.delivery import Outcome
from bridge.domain.devices import Devices
from bridge.domain.fanout import Fanout
from bridge.domain.machine import BreakglassEvent
from bridge.domain.messages import Messages
from bridge.domain.transcripts import Transcripts
from bridge.edges.socket.sessions import Connections
from bridge.edges.socket.table import Ack, Call, Routes
from bridge.protocol import (
    BreakglassAsk,
    BreakglassRef,
    BridgePropose,
    ConsentGrant,
    ConversationRef,
    DeviceRegister,
    DisclosureRecord,
    Empty,
    HistoryFetch,
    HistoryShare,
    InviteRef,
    MessageSend,
    RequestRef,
    SignedEnvelope,
)

__all__ = ["ROUTES", "Domain", "Handlers"]

ROUTES = Routes()


@dataclass(frozen=True)
class Domain:
    """The domain services the events call."""

    core: Core
    devices: Devices
    conversations: Conversations
    messages: Messages
    bridges: Bridges
    invites: Invites
    transcripts: Transcripts
    breakglass: Breakglass


class Handlers:
    def __init__(
        self,
        domain: Domain,
        connections: Connections,
        fanout: Fanout,
        enter: Callable[[str, Iterable[str]], Awaitable[None]],
    ) -> None:
        self.domain, self.connections, self.fanout, self.enter = domain, connections, fanout, enter
        # Set by the application once the expiry loop exists: a new deadline wakes it.
        self.wake_expiry: Callable[[], None] = lambda: None

    async def _delivered(self, outcome: Outcome, sid: str | None = None) -> Ack:
        """The outcome's ack, once the calling socket entered its rooms (``sid``) and its
        effects went out."""
        if sid is not None:
            await self.enter(sid, outcome.enter)
        await self.fanout.deliver(outcome.effects)
        return outcome.ack

    @ROUTES.on("device.register")
    async def device_register(self, call: Call, p: DeviceRegister) -> Ack:
        principal = call.state.principal
        outcome = await self.domain.devices.register(principal, p.ed25519, p.x25519, p.sig)
        # On duty from here (an officer): the socket counts once its device is known.
        await self.connections.registered(call.sid, call.state, str(outcome.ack["device_id"]))
        return await self._delivered(outcome)

    @ROUTES.on("queue.list")
    async def queue_list(self, call: Call, p: Empty) -> Ack:
        return await self.domain.conversations.queue()

    @ROUTES.on("conversation.join")
    async def conversation_join(self, call: Call, p: ConversationRef) -> Ack:
        async with self.connections.settling(p.conversation_id):
            outcome = await self.domain.conversations.join(call.state.caller, p.conversation_id)
            await self.connections.joined(call.sid, call.state, p.conversation_id)
        return await self._delivered(outcome, call.sid)

    @ROUTES.on("message.send")
    async def message_send(self, call: Call, p: MessageSend) -> Ack:
        # Encoded once here; the domain stores, hashes and verifies that one form.
        signed = SignedEnvelope.received(p.envelope, call.raw["envelope"])
        return await self._delivered(await self.domain.messages.send(call.state.caller, signed))

    @ROUTES.on("history.fetch")
    async def history_fetch(self, call: Call, p: HistoryFetch) -> Ack:
        caller = call.state.caller
        return await self.domain.transcripts.history(
            caller, p.conversation_id, p.after_seq, p.limit
        )

    @ROUTES.on("bridge.propose")
    async def bridge_propose(self, call: Call, p: BridgePropose) -> Ack:
        outcome = await self.domain.bridges.propose(call.state.caller, p)
        self.wake_expiry()  # the question's deadline
        return await self._delivered(outcome)

    @ROUTES.on("consent.grant")
    async def consent_grant(self, call: Call, p: ConsentGrant) -> Ack:
        outcome = await self.domain.bridges.grant(call.state.caller, p)
        self.wake_expiry()  # the invites' deadline
        return await self._delivered(outcome)

    @ROUTES.on("consent.decline")
    async def consent_decline(self, call: Call, p: RequestRef) -> Ack:
        return await self._delivered(
            await self.domain.bridges.decline(call.state.caller, p.request_id)
        )

    @ROUTES.on("consent.withdraw")
    async def consent_withdraw(self, call: Call, p: ConversationRef) -> Ack:
        caller = call.state.caller
        return await self._delivered(await self.domain.bridges.withdraw(caller, p.conversation_id))

    @ROUTES.on("history.share")
    async def history_share(self, call: Call, p: HistoryShare) -> Ack:
        return await self.domain.messages.share_history(call.state.caller, p, call.raw)

    @ROUTES.on("bridge.pause")
    async def bridge_pause(self, call: Call, p: ConversationRef) -> Ack:
        return await self._delivered(
            await self.domain.bridges.pause(call.state.caller, p.conversation_id)
        )

    @ROUTES.on("bridge.resume")
    async def bridge_resume(self, call: Call, p: ConversationRef) -> Ack:
        caller = call.state.caller
        return await self._delivered(await self.domain.bridges.resume(caller, p.conversation_id))

    @ROUTES.on("invite.list")
    async def invite_list(self, call: Call, p: Empty) -> Ack:
        return await self.domain.invites.list_invites(call.state.caller)

    @ROUTES.on("invite.accept")
    async def invite_accept(self, call: Call, p: InviteRef) -> Ack:
        outcome = await self.domain.invites.accept_invite(call.state.caller, p.invite_id)
        return await self._delivered(outcome, call.sid)

    @ROUTES.on("bridge.end")
    async def bridge_end(self, call: Call, p: ConversationRef) -> Ack:
        return await self._delivered(
            await self.domain.bridges.end(call.state.caller, p.conversation_id)
        )

    @ROUTES.on("conversation.close")
    async def conversation_close(self, call: Call, p: ConversationRef) -> Ack:
        caller = call.state.caller
        return await self._delivered(
            await self.domain.conversations.close(caller, p.conversation_id)
        )

    @ROUTES.on("breakglass.request")
    async def breakglass_request(self, call: Call, p: BreakglassAsk) -> Ack:
        return await self._delivered(await self.domain.breakglass.request(call.state.caller, p))

    @ROUTES.on("breakglass.list")
    async def breakglass_list(self, call: Call, p: Empty) -> Ack:
        return await self.domain.breakglass.pending()

    @ROUTES.on("breakglass.approve")
    async def breakglass_approve(self, call: Call, p: BreakglassRef) -> Ack:
        decide = self.domain.breakglass.decide
        return await self._delivered(await decide(call.state.caller, p, BreakglassEvent.APPROVE))

    @ROUTES.on("breakglass.refuse")
    async def breakglass_refuse(self, call: Call, p: BreakglassRef) -> Ack:
        decide = self.domain.breakglass.decide
        return await self._delivered(await decide(call.state.caller, p, BreakglassEvent.REFUSE))

    @ROUTES.on("disclosure.record")
    async def disclosure_record(self, call: Call, p: DisclosureRecord) -> Ack:
        return await self._delivered(await self.domain.breakglass.disclose(call.state.caller, p))
