"""engine.io and python-socketio as the bridge runs them: long-polling and websocket, no
compression, a bounded queue per socket, and every packet a client sends read before the
library acts on it.

A packet that cannot be read is answered ``invalid`` where its ack id is known, and otherwise
ends the connection with a logged reason (never its content). Nothing a client sends raises
inside the library, and no packet is dropped without an answer or a close.

What an idle socket keeps is kept small, as one process holds tens of thousands of them
(docs/performance.md, "Memory per idle socket"): its outgoing queue holds nothing while empty
(``_Outbox``), one task pings every socket in turn instead of a sleeping task each, and the
handshake's request and headers are let go once read and sent.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

import engineio  # type: ignore[import-untyped]
import socketio  # type: ignore[import-untyped]
import structlog
from aiohttp.web import WebSocketResponse
from engineio import exceptions as engineio_exceptions
from engineio import packet as engineio_packet
from engineio.async_drivers import aiohttp as engineio_aiohttp  # type: ignore[import-untyped]
from engineio.async_socket import AsyncSocket  # type: ignore[import-untyped]
from socketio import packet

from bridge.edges.socket.packets import Malformed, Packet, binary_values
from bridge.errors import BridgeError, Forbidden, Invalid

__all__ = ["Server"]

_log = structlog.get_logger("bridge.socket")


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
    task (``_EngineIO.ping_later``).

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


class _EngineIO(engineio.AsyncServer):  # type: ignore[misc]
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
        finally:
            self._pinger = None


class _PlainWebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
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


class Server(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, reading every client packet itself (``packets.Packet``),
    refusing client-sent ``connect``/``disconnect`` events, and bounding what waits to be
    written to each socket.

    python-socketio would otherwise hand a client's ``connect`` event to the connect handler,
    letting a connected socket re-authenticate as someone else.
    """

    def __init__(
        self,
        *,
        queue_limit: int,
        max_frame_bytes: int,
        refused: Callable[[str], None],
        manager: socketio.AsyncManager | None = None,
    ) -> None:
        # Socket.IO's own transports: long-polling, upgraded to a websocket where the network
        # lets one through (a victim behind Wi-Fi that blocks WebSockets still reaches help).
        super().__init__(
            async_mode="aiohttp",
            cors_allowed_origins=[],
            logger=False,
            engineio_logger=False,
            transports=["polling", "websocket"],
            # Ciphertext does not compress, and compressing answers beside what a client sent is
            # how BREACH-style attacks read secrets out of TLS: no compression on either transport.
            http_compression=False,
            max_http_buffer_size=max_frame_bytes,
            serializer=Packet,
            # Several nodes: python-socketio's Redis manager (bridge.adapters.redis_fanout).
            client_manager=manager,
        )
        self.eio._async = {**self.eio._async, "websocket": _PlainWebSocket}
        self.queue_limit = queue_limit
        # Told the code of each packet answered here, before any handler (the errors counted).
        self.refused = refused
        self._closing: set[asyncio.Task[None]] = set()

    def _engineio_server_class(self) -> type[_EngineIO]:
        return _EngineIO

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        # python-socketio keeps a socket's environ for its connect handlers, which read none of
        # it (a socket speaks for its token, not its request); kept, it would hold the whole
        # handshake request of a long-polling socket, headers and all, as long as it is open.
        return await super()._handle_eio_connect(eio_sid, {})

    # -- outgoing ----------------------------------------------------------------------------

    def _too_slow(self, eio_sid: str) -> bool:
        """Whether this client's outgoing queue is full; if so its connection is cut.

        engine.io queues packets for a client without bound: for a websocket writer blocked on a
        full TCP buffer, or for a long-polling client that does not come back for them (a
        reader that does not keep up). Past ``queue_limit`` a websocket's TCP connection is
        aborted (the writer fails and engine.io closes the socket), a long-polling socket is
        closed; either way the disconnect handler runs as for a lost connection, and the client
        catches up from history when it comes back.
        """
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.queue.qsize() < self.queue_limit:
            return False
        if getattr(socket, "cut_off", False):
            return True  # being let go already: what comes now is not queued
        socket.cut_off = True
        _log.warning("socket.too_slow", queued=socket.queue.qsize())
        transport = self.eio.tcp.pop(eio_sid, None)
        if transport is not None:
            transport.abort()
        else:
            closing = asyncio.create_task(socket.close(wait=False, abort=True))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        return True

    # Every packet for one client passes through one of these two: emits to rooms (encoded
    # once for all recipients) through the second, acks and disconnects through the first.
    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        if not self._too_slow(eio_sid):
            await super()._send_packet(eio_sid, pkt)

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        if not self._too_slow(eio_sid):
            await super()._send_eio_packet(eio_sid, eio_pkt)

    # -- incoming ----------------------------------------------------------------------------

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        """One engine.io message: a Socket.IO packet (text) or a binary attachment (bytes).

        Runs without an ``await`` until the pending binary packet is settled, so the messages
        of one socket, each handled in a task of its own, see it in arrival order.
        """
        pending = self._binary_packet.pop(eio_sid, None)
        if isinstance(data, bytes):
            if pending is None:
                await self._cut(eio_sid, "a binary attachment that no packet announced")
                return
            pending.received += 1
            if pending.received < pending.attachment_count:
                self._binary_packet[eio_sid] = pending
                return
            await self._dispatch(eio_sid, pending)
            return
        if pending is not None:
            # A packet while attachments are due: the binary packet before it lost some. It is
            # answered first, then this one is read as what it is.
            missing = Invalid("a binary attachment is missing")
            if not await self._refuse(eio_sid, pending.namespace, pending.id, missing):
                return
        try:
            pkt = self.packet_class(encoded_packet=data)
        except (ValueError, TypeError):
            # The header itself (type, attachment count, namespace or ack id) is unreadable.
            await self._cut(eio_sid, "a packet that is not Socket.IO")
            return
        await self._route(eio_sid, pkt)

    async def _route(self, eio_sid: str, pkt: Any) -> None:
        kind = pkt.packet_type
        if kind == packet.CONNECT:
            if self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/") is not None:
                await self._cut(eio_sid, "a second connect on one connection")
                return
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif kind in (packet.EVENT, packet.ACK):
            await self._dispatch(eio_sid, pkt)
        elif kind in (packet.BINARY_EVENT, packet.BINARY_ACK):
            pkt.received = 0
            if pkt.attachment_count == 0:
                await self._dispatch(eio_sid, pkt)
            else:
                self._binary_packet[eio_sid] = pkt
        else:
            await self._cut(eio_sid, "a packet type a client does not send")

    async def _dispatch(self, eio_sid: str, pkt: Any) -> None:
        data = pkt.data
        if pkt.packet_type in (packet.BINARY_EVENT, packet.BINARY_ACK):
            data = binary_values(data, pkt.attachment_count)
        if pkt.packet_type in (packet.ACK, packet.BINARY_ACK):
            # The server asks for no acks: python-socketio ignores one it did not ask for.
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, data)
        else:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, data)

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: Any
    ) -> None:
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            await self._refuse(eio_sid, namespace, id, Forbidden("not connected"))
            return
        if (
            not isinstance(data, list)
            or not data
            or not isinstance(data[0], str)
            or data[0] in self.reserved_events
        ):
            await self._refuse(eio_sid, namespace, id, Invalid("not an event a client may send"))
            return
        if id is None and any(isinstance(arg, Malformed) for arg in data):
            # The event table would answer it, but without an ack id nothing can be.
            await self._cut(eio_sid, "an unreadable payload without an ack id")
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _refuse(
        self, eio_sid: str, namespace: str | None, id: int | None, error: BridgeError
    ) -> bool:
        """Answer a packet that reaches no handler; without an ack id, end the connection.
        Returns whether the connection stays."""
        if id is None:
            await self._cut(eio_sid, error.message)
            return False
        self.refused(error.code)
        body = {"ok": False, "error": error.as_body()}
        ack = self.packet_class(packet.ACK, namespace=namespace or "/", id=id, data=[body])
        await self._send_packet(eio_sid, ack)
        return True

    async def _cut(self, eio_sid: str, reason: str) -> None:
        """End a connection that sent what cannot be answered: a Socket.IO disconnect (the
        disconnect handler lets its presence go), then engine.io's close."""
        _log.warning("socket.closed_for_packet", reason=reason)
        self._binary_packet.pop(eio_sid, None)
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is not None and self.manager.is_connected(sid, "/"):
            await self.disconnect(sid)
        await self.eio.disconnect(eio_sid)
