"""The one event table: each client event of ``bridge.protocol.EVENTS`` with its handler, and
the one place that answers an event: the validation order, the role check and the ack.

PROTOCOL.md, "Socket.IO events": where several errors apply, ``invalid``/``too_large`` come
first, then ``forbidden``/``not_found``, then ``wrong_state``/``no_consent``, and so on. So here:
the socket must be connected and its session alive (``forbidden``, ``unauthenticated``), the
name known, a flood of ``message.send`` refused before any work (``rate_limited``, as
docs/protocol.md says), the payload valid; only then the role (``forbidden``), the registered
device of a staff socket (``wrong_state``), and the handler, whose return value is the ack.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import structlog

from bridge.domain.roles import Role
from bridge.edges.metrics import Metrics
from bridge.edges.socket.packets import Malformed
from bridge.edges.socket.sessions import Sessions, SocketState
from bridge.errors import (
    BridgeError,
    Forbidden,
    Internal,
    Invalid,
    RateLimited,
    Unauthenticated,
    WrongState,
)
from bridge.protocol import EVENTS, EVENTS_BY_NAME, ClientEvent, decode_payload

__all__ = ["Ack", "Call", "EventTable", "Routes"]

_log = structlog.get_logger("bridge.socket")

Ack = dict[str, object]
UNKNOWN: Final = "unknown"  # the metric label of every name that is no client event


@dataclass(frozen=True)
class Call:
    """One event as its handler sees it: the socket and the payload as sent."""

    sid: str
    state: SocketState
    raw: Any


H = TypeVar("H")
Handler = Callable[[Any, Call, Any], Awaitable[Ack]]


class Routes:
    """Handlers by event name, collected as they are declared (``@routes.on(name)``)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def on(self, name: str) -> Callable[[H], H]:
        if name not in EVENTS_BY_NAME:
            raise LookupError(f"{name!r} is no client event of bridge.protocol")
        if name in self.handlers:
            raise LookupError(f"{name!r} has a handler already")

        def register(handler: H) -> H:
            self.handlers[name] = handler  # type: ignore[assignment]
            return handler

        return register


@dataclass(frozen=True)
class _Row:
    event: ClientEvent
    handler: Handler


class EventTable:
    """Every client event with its handler; ``answer`` gives each event exactly one ack."""

    def __init__(
        self, routes: Routes, handlers: object, sessions: Sessions, metrics: Metrics
    ) -> None:
        missing = [e.name for e in EVENTS if e.name not in routes.handlers]
        if missing:
            raise LookupError(f"client events without a handler: {', '.join(missing)}")
        self.rows = {e.name: _Row(e, routes.handlers[e.name]) for e in EVENTS}
        self.handlers = handlers
        self.sessions = sessions
        self.metrics = metrics

    async def answer(self, name: str, sid: str, args: tuple[Any, ...]) -> Ack:
        """The ack of one client event, whatever it carries; never raises."""
        arrived = time.perf_counter()
        row = self.rows.get(name)
        label = name if row is not None else UNKNOWN
        error: BridgeError | None = None
        try:
            ack = await self._in_turn(row, name, sid, args)
        except BridgeError as exc:
            error = exc
        except Exception:
            _log.exception("event.failed", client_event=label)
            error = Internal("something went wrong on the server")
        code = None if error is None else error.code
        self.metrics.answered(label, code, time.perf_counter() - arrived)
        if error is not None:
            return {"ok": False, "error": error.as_body()}
        return {"ok": True, **ack}

    async def _in_turn(self, row: _Row | None, name: str, sid: str, args: tuple[Any, ...]) -> Ack:
        """The event handled once the socket's earlier events are."""
        state = self.sessions.sockets.get(sid)
        if state is None:
            raise Forbidden("not connected")
        async with state.lock:
            return await self._checked(row, name, sid, state, args)

    async def _checked(
        self, row: _Row | None, name: str, sid: str, state: SocketState, args: tuple[Any, ...]
    ) -> Ack:
        if self.sessions.over(state):
            self.sessions.end(sid, state)
            raise Unauthenticated("the session has ended; log in again")
        if row is None:
            raise Invalid(f"unknown event {name[:64]!r}")
        event = row.event
        # A flood is refused before any work is done on it.
        if event.name == "message.send" and not state.messages.take():
            raise RateLimited("too many messages; wait a moment")
        for arg in args:
            if isinstance(arg, Malformed):
                raise Invalid(arg.reason)
        payload = decode_payload(event.schema, args)
        role = state.principal.role
        if role not in event.roles:
            raise Forbidden(f"a {role} may not send {event.name}")
        if event.needs_device and role != Role.VICTIM and state.device_id is None:
            raise WrongState("register this device first (device.register)")
        return await row.handler(self.handlers, Call(sid, state, args[0]), payload)
