"""engine.io and python-socketio as the bridge runs them: long-polling and websocket, no
compression, a bounded queue per socket, and every packet a client sends read before the
library acts on it.

A packet that cannot be read is answered ``invalid`` where its ack id is known, and otherwise
ends the connection with a logged reason (never its content). Nothing a client sends raises
inside the library, and no packet is dropped without an answer or a close.

What each socket keeps, its pings and the websocket it reads are engine.io's, as ``engine``
sets them up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import socketio  # type: ignore[import-untyped]
import structlog
from socketio import packet

from bridge.edges.socket.engine import EngineIO, PlainWebSocket
from bridge.edges.socket.packets import Malformed, Packet, binary_values
from bridge.errors import BridgeError, Forbidden, Invalid

__all__ = ["Server"]

_log = structlog.get_logger("bridge.socket")


class Server(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, reading every client packet itself (``packets.Packet``),
    refusing client-sent ``connect``/``disconnect`` events, and bounding what waits to be
    written to each socket.

    python-socketio would otherwise hand a client's ``connect`` event to the connect handler,
    letting a connected socket re-authenticate as someone else.
    """

    def _get_event_handler(
        self, event: str, namespace: str, args: tuple[Any, ...]
    ) -> tuple[Any, tuple[Any, ...]]:
        handler, args = super()._get_event_handler(event, namespace, args)
        if event == "*" and handler is not None:
            # python-socketio hands the catch-all an event's name first, but not for an event
            # a client named "*" itself: the sid would come where the name goes.
            args = (event, *args)
        return handler, args

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
        self.eio._async = {**self.eio._async, "websocket": PlainWebSocket}
        self.queue_limit = queue_limit
        # Told the code of each packet answered here, before any handler (the errors counted).
        self.refused = refused
        self._closing: set[asyncio.Task[None]] = set()

    def _engineio_server_class(self) -> type[EngineIO]:
        return EngineIO

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
