"""A node's Redis pool in a burst: callers wait for a free connection, none is refused."""

from __future__ import annotations

import asyncio

from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bridge.adapters import redis as shared
from harness import redis_server

BURST = 10 * shared.POOL_SIZE


async def _burst(client: Redis) -> list[object]:
    return await asyncio.gather(
        *(client.hset("burst", str(n), n) for n in range(BURST)), return_exceptions=True
    )


async def test_a_burst_past_the_pool_waits_and_every_call_succeeds() -> None:
    with redis_server() as server:
        client = shared.connect(server.url)
        try:
            results = await _burst(client)
            assert [r for r in results if isinstance(r, Exception)] == []
            assert await client.hlen("burst") == BURST
        finally:
            await client.aclose()


async def test_the_same_burst_fails_on_a_plain_pool_of_that_size() -> None:
    """The burst is real: redis-py's plain pool of the same size refuses part of it."""
    with redis_server() as server:
        pool = ConnectionPool.from_url(server.url, max_connections=shared.POOL_SIZE)
        client = Redis(connection_pool=pool)
        try:
            results = await _burst(client)
        finally:
            await client.aclose()
    assert any(isinstance(r, RedisConnectionError) for r in results)
