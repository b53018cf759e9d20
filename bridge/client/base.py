"""The client shared by every role: HTTP, server events, conversations and envelopes over the
:class:`~bridge.client.transport.Transport`.

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
* Messages learnt by a resume's catching up are put on the ``message`` queue as if they had
  arrived live, and a live ``message`` already seen is not queued again, so each message is
  queued once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import fields
from types import TracebackType
from typing import Any, ClassVar, Final, Self

from nacl.public import PrivateKey

from bridge import crypto
from bridge.client import reading, writing
from bridge.client.conversation import Conversation, DecryptedMessage
from bridge.client.http import HttpApi
from bridge.client.network import Network
from bridge.client.transport import Transport
from bridge.client.wire import JSON, Refused

__all__ = ["BridgeClient"]

HISTORY_PAGE: Final = 500  # the largest ``limit`` history.fetch takes
_CURRENT: Final = "<current epoch>"  # default of ``epoch_id``: the epoch the client knows

_log = logging.getLogger(__name__)


class BridgeClient(Transport):
    """Connection, events, HTTP and envelopes shared by every role.

    ``disconnect`` drops only the Socket.IO connection (keys, token and state stay, ``connect``
    may follow); ``aclose`` (or leaving ``async with``) also ends event processing and the HTTP
    session.
    """

    role: ClassVar[str]

    def __init__(
        self, base_url: str, *, ack_timeout: float = 10.0, network: Network | None = None
    ) -> None:
        super().__init__(base_url, ack_timeout=ack_timeout, network=network)
        self.keys = crypto.DeviceKeys.generate()
        self.device_id: str | None = None
        self.org_keys: dict[str, PrivateKey] = {}  # key id -> an opened version of the org key
        self.conversations: dict[str, Conversation] = {}
        self.current: str | None = None
        self.received: list[tuple[str, JSON]] = []
        self.sent: dict[str, JSON] = {}
        self._api = HttpApi(self.base_url, self.network)
        self._queues: dict[str, asyncio.Queue[JSON]] = {}
        self._pump_task: asyncio.Task[None] | None = None
        self._join_lock = asyncio.Lock()  # events wait while a join ack is being applied

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

    async def connect(self) -> None:
        """:meth:`Transport.connect`, with server events processed from now on."""
        if self._pump_task is None:
            self._pump_task = asyncio.create_task(self._pump())
        await super().connect()

    async def aclose(self) -> None:
        """Disconnect, stop processing events and close the HTTP sessions."""
        await self.disconnect()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None
        await self._api.close()
        await self._close_socket_session()

    # --- HTTP ----------------------------------------------------------------------------------

    async def request(
        self, method: str, path: str, body: object = None, *, token: str | None = None
    ) -> Any:
        """Send one HTTP request to ``base_url + path`` and return its decoded JSON body, as
        :meth:`HttpApi.request <bridge.client.http.HttpApi.request>` does (``Refused`` for a
        status of 400 or more), within ``ack_timeout`` seconds."""
        return await self._api.request(
            method, path, body, token=token, ack_timeout=self.ack_timeout
        )

    async def org_key(self, org: str) -> JSON:
        """The org's key to seal to, ``{org, key_id, x25519, versions}``."""
        return await self._api.org_key(org, ack_timeout=self.ack_timeout)

    async def org_public_key(self, org: str) -> str:
        """The X25519 public key of the org's newest key."""
        return str((await self.org_key(org))["x25519"])

    async def consent_text(self, purpose: str, lang: str = "nl") -> JSON:
        """The current consent text ``{purpose, lang, version, sha256, body}``."""
        return await self._api.consent_text(purpose, lang, ack_timeout=self.ack_timeout)

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
        if conv is not None:
            conv.apply_event(name, data)
        return data

    # --- joining and catching up ---------------------------------------------------------------

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
        if conv is None:  # a resume starts from the seq the conversation had at first join
            conv = Conversation(conversation_id, seen_seq=data.get("last_seq", 0))
            self.conversations[conversation_id] = conv
        conv.apply_join(data)
        self.current = conversation_id

    async def _catch_up(self) -> None:
        current = self.current
        for conversation_id in list(self.conversations):
            await self._rejoin(conversation_id)
        self.current = current

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

    # --- reading -------------------------------------------------------------------------------

    def _reader(self, conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
        """The envelope key name this role opens and the private key it opens it with."""
        raise NotImplementedError

    def _scope_key(self, conv: Conversation, slot: str | None) -> PrivateKey | None:
        """The private scope key for ``slot`` ("care" or an epoch id), opened with the version
        of the org key it is sealed to."""
        return reading.scope_key(conv, slot, self.org_keys)

    def _decode(self, conversation_id: str, item: JSON) -> DecryptedMessage:
        """Verify and open one relayed message; store it in its conversation's ``messages``."""
        conv = self.conversations.get(conversation_id)
        message = reading.decode(conv, conversation_id, item, self._reader, self.org_keys)
        if conv is not None:
            conv.store(message, reads_every_seq=self.role != "officer")
        return message

    async def _history(
        self, conversation_id: str, after_seq: int, limit: int | None
    ) -> list[DecryptedMessage]:
        payload: JSON = {"conversation_id": conversation_id, "after_seq": after_seq}
        if limit is not None:
            payload["limit"] = limit
        ack = await self.call("history.fetch", payload)
        return [self._decode(conversation_id, item) for item in ack["messages"]]

    # --- writing -------------------------------------------------------------------------------

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
            epoch_id = writing.current_epoch(conv, audience)
        if recipients is None:
            recipients = writing.sealed_to_known(conv, audience)
        envelope = writing.signed_envelope(
            text,
            conversation_id=conversation_id,
            sender_role=self.role,
            device_id=self.device_id,
            keys=self.keys,
            audience=audience,
            kind=kind,
            epoch_id=epoch_id,
            recipients=recipients,
            client_msg_id=client_msg_id,
        )
        self.sent[str(envelope["client_msg_id"])] = envelope
        return envelope

    async def send_envelope(self, text: str, *, audience: list[str], **options: Any) -> int:
        """:meth:`build` an envelope (same keyword options) and send it; return its seq."""
        return await self.post(self.build(text, audience=audience, **options))

    async def resend(self, client_msg_id: str) -> int:
        """Send exactly the envelope built last under ``client_msg_id`` again."""
        return await self.post(self.sent[client_msg_id])
