"""How this node reaches the others: alone (in-process fan-out and presence), or over Redis
(``BRIDGE_REDIS_URL``): python-socketio's Redis manager for the fan-out, presence and the
shared limits in Redis. Every node of an installation is started with the same settings."""

from __future__ import annotations

from dataclasses import dataclass

import socketio  # type: ignore[import-untyped]
from redis.asyncio import Redis

from bridge.adapters import redis as shared
from bridge.adapters.local_fanout import LocalFanout
from bridge.adapters.local_limits import LocalLimits
from bridge.adapters.local_presence import LocalPresence
from bridge.adapters.redis_fanout import RedisFanout, RedisManager
from bridge.adapters.redis_limits import RedisLimits
from bridge.adapters.redis_presence import RedisPresence
from bridge.config import Settings
from bridge.domain.fanout import Fanout
from bridge.domain.presence import PresenceBoard
from bridge.limits import Limits

__all__ = ["Links", "links"]


@dataclass
class Links:
    board: PresenceBoard
    fanout: Fanout
    limits: Limits
    # The Socket.IO client manager (None: python-socketio's in-process one).
    manager: socketio.AsyncManager | None = None
    redis: Redis | None = None

    async def start(self) -> None:
        await self.board.start()

    async def ping(self) -> bool:
        """Whether Redis answers (always, alone)."""
        if self.redis is None:
            return True
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self.board.close()
        if self.redis is not None:
            await self.redis.aclose()


def links(settings: Settings) -> Links:
    if not settings.redis_url:
        return Links(LocalPresence(), LocalFanout(), LocalLimits(settings))
    redis = shared.connect(settings.redis_url)
    board = RedisPresence(redis, shared.PREFIX)
    return Links(
        board,
        RedisFanout(),
        RedisLimits(redis, shared.PREFIX, board.node, settings),
        RedisManager(redis, f"{shared.PREFIX}:socketio"),
        redis,
    )
