"""The Socket.IO edge: authentication on connect, one ack wrapper for every event, presence.

Each event is validated (bridge.protocol), checked for role and registration, handed to one core
call, and answered with ``{"ok": true, ...}`` or ``{"ok": false, "error": {code, message}}``.
Effects go out only after the core has committed. Events of one socket are handled one at a
time, in the order they arrived, so a client's messages keep their order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import socketio  # type: ignore[import-untyped]
import structlog
from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as engineio_aiohttp  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry, Counter
from socketio import packet

from bridge.auth import authenticate
from bridge.config import Settings
from bridge.consent.bridges import Bridges
from bridge.consent.invites import Invites
from bridge.conversations import Conversations
from bridge.core import Core
from bridge.delivery import (
    COUNSELLORS,
    CloseRoom,
    Effect,
    Emit,
    OnDutyOfficer,
    account_room,
)
from bridge.devices import register_device
from bridge.errors import (
    BridgeError,
    Forbidden,
    Internal,
    Invalid,
    RateLimited,
    WrongState,
)
from bridge.limits import TokenBucket
from bridge.presence import Connections, SocketState
from bridge.protocol import (
    BridgePropose,
    ConsentGrant,
    ConversationRef,
    DeviceRegister,
    HistoryFetch,
    HistoryShare,
    InviteRef,
    MessageSend,
    RequestRef,
    decode_event,
)
from bridge.transcripts import Transcripts

__all__ = ["SocketEdge"]

_log = structlog.get_logger("bridge.socket")

STAFF_IN_CHAT: Final = ("counsellor", "officer")
# Who may send which event (PROTOCOL.md, "Socket.IO events"); officers may also re-join the
# conversation of their own epoch after a reconnect (docs/protocol.md).
EVENT_ROLES: Final[dict[str, tuple[str, ...]]] = {
    "device.register": STAFF_IN_CHAT,
    "queue.list": ("counsellor",),
    "conversation.join": ("victim", "counsellor", "officer"),
    "message.send": ("victim", "counsellor", "officer"),
    "history.fetch": ("victim", "counsellor", "officer"),
    "bridge.propose": ("counsellor",),
    "consent.grant": ("victim",),
    "consent.decline": ("victim",),
    "consent.withdraw": ("victim",),
    "history.share": ("victim",),
    "bridge.pause": ("victim", "counsellor"),
    "bridge.resume": ("victim", "counsellor"),
    "invite.list": ("officer",),
    "invite.accept": ("officer",),
    "bridge.end": ("counsellor", "officer"),
    "conversation.close": ("victim", "counsellor"),
}


class _Server(socketio.AsyncServer):  # type: ignore[misc]
    """Refuses client-sent ``connect``/``disconnect`` events and events without a name.

    python-socketio would otherwise hand a client's ``connect`` event to the connect handler,
    letting a connected socket re-authenticate as someone else.
    """

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: Any
    ) -> None:
        if not data or not isinstance(data[0], str) or data[0] in self.reserved_events:
            if id is not None:
                error = {"ok": False, "error": Invalid("not an event a client may send").as_body()}
                await self._send_packet(
                    eio_sid,
                    self.packet_class(packet.ACK, namespace=namespace or "/", id=id, data=[error]),
                )
            return
        await super()._handle_event(eio_sid, namespace, id, data)


class _PlainWebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
    """engine.io's aiohttp websocket without permessage-deflate.

    Frames are ciphertext, which does not compress, and each deflate context costs about four
    times an idle socket's memory.
    """

    async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock


class SocketEdge:
    """The Socket.IO server of the bridge, and the presence the core reads."""

    def __init__(
        self,
        core: Core,
        conversations: Conversations,
        bridges: Bridges,
        invites: Invites,
        transcripts: Transcripts,
        registry: CollectorRegistry,
        connections: Connections,
        settings: Settings,
    ) -> None:
        self.db = core.db
        self.log = core.log
        clock = core.clock
        self.conversations = conversations
        self.bridges = bridges
        self.invites = invites
        self.transcripts = transcripts
        self.clock = clock
        self.connections = connections
        self.settings = settings
        self.sessions = connections.sockets
        self.stopping = False
        # Set by the application once the expiry loop exists.
        self.wake_expiry: Callable[[], None] = lambda: None
        self.server = _Server(
            async_mode="aiohttp",
            cors_allowed_origins=[],
            logger=False,
            engineio_logger=False,
            max_http_buffer_size=64 * 1024,
        )
        self.server.eio._async = {**self.server.eio._async, "websocket": _PlainWebSocket}
        self.events = Counter(
            "bridge_events", "Client events handled", ["event", "outcome"], registry=registry
        )
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnect)
        self.server.on("*", self._event)
        self.handlers: dict[
            str, Callable[[SocketState, str, Any, dict[str, Any]], Awaitable[dict[str, object]]]
        ] = {
            "device.register": self._device_register,
            "queue.list": self._queue_list,
            "conversation.join": self._conversation_join,
            "message.send": self._message_send,
            "history.fetch": self._history_fetch,
            "bridge.propose": self._bridge_propose,
            "consent.grant": self._consent_grant,
            "consent.decline": self._consent_decline,
            "consent.withdraw": self._consent_withdraw,
            "history.share": self._history_share,
            "bridge.pause": self._bridge_pause,
            "bridge.resume": self._bridge_resume,
            "invite.list": self._invite_list,
            "invite.accept": self._invite_accept,
            "bridge.end": self._bridge_end,
            "conversation.close": self._conversation_close,
        }

    # -- delivery ------------------------------------------------------------------------------

    async def deliver(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Emit):
                await self.server.emit(
                    effect.event,
                    dict(effect.payload),
                    to=list(effect.rooms),
                    skip_sid=effect.skip_sid,
                )
            elif isinstance(effect, CloseRoom):
                await self.server.close_room(effect.room)

    async def shutdown(self) -> None:
        """Close every socket before the server stops, so clients reconnect elsewhere at once.

        A server going away is nobody leaving: presence is not acted on, and on the next start
        every joined bridge waits for its counsellor (``pause_all_after_restart``)."""
        self.stopping = True
        for sid in list(self.sessions):
            await self.server.disconnect(sid)
        await self.server.shutdown()

    async def _enter(self, sid: str, rooms: Iterable[str]) -> None:
        for room in rooms:
            await self.server.enter_room(sid, room)

    # -- connection ----------------------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            async with self.db.session() as session:
                principal = await authenticate(session, token, self.clock())
        except BridgeError:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthenticated", {"code": "unauthenticated"}
            ) from None
        bucket = TokenBucket(self.settings.message_rate, self.settings.message_burst)
        state = SocketState(principal, principal.victim_device_id, bucket)
        self.sessions[sid] = state
        if principal.account_id is not None:
            await self.server.enter_room(sid, account_room(principal.account_id))
        if principal.role == "counsellor":
            await self.server.enter_room(sid, COUNSELLORS)
        _log.info("socket.connected", role=principal.role)

    async def _disconnect(self, sid: str, *_reason: Any) -> None:
        state = self.sessions.pop(sid, None)
        if state is None or self.stopping or state.principal.role not in ("victim", "counsellor"):
            return
        for conversation_id in state.conversations:
            try:
                if state.principal.role == "victim":
                    if not self.connections.victim_present(conversation_id):
                        await self.deliver(await self.bridges.victim_away(conversation_id))
                elif not self.connections.counsellor_present(conversation_id):
                    await self.deliver(await self.bridges.counsellor_away(conversation_id))
            except Exception:
                _log.exception("presence.failed", role=state.principal.role)

    # -- events --------------------------------------------------------------------------------

    async def _event(self, event: str, sid: str, *args: Any) -> dict[str, object]:
        state = self.sessions.get(sid)
        if state is None:
            return {"ok": False, "error": Forbidden("not connected").as_body()}
        async with state.lock:
            try:
                # A flood is refused before any work is done on it.
                if event == "message.send" and not state.messages.take():
                    raise RateLimited("too many messages; wait a moment")
                payload = decode_event(event, args)
                if state.principal.role not in EVENT_ROLES[event]:
                    raise Forbidden(f"a {state.principal.role} may not send {event}")
                if (
                    event != "device.register"
                    and state.principal.role != "victim"
                    and state.device_id is None
                ):
                    raise WrongState("register this device first (device.register)")
                ack = await self.handlers[event](state, sid, payload, args[0])
            except BridgeError as exc:
                self.events.labels(event if event in EVENT_ROLES else "unknown", exc.code).inc()
                return {"ok": False, "error": exc.as_body()}
            except Exception:
                _log.exception("event.failed", client_event=event)
                self.events.labels(event, "internal").inc()
                return {
                    "ok": False,
                    "error": Internal("something went wrong on the server").as_body(),
                }
            self.events.labels(event, "ok").inc()
            return {"ok": True, **ack}

    async def _device_register(
        self, state: SocketState, sid: str, p: DeviceRegister, raw: Any
    ) -> dict[str, object]:
        device_id = await register_device(
            self.db, self.log, state.principal, p.ed25519, p.x25519, p.sig, self.clock()
        )
        state.device_id = device_id
        principal = state.principal
        if principal.role == "officer" and principal.account_id is not None:
            on_duty = OnDutyOfficer(principal.account_id, principal.region, principal.gender)
            await self.deliver(await self.invites.officer_on_duty(on_duty))
        return {"device_id": device_id}

    async def _queue_list(
        self, state: SocketState, sid: str, p: Any, raw: Any
    ) -> dict[str, object]:
        return await self.conversations.queue()

    async def _conversation_join(
        self, state: SocketState, sid: str, p: ConversationRef, raw: Any
    ) -> dict[str, object]:
        outcome = await self.conversations.join(state.caller, p.conversation_id)
        await self._enter(sid, outcome.enter)
        state.conversations.add(p.conversation_id)
        await self.deliver(outcome.effects)
        return outcome.ack

    async def _message_send(
        self, state: SocketState, sid: str, p: MessageSend, raw: Any
    ) -> dict[str, object]:
        outcome = await self.conversations.send(state.caller, p.envelope, raw["envelope"])
        await self.deliver(outcome.effects)
        return outcome.ack

    async def _history_fetch(
        self, state: SocketState, sid: str, p: HistoryFetch, raw: Any
    ) -> dict[str, object]:
        return await self.transcripts.history(state.caller, p.conversation_id, p.after_seq, p.limit)

    async def _bridge_propose(
        self, state: SocketState, sid: str, p: BridgePropose, raw: Any
    ) -> dict[str, object]:
        outcome = await self.bridges.propose(state.caller, p)
        self.wake_expiry()
        await self.deliver(outcome.effects)
        return outcome.ack

    async def _consent_grant(
        self, state: SocketState, sid: str, p: ConsentGrant, raw: Any
    ) -> dict[str, object]:
        outcome = await self.bridges.grant(state.caller, p)
        self.wake_expiry()
        await self.deliver(outcome.effects)
        return outcome.ack

    async def _consent_decline(
        self, state: SocketState, sid: str, p: RequestRef, raw: Any
    ) -> dict[str, object]:
        return await self._run(self.bridges.decline(state.caller, p.request_id))

    async def _consent_withdraw(
        self, state: SocketState, sid: str, p: ConversationRef, raw: Any
    ) -> dict[str, object]:
        return await self._run(self.bridges.withdraw(state.caller, p.conversation_id))

    async def _history_share(
        self, state: SocketState, sid: str, p: HistoryShare, raw: Any
    ) -> dict[str, object]:
        return await self.conversations.share_history(state.caller, p, raw)

    async def _bridge_pause(
        self, state: SocketState, sid: str, p: ConversationRef, raw: Any
    ) -> dict[str, object]:
        return await self._run(self.bridges.pause(state.caller, p.conversation_id))

    async def _bridge_resume(
        self, state: SocketState, sid: str, p: ConversationRef, raw: Any
    ) -> dict[str, object]:
        return await self._run(self.bridges.resume(state.caller, p.conversation_id))

    async def _invite_list(
        self, state: SocketState, sid: str, p: Any, raw: Any
    ) -> dict[str, object]:
        return await self.invites.list_invites(state.caller)

    async def _invite_accept(
        self, state: SocketState, sid: str, p: InviteRef, raw: Any
    ) -> dict[str, object]:
        outcome = await self.invites.accept_invite(state.caller, p.invite_id)
        await self._enter(sid, outcome.enter)
        await self.deliver(outcome.effects)
        return outcome.ack

    async def _bridge_end(
        self, state: SocketState, sid: str, p: ConversationRef, raw: Any
    ) -> dict[str, object]:
        return await self._run(self.bridges.end(state.caller, p.conversation_id))

    async def _conversation_close(
        self, state: SocketState, sid: str, p: ConversationRef, raw: Any
    ) -> dict[str, object]:
        outcome = await self.conversations.close(state.caller, p.conversation_id)
        await self.deliver(outcome.effects)
        return outcome.ack

    async def _run(self, call: Awaitable[Any]) -> dict[str, object]:
        outcome = await call
        await self.deliver(outcome.effects)
        ack: dict[str, object] = outcome.ack
        return ack
