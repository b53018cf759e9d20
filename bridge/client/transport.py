"""The client's Socket.IO transport: calls with an ack, reconnecting and resuming, and the outbox
of messages not yet acknowledged (docs/protocol.md, "Delivery and resume").

After :meth:`Transport.connect`, a connection that drops without the client asking (the network,
a server restart, the server closing a slow socket) is opened again by itself, with growing,
jittered pauses (``reconnect_delay`` doubling up to ``reconnect_delay_max``). On each automatic
reconnect the client *resumes*: it registers its staff device again (same keys, same
``device_id``), joins every conversation it had joined, fetches with ``history.fetch`` what came
after the last message it saw (page by page), then sends every envelope not yet acknowledged
again, in the original order and with the same ``client_msg_id`` (the server answers a true
resend with the original seq). A refused connect (``unauthenticated``, ``rate_limited``) stops
reconnecting: ``failure`` holds the error and waiting sends and :meth:`Transport.resumed` raise
it. :meth:`Transport.disconnect` never reconnects; set ``auto_reconnect = False`` to bring a
client back only by hand (:meth:`Transport.reconnect` resumes the same way). A client holds one
Socket.IO connection at a time, one HTTP session for all its reconnects, and starts no task per
message.

* :meth:`Transport.post` issued while the connection is down waits up to ``send_wait`` seconds
  for the resume instead of failing at once; any other call fails at once with
  :class:`ConnectionLost`, as does a call in flight when the connection drops.
* ``resumes`` counts finished resumes; ``await client.resumed(n)`` waits until ``n`` have
  finished (without ``n``: the one under way, if any), so tests and benches know that a
  resume is complete: ``n = c.resumes; <drop>; await c.resumed(n + 1)``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from typing import Any

import aiohttp
import socketio  # type: ignore[import-untyped]

from bridge.client.network import Network
from bridge.client.wire import JSON, SERVER_EVENTS, ConnectionLost, Refused

__all__ = ["Transport"]

_log = logging.getLogger(__name__)


class Transport:
    """One Socket.IO connection at a time to ``base_url``, brought back after a drop.

    Server events are put on ``_inbox`` as ``(name, payload)`` in the order they arrived; the
    subclass processes them. The subclass's :meth:`_catch_up` and :meth:`_register_again` are
    the resume's steps before the outbox is sent again. The reconnect settings are plain
    attributes, to change after construction.
    """

    auto_reconnect: bool = True  # reconnect by itself after an unexpected drop
    reconnect_delay: float = 0.25  # seconds before the first attempt (jittered), then doubled
    reconnect_delay_max: float = 5.0
    send_wait: float = 60.0  # how long a send waits for the connection to be back
    # Engine.IO transports to try, in order; ("polling", "websocket") upgrades as browsers do.
    transports: tuple[str, ...] = ("websocket",)

    def __init__(
        self, base_url: str, *, ack_timeout: float = 10.0, network: Network | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.network = network or Network()
        self.ack_timeout = ack_timeout
        self.token: str | None = None
        self.resumes = 0
        self.failure: Refused | None = None  # why reconnecting stopped
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._sio: socketio.AsyncClient | None = None
        self._socket_http: aiohttp.ClientSession | None = None
        self._connect_error: Any = None
        self._wanted = False  # connected on purpose: reconnect after a drop
        self._ready = False  # connected, and resumed if this connection is a reconnect
        self._changed = asyncio.Event()  # set (and replaced) whenever the two above change
        self._reconnect_task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Future[Any]] = set()  # acks awaited on the current socket
        self._unacked: dict[str, JSON] = {}  # client_msg_id -> envelope, in the order sent
        self._waiting: dict[str, int | Refused | None] = {}  # posts waiting for a resume

    @property
    def sid(self) -> str | None:
        """The Socket.IO session id of the connection open now, if any."""
        return None if self._sio is None else self._sio.get_sid()

    # --- connecting ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the Socket.IO connection with ``auth={"token": token}``; from now on a drop is
        followed by reconnecting and resuming (see the module's docstring).

        A refused connect raises :class:`Refused` with the server's code (``unauthenticated``);
        any other failure raises python-socketio's ``ConnectionError``. This call itself does not
        register, join or resume: the caller does what it needs.
        """
        self._stop_reconnecting()
        self.failure = None
        await self._open_socket()
        self._wanted = True
        self._set_ready(True)

    async def _open_socket(self) -> None:
        if self._socket_http is None:  # one session for every (re)connect of this client
            self._socket_http = self.network.session()
        # Reconnecting is ours (see _reconnect): python-socketio's gives up after the server
        # closes a socket, which is what a restart or a slow consumer looks like.
        sio = socketio.AsyncClient(reconnection=False, http_session=self._socket_http)
        sio.on("connect_error", self._on_connect_error)
        sio.on("disconnect", functools.partial(self._on_disconnect, sio))
        for name in SERVER_EVENTS:
            sio.on(name, functools.partial(self._enqueue, name))
        self._connect_error = None
        self._sio = sio  # so that a drop right after the handshake is seen as one
        try:
            await sio.connect(
                self.base_url,
                auth={"token": self.token},
                transports=list(self.transports),
                socketio_path="socket.io",
                wait_timeout=self.ack_timeout,
            )
        except BaseException as exc:
            if self._sio is sio:
                self._sio = None
            if not isinstance(exc, socketio.exceptions.ConnectionError):
                raise
            refusal = self._connect_error  # {message, data: {code}} from a refused connect
            data = refusal.get("data") if isinstance(refusal, dict) else None
            if not isinstance(data, dict) or "code" not in data:
                raise
            raise Refused(str(data["code"]), str(refusal.get("message"))) from None
        if self._sio is not sio:
            raise ConnectionLost("the connection dropped at once")

    async def disconnect(self) -> None:
        """Close the Socket.IO connection, if any, and do not reconnect; everything else is
        kept."""
        self._wanted = False
        self._stop_reconnecting()
        sio, self._sio = self._sio, None
        self._lost()
        if sio is not None:
            await sio.disconnect()

    async def reconnect(self) -> None:
        """Disconnect, connect again with the same token and resume (as after a drop)."""
        await self.disconnect()
        await self.connect()
        self._set_ready(False)
        await self._resume()
        self.resumes += 1
        self._set_ready(True)

    async def resumed(
        self,
        count: int | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - part of this helper's contract
    ) -> None:
        """Wait until ``count`` resumes have finished and the client is connected (without
        ``count``: until the resume under way, if any, has). Raises the refusal that stopped
        reconnecting, :class:`ConnectionLost` if the client is not meant to be connected, and
        ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                if self.failure is not None:
                    raise self.failure
                if not self._wanted:
                    raise ConnectionLost("not connected")
                if self._ready and (count is None or self.resumes >= count):
                    return
                await self._changed.wait()

    async def _close_socket_session(self) -> None:
        session, self._socket_http = self._socket_http, None
        if session is not None:
            await session.close()

    def _set_ready(self, ready: bool) -> None:
        self._ready = ready
        self._changed.set()
        self._changed = asyncio.Event()

    def _stop_reconnecting(self) -> None:
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _lost(self) -> None:
        """The socket is gone: calls waiting for an ack on it fail now, not after a timeout."""
        self._set_ready(False)
        calls, self._calls = self._calls, set()
        for future in calls:
            if not future.done():
                future.set_exception(ConnectionLost("the connection dropped"))

    def _on_connect_error(self, data: Any = None) -> None:
        self._connect_error = data

    def _on_disconnect(self, sio: socketio.AsyncClient, *_reason: Any) -> None:
        if sio is not self._sio:
            return  # a socket this client already let go of
        self._sio = None
        self._lost()
        if self._wanted and self.auto_reconnect and self._reconnect_task is None:
            self._reconnect_task = asyncio.create_task(self._reconnect())

    def _enqueue(self, name: str, *args: Any) -> None:
        # Runs synchronously in python-socketio's per-packet task, so arrival order is kept.
        self._inbox.put_nowait((name, args[0] if len(args) == 1 else list(args)))

    # --- reconnecting and resuming -------------------------------------------------------------

    async def _reconnect(self) -> None:
        """Connect again with jittered back-off, then resume; stop on a refusal."""
        delay = self.reconnect_delay
        try:
            while self._wanted:
                # Jitter spreads a crowd of clients that lost the same server.
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.reconnect_delay_max)
                try:
                    await self._open_socket()
                except Refused as refusal:
                    await self._give_up(refusal)
                    return
                except (socketio.exceptions.ConnectionError, ConnectionError, TimeoutError):
                    continue  # ConnectionError covers ConnectionLost and refused TCP connects
                try:
                    await self._resume()
                except (ConnectionLost, TimeoutError):
                    continue  # dropped again while resuming: start over
                except Refused as refusal:  # e.g. the device: trying again repeats it
                    await self._give_up(refusal)
                    return
                except Exception as exc:  # an answer that makes no sense: the same
                    _log.exception("resume failed")
                    await self._give_up(Refused("internal", repr(exc)))
                    return
                if self._sio is None:
                    continue  # dropped after the last answer
                self.resumes += 1
                self._set_ready(True)
                return
        finally:
            if self._reconnect_task is asyncio.current_task():
                self._reconnect_task = None

    async def _give_up(self, failure: Refused) -> None:
        """Stop reconnecting: ``failure`` is what waiting sends and ``resumed`` raise."""
        _log.warning("reconnecting stopped: %s", failure.code)
        self.failure, self._wanted = failure, False
        sio, self._sio = self._sio, None
        self._lost()
        if sio is not None:
            await sio.disconnect()

    async def _register_again(self) -> None:
        """Resume's first step; staff register their device again."""

    async def _catch_up(self) -> None:
        """Resume's second step: join again and fetch what was missed."""

    async def _resume(self) -> None:
        """Register again, re-join and catch up, then resend the unacked."""
        await self._register_again()
        await self._catch_up()
        for client_msg_id, envelope in list(self._unacked.items()):
            await self._resend_unacked(client_msg_id, envelope)

    async def _resend_unacked(self, client_msg_id: str, envelope: JSON) -> None:
        while True:
            try:
                ack = await self.call("message.send", {"envelope": envelope})
            except Refused as refusal:
                if refusal.code == "rate_limited":
                    await asyncio.sleep(0.5)  # the socket's bucket refills; try again
                    continue
                result: int | Refused = refusal  # refused for good: the sender hears why
            else:
                result = int(ack["seq"])
            break
        self._unacked.pop(client_msg_id, None)
        if client_msg_id in self._waiting:
            self._waiting[client_msg_id] = result

    # --- calls ---------------------------------------------------------------------------------

    async def call_raw(self, event: str, *args: object) -> Any:
        """Emit ``event`` with exactly ``args`` as its payloads (none, one or several) and return
        the ack as received. Raises ``TimeoutError`` if no ack comes within ``ack_timeout`` and
        :class:`ConnectionLost` if the connection is down or drops first."""
        sio = self._sio
        if sio is None:
            raise ConnectionLost("not connected")
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def acked(*data: Any) -> None:
            if not answer.done():  # as python-socketio's call(): one value, a list, or None
                answer.set_result(data[0] if len(data) == 1 else list(data) if data else None)

        self._calls.add(answer)
        try:  # python-socketio sends a tuple's items as the event's arguments
            await sio.emit(event, args, callback=acked)
            async with asyncio.timeout(self.ack_timeout):
                return await answer
        except TimeoutError:
            raise TimeoutError(f"no ack for {event} within {self.ack_timeout} s") from None
        except socketio.exceptions.SocketIOError:  # the socket closed under the emit
            raise ConnectionLost("the connection dropped") from None
        finally:
            self._calls.discard(answer)

    async def call(self, event: str, payload: object) -> JSON:
        """Emit ``event`` with one payload; return the ack if ``ok``, else raise Refused."""
        ack = await self.call_raw(event, payload)
        if not isinstance(ack, dict):
            raise Refused("internal", f"malformed ack for {event}: {ack!r}")
        if ack.get("ok") is not True:
            error = ack.get("error")
            if not isinstance(error, dict):
                raise Refused("internal", f"malformed ack for {event}: {ack!r}")
            raise Refused(str(error.get("code")), str(error.get("message")))
        return ack

    async def post(self, envelope: JSON) -> int:
        """Send ``envelope`` with ``message.send``; return the sequence number it was given.

        Until acknowledged, the envelope is kept and sent again by every resume. While the
        connection is down (or when it drops before the ack) this waits for the resume, at most
        ``send_wait`` seconds (then ``TimeoutError``; the envelope is still resent by a later
        resume). A refusal raises :class:`Refused` and the envelope is dropped.
        """
        client_msg_id = str(envelope["client_msg_id"])
        self._unacked.setdefault(client_msg_id, envelope)
        deadline = asyncio.get_running_loop().time() + self.send_wait
        while True:
            if not self._ready and (self._wanted or self.failure):  # down: wait for the resume
                self._waiting[client_msg_id] = None
                try:
                    await self._until_ready(deadline)
                finally:
                    result = self._waiting.pop(client_msg_id, None)
                if isinstance(result, Refused):
                    raise result
                if result is not None:
                    return result  # the resume sent it
            try:
                ack = await self.call("message.send", {"envelope": envelope})
            except ConnectionLost:
                if not self._wanted:
                    raise
                continue
            except Refused:
                self._unacked.pop(client_msg_id, None)
                raise
            self._unacked.pop(client_msg_id, None)
            return int(ack["seq"])

    async def _until_ready(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._ready:
            if self.failure is not None:
                raise self.failure
            if not self._wanted:
                raise ConnectionLost("not connected")
            changed = self._changed
            try:
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            except TimeoutError:
                if loop.time() >= deadline:
                    raise TimeoutError("the connection was not back in time") from None
