"""The Socket.IO edge: authentication on connect, one ack wrapper for every event, presence.

Each event is validated (bridge.protocol), checked for role and registration, handed to one core
call, and answered with ``{"ok": true, ...}`` or ``{"ok": false, "error": {code, message}}``.
Effects go out only after the core has committed. Events of one socket are handled one at a
time, in the order they arrived, so a client's messages keep their order.
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import engineio  # type: ignore[import-untyped]
import socketio  # type: ignore[import-untyped]
import structlog
from aiohttp.web import WebSocketResponse
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry, Counter
from socketio import packet

from bridge.config import Settings
from bridge.domain.auth import authenticate_token, valid_tokens
from bridge.domain.consent.bridges import Bridges
from bridge.domain.consent.invites import Invites
from bridge.domain.conversations import Conversations
from bridge.domain.core import Core
from bridge.domain.delivery import (
    COUNSELLORS,
    CloseRoom,
    Effect,
    Emit,
    OnDutyOfficer,
    account_room,
)
from bridge.domain.devices import register_device
from bridge.domain.transcripts import Transcripts
from bridge.edges.presence import Connections, SocketState
from bridge.errors import (
    BridgeError,
    Forbidden,
    Internal,
    Invalid,
    RateLimited,
    Unauthenticated,
    WrongState,
)
from bridge.limits import TokenBucket
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


class _EngineIO(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io's server, knowing the TCP transport of each websocket (to cut off a slow one)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.tcp: dict[str, asyncio.BaseTransport] = {}


class _Server(socketio.AsyncServer):  # type: ignore[misc]
    """Refuses client-sent ``connect``/``disconnect`` events and events without a name, and
    bounds what waits to be written to each socket.

    python-socketio would otherwise hand a client's ``connect`` event to the connect handler,
    letting a connected socket re-authenticate as someone else.
    """

    def __init__(self, *, queue_limit: int, **options: Any) -> None:
        super().__init__(**options)
        self.queue_limit = queue_limit

    def _engineio_server_class(self) -> type[_EngineIO]:
        return _EngineIO

    def _too_slow(self, eio_sid: str) -> bool:
        """Whether this client's outgoing queue is full; if so its connection is cut.

        engine.io queues packets for a websocket's writer without bound; a writer blocked on a
        full TCP buffer (a reader that does not keep up) makes the queue grow. Past
        ``queue_limit`` the TCP connection is aborted: the writer fails, engine.io closes the
        socket and the disconnect handler runs as for a lost connection. The client catches up
        from history when it comes back.
        """
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.queue.qsize() < self.queue_limit:
            return False
        transport = self.eio.tcp.pop(eio_sid, None)
        if transport is not None:
            _log.warning("socket.too_slow", queued=socket.queue.qsize())
            transport.abort()
        return True

    # Every packet for one client passes through one of these two: emits to rooms (encoded
    # once for all recipients) through the second, acks and disconnects through the first.
    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        if not self._too_slow(eio_sid):
            await super()._send_packet(eio_sid, pkt)

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        if not self._too_slow(eio_sid):
            await super()._send_eio_packet(eio_sid, eio_pkt)

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
    """engine.io's aiohttp websocket without permessage-deflate, and with its TCP transport
    known to the server while it is open (so that a reader too slow can be cut off).

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
        # The handler is the engine.io socket's bound method: its sid names this connection.
        sid = self.handler.__self__.sid
        if request.transport is not None:
            self.server.tcp[sid] = request.transport
        try:
            await self.handler(self)
        finally:
            self.server.tcp.pop(sid, None)
        return self._sock

    async def wait(self) -> str | bytes | None:
        """The next frame, or None (the client left) for a text frame engine.io cannot parse.

        engine.io parses frames outside its error handling: such a frame would escape as an
        exception, skip the socket's clean-up and leave a stale presence until the ping timeout.
        """
        data: str | bytes = await super().wait()
        if isinstance(data, str):
            try:
                engineio_packet.Packet(encoded_packet=data)
            except ValueError:
                # No closing handshake with a client that sends garbage: cut the connection.
                transport = self.server.tcp.get(self.handler.__self__.sid)
                if transport is not None:
                    transport.abort()
                return None
        return data


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
        # Open sockets per staff account and per victim token (SocketState.owner).
        self.owners: Tally[str] = Tally()
        self.stopping = False
        self.ending: set[asyncio.Task[None]] = set()
        # Set by the application once the expiry loop exists.
        self.wake_expiry: Callable[[], None] = lambda: None
        # Websocket only (as every client connects): one transport whose writer is bounded.
        self.server = _Server(
            async_mode="aiohttp",
            cors_allowed_origins=[],
            logger=False,
            engineio_logger=False,
            transports=["websocket"],
            max_http_buffer_size=settings.max_frame_bytes,
            queue_limit=settings.socket_queue_limit,
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
                credential = await authenticate_token(session, token, self.clock())
        except BridgeError:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthenticated", {"code": "unauthenticated"}
            ) from None
        principal = credential.principal
        bucket = TokenBucket(self.settings.message_rate, self.settings.message_burst)
        state = SocketState(
            principal,
            principal.victim_device_id,
            bucket,
            credential.token_hash,
            credential.expires_at,
        )
        limit = (
            self.settings.sockets_per_victim
            if principal.is_victim
            else self.settings.sockets_per_account
        )
        if self.owners[state.owner] >= limit:
            _log.info("socket.refused_too_many", role=principal.role)
            raise socketio.exceptions.ConnectionRefusedError(
                "rate_limited", {"code": "rate_limited"}
            )
        self.owners[state.owner] += 1
        self.sessions[sid] = state
        if principal.account_id is not None:
            await self.server.enter_room(sid, account_room(principal.account_id))
        if principal.role == "counsellor":
            await self.server.enter_room(sid, COUNSELLORS)
        _log.info("socket.connected", role=principal.role)

    async def _disconnect(self, sid: str, *_reason: Any) -> None:
        state = self.sessions.pop(sid, None)
        if state is None:
            return
        self.owners[state.owner] -= 1
        if self.owners[state.owner] <= 0:
            del self.owners[state.owner]
        if self.stopping or state.principal.role not in ("victim", "counsellor"):
            return
        for conversation_id in state.conversations:
            try:
                async with self.connections.settling(conversation_id):
                    effects = await self._away(state.principal.role, conversation_id)
                await self.deliver(effects)
            except Exception:
                _log.exception("presence.failed", role=state.principal.role)

    async def _away(self, role: str, conversation_id: str) -> list[Effect]:
        if role == "victim" and not self.connections.victim_present(conversation_id):
            return await self.bridges.victim_away(conversation_id)
        if role == "counsellor" and not self.connections.counsellor_present(conversation_id):
            return await self.bridges.counsellor_away(conversation_id)
        return []

    # -- sessions ------------------------------------------------------------------------------

    def _end(self, sid: str, state: SocketState) -> None:
        """Disconnect a socket whose session is over, after what it is being sent now (an ack)."""
        if state.ended:
            return
        state.ended = True
        _log.info("socket.session_ended", role=state.principal.role)
        task = asyncio.create_task(self.server.disconnect(sid))
        self.ending.add(task)
        task.add_done_callback(self.ending.discard)

    def end_token(self, token_hash: str) -> None:
        """A token was revoked in this process (a logout): its sockets go at once."""
        for sid, state in list(self.sessions.items()):
            if state.token_hash == token_hash:
                self._end(sid, state)

    async def check_sessions(self) -> None:
        """Disconnect every socket whose token expired or was revoked or whose account was
        disabled, with one query for all of them (the CLI disables accounts from another
        process, so the database is where that shows)."""
        hashes = {state.token_hash for state in self.sessions.values() if not state.ended}
        if not hashes:
            return
        async with self.db.session() as session:
            valid = await valid_tokens(session, hashes, self.clock())
        for sid, state in list(self.sessions.items()):
            if state.token_hash in hashes and state.token_hash not in valid:
                self._end(sid, state)

    async def run_session_checks(self) -> None:
        while True:
            await asyncio.sleep(self.settings.session_check_seconds)
            try:
                await self.check_sessions()
            except Exception:
                _log.exception("sessions.check_failed")

    # -- events --------------------------------------------------------------------------------

    async def _event(self, event: str, sid: str, *args: Any) -> dict[str, object]:
        state = self.sessions.get(sid)
        if state is None:
            return {"ok": False, "error": Forbidden("not connected").as_body()}
        async with state.lock:
            try:
                # An expired token is seen here from memory; a revoked one once it is checked.
                if state.ended or state.expires_at <= self.clock():
                    self._end(sid, state)
                    raise Unauthenticated("the session has ended; log in again")
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
        async with self.connections.settling(p.conversation_id):
            outcome = await self.conversations.join(state.caller, p.conversation_id)
            state.conversations.add(p.conversation_id)
        await self._enter(sid, outcome.enter)
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
