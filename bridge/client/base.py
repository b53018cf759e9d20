"""Async Python client of the Fier bridge: one object per connected party.

Used by the integration tests, the demo, bots and adapters. It speaks PROTOCOL.md and does all
cryptography client-side with ``bridge.crypto``: the server never gets a private key or plaintext.

* Every client->server event is sent with an acknowledgement; :meth:`BridgeClient.call` returns
  the ack of an accepted event and raises :class:`Refused` (with the protocol's error code)
  for a rejected one, so a caller never mistakes a refusal for success.
* Server events are recorded in the order they arrived, both in ``received`` and on one queue per
  event name. They are processed only after any ``conversation.join``/``invite.accept`` in flight
  has been applied, so a message that races its join ack is still verified and decrypted.
* A received message is marked ``verified`` only if its signature checks against the device key
  of a participant the client knows, with the role the envelope claims; only verified messages
  are decrypted. ``messages`` holds each message once, keyed by its sequence number.

Resume (docs/protocol.md, "Delivery and resume"). After :meth:`BridgeClient.connect`, a
connection that drops without the client asking (the network, a server restart, the server
closing a slow socket) is opened again by itself, with growing, jittered pauses
(``reconnect_delay`` doubling up to ``reconnect_delay_max``). On each automatic reconnect the
client *resumes*: it registers its staff device again (same keys, same ``device_id``), joins every
conversation it had joined, fetches with ``history.fetch`` what came after the last message it
saw (page by page), then sends every envelope not yet acknowledged again, in the original order
and with the same ``client_msg_id`` (the server answers a true resend with the original seq).
Messages learnt that way are put on the ``message`` queue as if they had arrived live, and a live
``message`` already seen is not queued again, so each message is queued once. A refused connect
(``unauthenticated``, ``rate_limited``) stops reconnecting: ``failure`` holds the error and
waiting sends and :meth:`BridgeClient.resumed` raise it. :meth:`BridgeClient.disconnect` and
:meth:`BridgeClient.aclose` never reconnect; set ``auto_reconnect = False`` to bring a client
back only by hand (:meth:`BridgeClient.reconnect` resumes the same way). A client holds one
Socket.IO connection at a time, one HTTP session for all its reconnects, and starts no task per
message.

* ``post``/``send`` issued while the connection is down wait up to ``send_wait`` seconds for
  the resume instead of failing at once; any other call fails at once with
  :class:`ConnectionLost`, as does a call in flight when the connection drops.
* ``resumes`` counts finished resumes; ``await client.resumed(n)`` waits until ``n`` have
  finished (without ``n``: the one under way, if any), so tests and benches know that a
  resume is complete: ``n = c.resumes; <drop>; await c.resumed(n + 1)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import aiohttp
import socketio  # type: ignore[import-untyped]
from nacl.public import PrivateKey

from bridge import crypto

__all__ = [
    "SERVER_EVENTS",
    "BridgeClient",
    "ConnectionLost",
    "Conversation",
    "CounsellorClient",
    "DecryptedMessage",
    "OfficerClient",
    "Refused",
    "StaffClient",
    "VictimClient",
]

JSON = dict[str, Any]

SERVER_EVENTS: Final = (  # every server->client event of PROTOCOL.md
    "message",
    "consent.prompt",
    "bridge.state",
    "invite",
    "participant",
    "queue",
    "conversation.closed",
)
BOTH_SCOPES: Final = ("care", "investigation")
HISTORY_PAGE: Final = 500  # the largest ``limit`` history.fetch takes
_CURRENT: Final = "<current epoch>"  # default of ``epoch_id``: the epoch the client knows

_log = logging.getLogger(__name__)


class Refused(Exception):
    """A refusal by the server: an ``{"ok": false}`` ack, an HTTP error body or a refused connect.

    ``code`` is the protocol's error code (``invalid``, ``forbidden``, ...), ``message`` the
    server's text and ``status`` the HTTP status (``None`` for Socket.IO).
    """

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class ConnectionLost(ConnectionError):
    """The Socket.IO connection is down (or dropped before the answer came)."""


@dataclass(frozen=True)
class DecryptedMessage:
    """One message as this client sees it.

    ``text`` and ``sent_at`` are ``None`` when the message was not verified or this client holds
    no key that opens it. ``envelope`` is the envelope exactly as the server relayed it.
    """

    seq: int
    sender_role: str
    sender_device_id: str
    kind: str
    audience: list[str]
    epoch_id: str | None
    text: str | None
    sent_at: str | None
    server_time: str
    verified: bool
    conversation_id: str
    envelope: JSON = field(repr=False)


@dataclass
class Conversation:
    """What a client knows of one conversation: keys to seal to, signers, bridge and messages.

    ``sealed`` maps ``"care"`` or an epoch id to the sealed private scope key the server handed
    this client; ``opened`` caches the ones opened with the org key. ``seen_seq`` is where a
    resume fetches history from: the conversation's last seq when first joined, then the last
    seq up to which this client has every message it can read.
    """

    conversation_id: str
    state: str | None = None
    last_seq: int = 0
    victim_device: JSON | None = None
    care_public: str | None = None
    epoch: JSON | None = None
    bridge: JSON | None = None
    sealed: dict[str, str] = field(default_factory=dict)
    opened: dict[str, PrivateKey] = field(default_factory=dict, repr=False)
    participants: dict[str, JSON] = field(default_factory=dict)
    messages: dict[int, DecryptedMessage] = field(default_factory=dict)
    seen_seq: int = 0
    queued: set[int] = field(default_factory=set, repr=False)  # seqs put on the message queue


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _public_epoch(epoch: JSON | None) -> JSON | None:
    return None if epoch is None else {"epoch_id": epoch["epoch_id"], "public": epoch["public"]}


class BridgeClient:
    """Connection, events, HTTP and envelopes shared by every role.

    ``disconnect`` drops only the Socket.IO connection (keys, token and state stay, ``connect``
    may follow); ``aclose`` (or leaving ``async with``) also ends event processing and the HTTP
    session. The reconnect settings are plain attributes, to change after construction.
    """

    role: ClassVar[str]

    auto_reconnect: bool = True  # reconnect by itself after an unexpected drop
    reconnect_delay: float = 0.25  # seconds before the first attempt (jittered), then doubled
    reconnect_delay_max: float = 5.0
    send_wait: float = 60.0  # how long a send waits for the connection to be back

    def __init__(self, base_url: str, *, ack_timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.ack_timeout = ack_timeout
        self.token: str | None = None
        self.keys = crypto.DeviceKeys.generate()
        self.device_id: str | None = None
        self.org_key: PrivateKey | None = None
        self.conversations: dict[str, Conversation] = {}
        self.current: str | None = None
        self.received: list[tuple[str, JSON]] = []
        self.sent: dict[str, JSON] = {}
        self._queues: dict[str, asyncio.Queue[JSON]] = {}
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._pump_task: asyncio.Task[None] | None = None
        self._join_lock = asyncio.Lock()  # events wait while a join ack is being applied
        self._sio: socketio.AsyncClient | None = None
        self._http: aiohttp.ClientSession | None = None
        self._socket_http: aiohttp.ClientSession | None = None
        self._connect_error: Any = None
        self._org_publics: dict[str, str] = {}
        self.resumes = 0
        self.failure: Refused | None = None  # why reconnecting stopped
        self._wanted = False  # connected on purpose: reconnect after a drop
        self._ready = False  # connected, and resumed if this connection is a reconnect
        self._changed = asyncio.Event()  # set (and replaced) whenever the two above change
        self._reconnect_task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Future[Any]] = set()  # acks awaited on the current socket
        self._unacked: dict[str, JSON] = {}  # client_msg_id -> envelope, in the order sent
        self._waiting: dict[str, int | Refused | None] = {}  # posts waiting for a resume

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def messages(self) -> dict[int, DecryptedMessage]:
        """Messages of the conversation joined last (for the victim: its own), keyed by seq."""
        return self.conversations[self.current].messages if self.current else {}

    @property
    def sid(self) -> str | None:
        """The Socket.IO session id of the connection open now, if any."""
        return None if self._sio is None else self._sio.get_sid()

    # --- HTTP ----------------------------------------------------------------------------------

    async def request(
        self, method: str, path: str, body: object = None, *, token: str | None = None
    ) -> Any:
        """Send one HTTP request to ``base_url + path`` and return its decoded JSON body.

        ``body`` is sent as JSON, or as is if it is ``bytes`` (to send malformed bodies). With
        ``token`` it carries ``Authorization: Bearer``. A status of 400 or more raises
        :class:`Refused` with the code of the body's ``error`` (``http`` if it has none).
        An answer that is not JSON is returned as ``None``.
        """
        if self._http is None:
            timeout = aiohttp.ClientTimeout(total=self.ack_timeout)
            self._http = aiohttp.ClientSession(timeout=timeout)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs: dict[str, Any] = {"headers": headers}
        if isinstance(body, bytes):
            kwargs["data"] = body
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        async with self._http.request(method, self.base_url + path, **kwargs) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = None
            if response.status >= 400:
                error = data.get("error") if isinstance(data, dict) else None
                if isinstance(error, dict):
                    raise Refused(
                        str(error.get("code")), str(error.get("message")), response.status
                    )
                raise Refused("http", f"HTTP {response.status}", response.status)
            return data

    async def org_public_key(self, org: str) -> str:
        """The org's X25519 public key (``GET /api/v1/orgs/{org}/key``), cached per client."""
        if org not in self._org_publics:
            answer = await self.request("GET", f"/api/v1/orgs/{org}/key")
            self._org_publics[org] = answer["x25519"]
        return self._org_publics[org]

    async def consent_text(self, purpose: str, lang: str = "nl") -> JSON:
        """The current consent text ``{purpose, lang, version, sha256, body}``."""
        text: JSON = await self.request("GET", f"/api/v1/consent-texts/{purpose}?lang={lang}")
        return text

    # --- Socket.IO -----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the Socket.IO connection with ``auth={"token": token}``; from now on a drop is
        followed by reconnecting and resuming (see the module's docstring).

        A refused connect raises :class:`Refused` with the server's code (``unauthenticated``);
        any other failure raises python-socketio's ``ConnectionError``. This call itself does not
        register, join or resume: the caller does what it needs.
        """
        if self._pump_task is None:
            self._pump_task = asyncio.create_task(self._pump())
        self._stop_reconnecting()
        self.failure = None
        await self._open_socket()
        self._wanted = True
        self._set_ready(True)

    async def _open_socket(self) -> None:
        if self._socket_http is None:  # one session for every (re)connect of this client
            self._socket_http = aiohttp.ClientSession()
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
                transports=["websocket"],
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

    async def aclose(self) -> None:
        """Disconnect, stop processing events and close the HTTP session."""
        await self.disconnect()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None
        for session in (self._http, self._socket_http):
            if session is not None:
                await session.close()
        self._http = self._socket_http = None

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

    def _on_disconnect(self, sio: socketio.AsyncClient, *_reason: Any) -> None:
        if sio is not self._sio:
            return  # a socket this client already let go of
        self._sio = None
        self._lost()
        if self._wanted and self.auto_reconnect and self._reconnect_task is None:
            self._reconnect_task = asyncio.create_task(self._reconnect())

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

    async def _resume(self) -> None:
        """Register again, re-join each conversation and catch up, then resend the unacked."""
        await self._register_again()
        current = self.current
        for conversation_id in list(self.conversations):
            await self._rejoin(conversation_id)
        self.current = current
        for client_msg_id, envelope in list(self._unacked.items()):
            await self._resend_unacked(client_msg_id, envelope)

    async def _rejoin(self, conversation_id: str) -> None:
        """``conversation.join`` again and fetch what came after the last message seen, before
        any live event is processed (they wait on the join lock), so the queue keeps seq order."""
        conv = self.conversations[conversation_id]
        if conv.state == "closed" and self.role == "officer":
            return  # an officer's part ends with the conversation
        async with self._join_lock:
            try:
                ack = await self.call("conversation.join", {"conversation_id": conversation_id})
            except Refused as refusal:
                # Closed meanwhile (wrong_state; the history can still be read), or this party
                # is out of it (an officer removed: no_consent): nothing to join.
                if refusal.code != "wrong_state":
                    _log.info("not rejoined (%s)", refusal.code)
                    return
                conv.state = "closed"
            else:
                self._apply_conversation(conversation_id, ack["conversation"])
            after = conv.seen_seq
            while True:
                payload = {
                    "conversation_id": conversation_id,
                    "after_seq": after,
                    "limit": HISTORY_PAGE,
                }
                items = (await self.call("history.fetch", payload))["messages"]
                for item in items:
                    self._announce(conversation_id, item)
                    after = max(after, int(item["seq"]))
                if len(items) < HISTORY_PAGE:
                    break

    def _announce(self, conversation_id: str, item: JSON) -> None:
        """A message learnt by catching up: stored, and queued once as a ``message`` event."""
        event = self._message_event({**item, "conversation_id": conversation_id})
        conv = self.conversations[conversation_id]
        if event["seq"] in conv.queued:
            return
        conv.queued.add(event["seq"])
        self.received.append(("message", event))
        self._queue("message").put_nowait(event)

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

    # --- received events -----------------------------------------------------------------------

    async def next_event(
        self,
        name: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of this helper's contract
        where: Callable[[JSON], bool] | None = None,
    ) -> JSON:
        """The next queued event ``name`` for which ``where`` holds; non-matching ones of that
        name are discarded. Raises ``asyncio.TimeoutError`` after ``timeout`` seconds.

        A ``message`` event is the server's payload plus the fields of its
        :class:`DecryptedMessage` (``text``, ``verified``, ``sender_role``, ...).
        """
        queue = self._queue(name)
        async with asyncio.timeout(timeout):
            while True:
                event = await queue.get()
                if where is None or where(event):
                    return event

    def drain(self, name: str) -> list[JSON]:
        """Empty the queue of event ``name``; return what was on it."""
        queue, drained = self._queue(name), []
        while not queue.empty():
            drained.append(queue.get_nowait())
        return drained

    def _queue(self, name: str) -> asyncio.Queue[JSON]:
        return self._queues.setdefault(name, asyncio.Queue())

    def _on_connect_error(self, data: Any = None) -> None:
        self._connect_error = data

    def _enqueue(self, name: str, *args: Any) -> None:
        # Runs synchronously in python-socketio's per-packet task, so arrival order is kept.
        self._inbox.put_nowait((name, args[0] if len(args) == 1 else list(args)))

    async def _pump(self) -> None:
        while True:
            name, data = await self._inbox.get()
            try:
                async with self._join_lock:
                    event = self._apply_event(name, data)
            except Exception:
                _log.exception("could not process %s event", name)
                event = data if isinstance(data, dict) else {"args": data}
            if event is None:
                continue
            self.received.append((name, event))
            self._queue(name).put_nowait(event)

    def _message_event(self, data: JSON) -> JSON:
        message = self._decode(data["conversation_id"], data)
        extra = {f.name: getattr(message, f.name) for f in fields(message)}
        del extra["envelope"]
        return {**data, **extra}

    def _apply_event(self, name: str, data: JSON) -> JSON | None:
        """Apply a server event; ``None`` for a message already queued (a resume fetched it)."""
        conv = self.conversations.get(data.get("conversation_id", ""))
        if name == "message":
            event = self._message_event(data)
            if conv is not None:
                if event["seq"] in conv.queued:
                    return None
                conv.queued.add(event["seq"])
            return event
        if conv is None:
            return data
        if name == "bridge.state":
            bridge = {k: v for k, v in data.items() if k != "conversation_id"}
            old = conv.bridge
            if old and old.get("request_id") == bridge.get("request_id") and "epoch" in old:
                bridge.setdefault("epoch", old["epoch"])
            conv.bridge = bridge
            if "epoch" in bridge:
                conv.epoch = _public_epoch(bridge["epoch"])
        elif name == "participant":
            participant = data["participant"]
            conv.participants[participant["device_id"]] = participant
        elif name == "conversation.closed":
            conv.state = "closed"
        return data

    # --- conversations, keys and messages ------------------------------------------------------

    async def _join(self, event: str, payload: JSON) -> JSON:
        async with self._join_lock:
            ack = await self.call(event, payload)
            if event == "invite.accept":
                self._apply_conversation(ack["conversation_id"], ack)
            else:
                self._apply_conversation(payload["conversation_id"], ack["conversation"])
        return ack

    def _apply_conversation(self, conversation_id: str, data: JSON) -> None:
        conv = self.conversations.get(conversation_id)
        if conv is None:
            conv = self.conversations[conversation_id] = Conversation(conversation_id)
            conv.seen_seq = data.get("last_seq", 0)  # a resume starts from here
        conv.state = data.get("state", conv.state)
        conv.last_seq = data.get("last_seq", conv.last_seq)
        care = data.get("care_scope") or {}
        conv.care_public = care.get("public", conv.care_public)
        if "sealed_private" in care:
            conv.sealed["care"] = care["sealed_private"]
        if "bridge" in data:
            conv.bridge = dict(data["bridge"]) if data["bridge"] else None
        if "epoch" in data:
            epoch = data["epoch"] or (conv.bridge or {}).get("epoch")
            conv.epoch = _public_epoch(epoch)
            if epoch and "sealed_private" in epoch:
                conv.sealed[epoch["epoch_id"]] = epoch["sealed_private"]
        victim = data.get("victim_device")
        if victim:
            conv.victim_device = victim
            conv.participants.setdefault(victim["device_id"], {"role": "victim", **victim})
        for participant in data.get("participants", []):
            conv.participants[participant["device_id"]] = participant
        self.current = conversation_id

    def _scope_key(self, conv: Conversation, slot: str | None) -> PrivateKey | None:
        """The private scope key for ``slot`` ("care" or an epoch id), opened with the org key."""
        if slot and slot not in conv.opened and slot in conv.sealed and self.org_key is not None:
            with contextlib.suppress(crypto.CryptoError):
                conv.opened[slot] = crypto.open_scope_key(conv.sealed[slot], self.org_key)
        return conv.opened.get(slot) if slot else None

    def _reader(self, conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
        """The envelope key name this role opens and the private key it opens it with."""
        raise NotImplementedError

    def _decode(self, conversation_id: str, item: JSON) -> DecryptedMessage:
        """Verify and open one relayed message; store it in its conversation's ``messages``."""
        envelope: JSON = item["envelope"]
        sender = envelope.get("sender") or {}
        conv = self.conversations.get(conversation_id)
        verified = conv is not None and self._verify(conv, envelope)
        plain = None
        if conv is not None and verified:
            plain = self._open(conv, envelope, item.get("shared_keys"))
        message = DecryptedMessage(
            seq=item["seq"],
            sender_role=sender.get("role", ""),
            sender_device_id=sender.get("device_id", ""),
            kind=envelope.get("kind", ""),
            audience=list(envelope.get("audience", [])),
            epoch_id=envelope.get("epoch_id"),
            text=str(plain["text"]) if plain and "text" in plain else None,
            sent_at=str(plain["sent_at"]) if plain and "sent_at" in plain else None,
            server_time=item["server_time"],
            verified=verified,
            conversation_id=conversation_id,
            envelope=envelope,
        )
        if conv is not None:
            conv.messages[message.seq] = message
            if self.role == "officer":
                conv.seen_seq = max(conv.seen_seq, message.seq)  # it reads only its epoch
            else:  # victim and counsellor read every seq: advance over what is complete
                while conv.seen_seq + 1 in conv.messages:
                    conv.seen_seq += 1
        return message

    @staticmethod
    def _verify(conv: Conversation, envelope: JSON) -> bool:
        sender = envelope.get("sender") or {}
        signer = conv.participants.get(sender.get("device_id", ""))
        if signer is None or signer.get("role") != sender.get("role"):
            return False
        if envelope.get("conversation_id") != conv.conversation_id:
            return False
        try:
            crypto.verify_envelope(envelope, signer["ed25519"])
        except crypto.CryptoError:
            return False
        return True

    def _open(self, conv: Conversation, envelope: JSON, shared_key: str | None) -> JSON | None:
        name, private = self._reader(conv, envelope)
        if private is not None and name in (envelope.get("keys") or {}):
            with contextlib.suppress(crypto.CryptoError):
                return crypto.open_envelope(envelope, name, private)
        if shared_key:  # a content key the victim shared to an investigation epoch
            for slot in conv.sealed:
                key = self._scope_key(conv, slot) if slot != "care" else None
                if key is not None:
                    with contextlib.suppress(crypto.CryptoError):
                        content_key = crypto.unseal(shared_key, key)
                        return crypto.open_with_content_key(envelope, content_key)
        return None

    async def _history(
        self, conversation_id: str, after_seq: int, limit: int | None
    ) -> list[DecryptedMessage]:
        payload: JSON = {"conversation_id": conversation_id, "after_seq": after_seq}
        if limit is not None:
            payload["limit"] = limit
        ack = await self.call("history.fetch", payload)
        return [self._decode(conversation_id, item) for item in ack["messages"]]

    def _audience(self, conv: Conversation, care_only: bool, kind: str) -> list[str]:
        joined = conv.bridge is not None and conv.bridge.get("state") == "joined"
        if kind == "needs_note" or (joined and not care_only):
            return list(BOTH_SCOPES)
        return ["care"]

    def build(
        self,
        text: str,
        *,
        audience: list[str],
        conversation_id: str | None = None,
        kind: str = "message",
        epoch_id: str | None = _CURRENT,
        recipients: dict[str, str] | None = None,
        client_msg_id: str | None = None,
    ) -> JSON:
        """Build, sign and remember (in ``sent``, by client_msg_id) an envelope; do not send it.

        Defaults: the conversation joined last; ``epoch_id`` the known epoch when
        ``investigation`` is in the audience, else ``None``; the content key sealed to the
        victim's device and to each audience scope's public key. Pass any of them to force
        something else. Raises ``ValueError`` if a default needs a key the client lacks.
        """
        conversation_id = conversation_id or self.current
        if conversation_id is None:
            raise ValueError("no conversation joined")
        conv = self.conversations[conversation_id]
        if self.device_id is None:
            raise RuntimeError("no device id: create the conversation or register the device")
        if epoch_id == _CURRENT:
            investigation = "investigation" in audience and conv.epoch is not None
            epoch_id = conv.epoch["epoch_id"] if investigation and conv.epoch else None
        if recipients is None:
            known = {
                "victim": (conv.victim_device or {}).get("x25519"),
                "care": conv.care_public,
                "investigation": (conv.epoch or {}).get("public"),
            }
            recipients = {}
            for name in ("victim", *audience):
                if known.get(name) is None:
                    raise ValueError(f"no public key known for {name!r}")
                recipients[name] = str(known[name])
        envelope = crypto.build_envelope(
            conversation_id=conversation_id,
            client_msg_id=client_msg_id or str(uuid.uuid4()),
            sender_role=self.role,
            device_id=self.device_id,
            kind=kind,
            audience=audience,
            epoch_id=epoch_id,
            plaintext={"text": text, "sent_at": _now()},
            recipients=recipients,
            signing_key=self.keys.signing,
        )
        self.sent[str(envelope["client_msg_id"])] = envelope
        return envelope

    async def send_envelope(self, text: str, *, audience: list[str], **options: Any) -> int:
        """:meth:`build` an envelope (same keyword options) and send it; return its seq."""
        return await self.post(self.build(text, audience=audience, **options))

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

    async def resend(self, client_msg_id: str) -> int:
        """Send exactly the envelope built last under ``client_msg_id`` again."""
        return await self.post(self.sent[client_msg_id])


class VictimClient(BridgeClient):
    """The victim: creates the conversation, holds its device key (reads every message), steers
    the bridge (grant, decline, withdraw, pause, resume) and may share history."""

    role = "victim"

    def __init__(self, base_url: str, *, ack_timeout: float = 10.0) -> None:
        super().__init__(base_url, ack_timeout=ack_timeout)
        self.conversation_id = ""

    @classmethod
    async def create(cls, base_url: str, lang: str = "nl", *, ack_timeout: float = 10.0) -> Self:
        """Start a conversation (new device and care scope keys), connect and join it."""
        client = cls(base_url, ack_timeout=ack_timeout)
        try:
            care = crypto.ScopeKey.generate()
            body = {
                "lang": lang,
                "device": {"ed25519": client.keys.ed25519, "x25519": client.keys.x25519},
                "care_scope": care.as_payload(await client.org_public_key("fier")),
            }
            created = await client.request("POST", "/api/v1/conversations", body)
            client.conversation_id = created["conversation_id"]
            client.token = created["victim_token"]
            client.device_id = created["device_id"]
            await client.connect()
            await client.join()
        except BaseException:
            await client.aclose()
            raise
        return client

    @property
    def conversation(self) -> Conversation:
        return self.conversations[self.conversation_id]

    @property
    def bridge(self) -> JSON | None:
        """The bridge as last reported: ``{request_id, purpose, state, reason?, epoch?}``."""
        return self.conversation.bridge

    def _reader(self, conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
        return "victim", self.keys.box

    def _ref(self) -> JSON:
        return {"conversation_id": self.conversation_id}

    async def join(self) -> JSON:
        """``conversation.join`` of its own conversation; returns the ack."""
        return await self._join("conversation.join", self._ref())

    async def send(self, text: str, care_only: bool = False, kind: str = "message") -> int:
        """Send to care, plus investigation while the bridge is ``joined`` (unless care_only)."""
        audience = self._audience(self.conversation, care_only, kind)
        return await self.send_envelope(text, audience=audience, kind=kind)

    def prompt(self, request_id: str | None = None) -> JSON:
        """The last ``consent.prompt`` received (for ``request_id``, if given)."""
        for name, event in reversed(self.received):
            if name == "consent.prompt" and request_id in (None, event.get("request_id")):
                return event
        raise LookupError(f"no consent.prompt received (request_id={request_id})")

    async def grant(
        self,
        request_id: str | None = None,
        retain_for_case_file: bool = False,
        share_needs_note: bool = True,
    ) -> JSON:
        """Consent to the prompted bridge: quote its text, mint the epoch's investigation scope
        key (sealed to AVIM) and sign the grant with the device key. Returns the ack."""
        prompt = self.prompt(request_id)
        text = {k: prompt["text"][k] for k in ("version", "lang", "sha256")}
        choices = {
            "retain_for_case_file": retain_for_case_file,
            "share_needs_note": share_needs_note,
        }
        scope = crypto.ScopeKey.generate()
        payload: JSON = {
            "request_id": prompt["request_id"],
            "text": text,
            "choices": choices,
            "investigation_scope": scope.as_payload(await self.org_public_key("avim")),
        }
        payload["sig"] = self.keys.sign(
            crypto.signed_grant(
                request_id=prompt["request_id"],
                text=text,
                choices=choices,
                investigation_public=scope.public,
            )
        )
        ack = await self.call("consent.grant", payload)
        # Known at once (share_history may follow); the bridge state comes as an event.
        self.conversation.epoch = {"epoch_id": ack["epoch_id"], "public": scope.public}
        return ack

    async def decline(self, request_id: str | None = None) -> JSON:
        """``consent.decline`` of the prompted request."""
        request = self.prompt(request_id)["request_id"]
        return await self.call("consent.decline", {"request_id": request})

    async def withdraw(self) -> JSON:
        """``consent.withdraw``: the officer is removed at once."""
        return await self.call("consent.withdraw", self._ref())

    async def pause(self) -> JSON:
        return await self.call("bridge.pause", self._ref())

    async def resume(self) -> JSON:
        return await self.call("bridge.resume", self._ref())

    async def close(self) -> JSON:
        """``conversation.close`` (ends the chat; to drop the connection use ``aclose``)."""
        return await self.call("conversation.close", self._ref())

    async def history(self, after_seq: int = 0, limit: int | None = None) -> list[DecryptedMessage]:
        """One ``history.fetch``; the messages are also stored in ``messages``."""
        return await self._history(self.conversation_id, after_seq, limit)

    async def share_history(self, seqs: list[int]) -> int:
        """Re-seal the content keys of messages ``seqs`` to the current investigation epoch and
        send them with ``history.share``; returns the number shared. Messages not yet seen are
        fetched first."""
        conv = self.conversation
        if conv.epoch is None:
            raise ValueError("no investigation epoch to share with")
        missing = [seq for seq in seqs if seq not in conv.messages]
        if missing:
            await self.history(after_seq=min(missing) - 1, limit=max(missing) - min(missing) + 1)
        items = []
        for seq in seqs:
            content_key = crypto.envelope_content_key(
                conv.messages[seq].envelope, "victim", self.keys.box
            )
            items.append({"seq": seq, "key": crypto.seal(content_key, conv.epoch["public"])})
        payload: JSON = {**self._ref(), "epoch_id": conv.epoch["epoch_id"], "items": items}
        payload["sig"] = self.keys.sign(payload)
        ack = await self.call("history.share", payload)
        return int(ack["shared"])


class StaffClient(BridgeClient):
    """A logged-in staff member: bearer token, org key (after ``unlock``) and one device key for
    the client's life, so registering again yields the same ``device_id``."""

    def __init__(self, base_url: str, *, ack_timeout: float = 10.0) -> None:
        super().__init__(base_url, ack_timeout=ack_timeout)
        self.session: JSON = {}

    @classmethod
    async def login(
        cls, base_url: str, username: str, password: str, *, ack_timeout: float = 10.0
    ) -> Self:
        """``POST /api/v1/session``; ``session`` keeps its answer (token, user_id, role, org)."""
        client = cls(base_url, ack_timeout=ack_timeout)
        try:
            body = {"username": username, "password": password}
            client.session = await client.request("POST", "/api/v1/session", body)
        except BaseException:
            await client.aclose()
            raise
        client.token = client.session["token"]
        return client

    @property
    def org(self) -> str:
        return str(self.session["org"])

    async def unlock(self, passphrase: str) -> None:
        """Fetch the sealed org key and open it (Argon2id, in a worker thread)."""
        sealed = await self.request("GET", f"/api/v1/orgs/{self.org}/sealed-key", token=self.token)
        self.org_key = await asyncio.to_thread(crypto.open_org_key, sealed, passphrase.encode())

    async def register_device(self) -> str:
        """``device.register`` with this client's device keys; returns the ``device_id``."""
        ack = await self.call("device.register", self.keys.registration())
        self.device_id = str(ack["device_id"])
        return self.device_id

    async def _register_again(self) -> None:
        if self.device_id is not None:
            await self.register_device()

    async def history(
        self, conversation_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[DecryptedMessage]:
        """One ``history.fetch`` (logged as a transcript read); also stored in ``messages``."""
        return await self._history(conversation_id, after_seq, limit)

    async def end(self, conversation_id: str) -> JSON:
        """``bridge.end``: for the counsellor, removes the officer; for the officer, leaves."""
        return await self.call("bridge.end", {"conversation_id": conversation_id})


class CounsellorClient(StaffClient):
    """A Fier counsellor: reads the care scope, picks up conversations and proposes bridges."""

    role = "counsellor"

    def _reader(self, conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
        return "care", self._scope_key(conv, "care")

    async def queue(self) -> list[JSON]:
        """``queue.list``: ``[{conversation_id, lang, waiting_since}]``."""
        return list((await self.call("queue.list", {}))["waiting"])

    async def join(self, conversation_id: str) -> JSON:
        """``conversation.join``: learn participants, bridge and the care scope; returns the ack.
        The care scope key opens once the org key is unlocked."""
        return await self._join("conversation.join", {"conversation_id": conversation_id})

    async def send(
        self, conversation_id: str, text: str, care_only: bool = False, kind: str = "message"
    ) -> int:
        """Send to care, plus investigation while the bridge is ``joined`` (unless care_only);
        a ``needs_note`` always goes to care + investigation under the current epoch."""
        audience = self._audience(self.conversations[conversation_id], care_only, kind)
        return await self.send_envelope(
            text, audience=audience, conversation_id=conversation_id, kind=kind
        )

    async def propose(
        self,
        conversation_id: str,
        purpose: str = "informational",
        preferences: JSON | None = None,
    ) -> str:
        """``bridge.propose``; returns the ``request_id``."""
        payload: JSON = {"conversation_id": conversation_id, "purpose": purpose}
        if preferences is not None:
            payload["preferences"] = preferences
        return str((await self.call("bridge.propose", payload))["request_id"])

    async def pause(self, conversation_id: str) -> JSON:
        return await self.call("bridge.pause", {"conversation_id": conversation_id})

    async def resume(self, conversation_id: str) -> JSON:
        return await self.call("bridge.resume", {"conversation_id": conversation_id})

    async def close(self, conversation_id: str) -> JSON:
        return await self.call("conversation.close", {"conversation_id": conversation_id})


class OfficerClient(StaffClient):
    """An AVIM officer: accepts invites and reads the investigation scope of its epoch."""

    role = "officer"

    def _reader(self, conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
        return "investigation", self._scope_key(conv, envelope.get("epoch_id"))

    async def invites(self) -> list[JSON]:
        """``invite.list``: ``[{invite_id, purpose, preferences, expires_at}]``."""
        return list((await self.call("invite.list", {}))["invites"])

    async def accept(self, invite_id: str) -> JSON:
        """``invite.accept``: learn the conversation and its epoch key; returns the ack."""
        return await self._join("invite.accept", {"invite_id": invite_id})

    async def rejoin(self, conversation_id: str) -> JSON:
        """``conversation.join`` as the conversation's current officer (after a reconnect)."""
        return await self._join("conversation.join", {"conversation_id": conversation_id})

    async def send(self, conversation_id: str, text: str) -> int:
        """Send to care + investigation under the epoch this officer holds."""
        return await self.send_envelope(
            text, audience=list(BOTH_SCOPES), conversation_id=conversation_id
        )
