"""engine.io as the bridge runs it, below python-socketio: what each socket keeps, its pings,
and the websocket it reads (``transport.Server`` builds on it).

What an idle socket keeps is kept small, as one process holds tens of thousands of them
(docs/performance.md, "Memory per idle socket"): its outgoing queue holds nothing while empty
(``_Outbox``), one task pings every socket in turn instead of a sleeping task each, and the
handshake's request and headers are let go once read and sent.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import engineio  # type: ignore[import-untyped]
import structlog
from aiohttp.web import WebSocketResponse
from engineio import exceptions as engineio_exceptions
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp  # type: ignore[import-untyped]
from engineio.async_socket import AsyncSocket  # type: ignore[import-untyped]

__all__ = ["EngineIO", "PlainWebSocket"]

_log = structlog.get_logger("bridge.socket")

PINGS_PER_TURN = 32  # pings sent before the ping task lets other work in


class _Outbox:
    """What waits to be sent to one client: asyncio.Queue as engine.io uses it (unbounded: get,
    put, task_done, join), holding nothing while it is empty.

    An asyncio.Queue is four deques of some 760 bytes each from the start (its items, getters,
    putters and the waiters of ``join``): 3 KiB of every idle socket for none of them in use.
    """

    __slots__ = ("_drained", "_getters", "_items", "_unfinished")

    def __init__(self) -> None:
        self._items: collections.deque[Any] | None = None
        self._getters: list[asyncio.Future[None]] = []
        self._unfinished = 0  # put and not yet task_done (what ``join`` waits for)
        self._drained: asyncio.Event | None = None  # only while someone joins

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)
        self._unfinished += 1
        self._wake_getter()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)  # unbounded: never waits

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                # Cancelled (a poll's timeout): gone from the getters, and an item it was woken
                # for goes to the next one, as asyncio.Queue does.
                getter.cancel()
                if getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_getter()
                raise
        return self.get_nowait()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._drained is not None:
            self._drained.set()
            self._drained = None

    async def join(self) -> None:
        if self._unfinished:
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()

    def _wake_getter(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return


class _GuardedSocket(AsyncSocket):  # type: ignore[misc]
    """engine.io's socket, answering a long-polling body it cannot read as a bad request,
    releasing a waiting poll when it is closed at once, and pinged by the server's one ping
    task (``EngineIO.ping_later``).

    engine.io decodes the body outside its handling of bad requests: an unreadable one (an
    empty packet, bytes that are not UTF-8) would be logged as a server error, answered 200 and
    the socket kept; one over the size limit would hang its request. Here the socket is closed
    and the request answered 400.
    """

    last_ping: float | None  # engine.io's: when the last ping went; None while one is due

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        try:
            await super().handle_post_request(environ)
        except (ValueError, engineio_exceptions.EngineIOError) as exc:  # UnicodeDecodeError too
            too_long = isinstance(exc, engineio_exceptions.ContentTooLongError)
            reason = "a long-polling body over the limit" if too_long else "an unreadable one"
            _log.warning("socket.closed_for_packet", reason=reason)
            # Closed here without waiting for its queue to drain (engine.io's own close would
            # wait for a poll that never comes, and hold this request open).
            await self.close(wait=False, abort=True)
            raise engineio_exceptions.UnknownPacketError() from None

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        await super().close(wait=wait, abort=abort, reason=reason)
        if abort:
            # Closed at once (the client's close packet, or a bad body): a long-poll still
            # waiting for packets is answered now, not held until the ping timeout.
            self.queue.put_nowait(None)

    def schedule_ping(self) -> None:
        # As engine.io's own: one ping after each pong (and after the handshake), not two.
        if self.last_ping:
            self.last_ping = None
            self.server.ping_later(self)


class EngineIO(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io's server, knowing the TCP transport of each websocket (to cut off a slow one),
    with its sockets guarded (``_GuardedSocket``), their queues ``_Outbox``es, and one task
    pinging them all."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.tcp: dict[str, asyncio.BaseTransport] = {}
        # Sockets to ping, in the order they are due: each is due ``ping_interval`` after it
        # was put here, so the order they came in is the order they are due in.
        self._pings: collections.deque[tuple[float, _GuardedSocket]] = collections.deque()
        self._pinger: asyncio.Task[None] | None = None

    def create_queue(self, *args: Any, **kwargs: Any) -> _Outbox:
        return _Outbox()

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            # engine.io makes its sockets itself (in _handle_connect) and tells of each here
            # first: guarded before its first ping is scheduled or any body of it is read.
            self.sockets[args[0]].__class__ = _GuardedSocket
        return await super()._trigger_event(event, *args, **kwargs)

    def ping_later(self, socket: _GuardedSocket) -> None:
        """Ping ``socket`` in ``ping_interval`` seconds (what a task of its own per socket did,
        a task, its frame and a timer each; here one entry in a queue)."""
        due = asyncio.get_running_loop().time() + self.ping_interval
        self._pings.append((due, socket))
        if self._pinger is None:
            self._pinger = asyncio.create_task(self._ping_due())

    async def shutdown(self) -> None:
        await super().shutdown()
        if self._pinger is not None:
            self._pinger.cancel()

    async def _ping_due(self) -> None:
        loop = asyncio.get_running_loop()
        sent = 0
        try:
            while self._pings:
                due, socket = self._pings[0]
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                    continue
                self._pings.popleft()
                if socket.closing or socket.closed:
                    continue
                socket.last_ping = time.time()
                try:
                    await socket.send(engineio_packet.Packet(engineio_packet.PING))
                except Exception:
                    _log.exception("socket.ping_failed")
                sent += 1
                if sent % PINGS_PER_TURN == 0:
                    # Sockets opened together fall due together, and each ping is a frame
                    # written and a pong read: a thousand at once held every message behind
                    # them for a quarter of a second. Others go in between.
                    await asyncio.sleep(0)
        finally:
            self._pinger = None


class PlainWebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
    """engine.io's aiohttp websocket without permessage-deflate, and with its TCP transport
    known to the server while it is open (so that a reader too slow can be cut off).

    Frames are ciphertext, which does not compress, and each deflate context costs about 100 KiB,
    over twice an idle socket's memory (docs/performance.md, "Memory per idle socket").
    """

    async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        # What would otherwise stay with the socket as long as it is open, read by nothing:
        # the handshake's headers, sent (the security headers among them, and multidict's copy
        # of them serialized), and the request's environ, which engine.io has read (the upgrade
        # headers) and the bridge does not (``Server._handle_eio_connect``).
        self._sock.headers.clear()
        environ.clear()
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
