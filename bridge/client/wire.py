"""What the client shares with the wire (PROTOCOL.md): the JSON type, the server's event names,
and the two ways a call can fail."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["JSON", "SERVER_EVENTS", "ConnectionLost", "Refused"]

JSON = dict[str, Any]

SERVER_EVENTS: Final = (  # every server->client event of PROTOCOL.md
    "message",
    "consent.prompt",
    "bridge.state",
    "invite",
    "participant",
    "queue",
    "conversation.closed",
    "notice",
    "breakglass.requested",
    "breakglass.decided",
)


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
