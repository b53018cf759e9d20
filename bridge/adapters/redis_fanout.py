"""Fan-out over Redis, by python-socketio's own ``AsyncRedisManager``.

The Socket.IO server runs with the manager as its client manager: an emit to a room, or a room
closed, is applied to this node's sockets at once and published to the other nodes, which apply
it to theirs. So ``deliver`` returns once this node's sockets have what the call caused (a
sender has the event before its ack), and the other nodes follow within a round trip to Redis.

The manager's connections come from the bridge's one Redis pool (``bridge.adapters.redis``),
which waits for a free connection in a burst instead of raising.
"""

from __future__ import annotations

import asyncio

import socketio  # type: ignore[import-untyped]
import structlog
from redis.asyncio import Redis

from bridge.domain.fanout import Fanout, Message, Sockets, apply

__all__ = ["RedisFanout", "RedisManager"]

_log = structlog.get_logger("bridge.fanout")


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis manager on the client (and pool) it is given."""

    def __init__(self, redis: Redis, channel: str) -> None:
        super().__init__(channel=channel)
        self._given = redis

    def _redis_connect(self) -> None:
        self.redis = self._given
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True


class RedisFanout(Fanout):
    """Effects applied through the Socket.IO server, whose Redis manager reaches the others."""

    def __init__(self) -> None:
        self._sockets: Sockets | None = None
        self._attached = asyncio.Event()

    async def _publish(self, message: Message) -> None:
        await self._attached.wait()
        assert self._sockets is not None  # set with _attached
        try:
            await apply(self._sockets, message)
        except Exception:
            _log.exception("fanout.apply_failed")

    async def run(self, sockets: Sockets) -> None:
        """The manager listens to the other nodes itself: here the sockets are only taken."""
        self._sockets = sockets
        self._attached.set()
        await asyncio.Event().wait()
