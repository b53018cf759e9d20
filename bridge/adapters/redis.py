"""The one Redis client of a node, for the fan-out, presence and the shared limits.

A blocking pool: in a burst a caller waits for a free connection instead of failing (redis-py's
plain pool raises once it is used up). Nothing durable is kept in Redis; run it without
persistence (``save ""``, ``appendonly no``) so that nothing of it reaches a disk either.

Replies are bytes, as python-socketio's manager expects of its pub/sub messages.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

__all__ = ["PREFIX", "connect"]

# Every key and the Socket.IO channel of the bridge start with this.
PREFIX = "fier-bridge"

# Connections per node: the pub/sub listener holds one for good; the rest serve requests.
POOL_SIZE = 64
# How long a caller waits for a free connection before the call fails.
POOL_WAIT_SECONDS = 10


def connect(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT_SECONDS,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)
