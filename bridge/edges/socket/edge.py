"""The Socket.IO edge: authentication on connect, presence on disconnect, every event answered
through the one event table, and this process's sockets as the fan-out reaches them.

Events of one socket are handled one at a time, in the order they arrived, so a client's
messages keep their order. Effects go out only after the core has committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import socketio  # type: ignore[import-untyped]
import structlog

from bridge.config import Settings
from bridge.domain.auth import authenticate_token
from bridge.domain.delivery import COUNSELLORS, SUPERVISORS, Effect, account_room
from bridge.domain.fanout import Fanout
from bridge.domain.roles import Role
from bridge.edges.metrics import Metrics
from bridge.edges.socket.handlers import ROUTES, Domain, Handlers
from bridge.edges.socket.sessions import Connections, Sessions
from bridge.edges.socket.table import Ack, EventTable
from bridge.edges.socket.transport import Server
from bridge.errors import BridgeError, RateLimited

__all__ = ["SocketEdge"]

_log = structlog.get_logger("bridge.socket")


def _refused(code: str) -> socketio.exceptions.ConnectionRefusedError:
    """PROTOCOL.md, "HTTP": a refused connect carries its code as the error's data."""
    return socketio.exceptions.ConnectionRefusedError(code, {"code": code})


class SocketEdge:
    """The Socket.IO server of the bridge, and the presence the core reads."""

    def __init__(
        self,
        domain: Domain,
        metrics: Metrics,
        connections: Connections,
        settings: Settings,
        fanout: Fanout,
        manager: socketio.AsyncManager | None = None,
    ) -> None:
        core = self.core = domain.core
        self.bridges = domain.bridges
        self.connections = connections
        self.fanout = fanout
        self.metrics = metrics
        self.stopping = False
        self.server = Server(
            queue_limit=settings.socket_queue_limit,
            max_frame_bytes=settings.max_frame_bytes,
            refused=metrics.error,
            manager=manager,
        )
        self.sessions = Sessions(connections, core.db, settings, core.clock, self.server.disconnect)
        self.handlers = Handlers(domain, connections, fanout, self._enter)
        self.table = EventTable(ROUTES, self.handlers, self.sessions, metrics)
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnect)
        self.server.on("*", self._event)

    @property
    def wake_expiry(self) -> Callable[[], None]:
        return self.handlers.wake_expiry

    @wake_expiry.setter
    def wake_expiry(self, wake: Callable[[], None]) -> None:
        self.handlers.wake_expiry = wake

    def end_token(self, token_hash: str) -> None:
        self.sessions.end_token(token_hash)

    async def check_sessions(self) -> None:
        await self.sessions.check()

    async def run_session_checks(self) -> None:
        await self.sessions.run_checks()

    # -- the sockets, as the fan-out reaches them (bridge.domain.fanout.Sockets) ---------------

    async def emit(
        self, event: str, payload: dict[str, object], rooms: list[str], skip_sid: str | None
    ) -> None:
        await self.server.emit(event, payload, to=rooms, skip_sid=skip_sid)
        self.metrics.delivered(event)

    async def close_room(self, room: str) -> None:
        await self.server.close_room(room)

    async def _enter(self, sid: str, rooms: Iterable[str]) -> None:
        for room in rooms:
            await self.server.enter_room(sid, room)

    async def shutdown(self) -> None:
        """Close every socket before the server stops, so clients reconnect elsewhere at once.

        A server going away is nobody leaving: presence is not acted on, and on the next start
        every joined bridge waits for its counsellor (``pause_all_after_restart``)."""
        self.stopping = True
        for sid in list(self.sessions.sockets):
            await self.server.disconnect(sid)
        await self.server.shutdown()

    # -- connection ----------------------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            async with self.core.db.reading() as session:
                credential = await authenticate_token(session, token, self.core.clock())
        except BridgeError:
            raise _refused("unauthenticated") from None
        try:
            state = await self.sessions.open(sid, credential)
        except RateLimited:
            raise _refused("rate_limited") from None
        principal = state.principal
        if principal.account_id is not None:
            await self.server.enter_room(sid, account_room(principal.account_id))
        if principal.role == Role.COUNSELLOR:
            await self.server.enter_room(sid, COUNSELLORS)
        if principal.role == Role.SUPERVISOR:
            await self.server.enter_room(sid, SUPERVISORS)
        _log.info("socket.connected", role=principal.role)

    async def _disconnect(self, sid: str, *_reason: Any) -> None:
        if self.stopping:
            return  # a server going away is nobody leaving (``shutdown``)
        state = await self.sessions.close(sid)
        if state is None:
            return
        for conversation_id in state.conversations:
            await self.departed(state.principal.role, conversation_id)

    async def departed(self, role: str, conversation_id: str) -> None:
        """A socket of ``role`` left the conversation (here, or on a node that died): if it was
        the victim's or counsellor's last, the police part pauses."""
        presence = self.connections.board
        try:
            async with presence.settling(conversation_id):
                effects: list[Effect] = []
                if role == Role.VICTIM and not await presence.victim_present(conversation_id):
                    effects = await self.bridges.victim_away(conversation_id)
                elif role == Role.COUNSELLOR and not await presence.counsellor_present(
                    conversation_id
                ):
                    effects = await self.bridges.counsellor_away(conversation_id)
            await self.fanout.deliver(effects)
        except Exception:
            _log.exception("presence.failed", role=role)

    async def _event(self, event: str, sid: str, *args: Any) -> Ack:
        return await self.table.answer(event, sid, args)
