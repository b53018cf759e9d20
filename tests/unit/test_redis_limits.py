"""The limits the edges count against (``bridge.limits.Limits``), in one process and shared over a
real Redis: the same steps give the same answers on a clock the test turns by hand. Then what only
sharing has: nodes that count together, a dead node's sockets, keys that expire by themselves and
a secret that only Redis holds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from bridge.adapters.local_limits import LocalLimits
from bridge.adapters.redis import PREFIX, connect
from bridge.adapters.redis_limits import SECRET_SECONDS, RedisLimits
from bridge.adapters.redis_presence import RedisPresence
from bridge.config import Settings
from bridge.limits import Limits
from harness import RedisServer, redis_server

SETTINGS = Settings(
    conversations_per_minute=2,
    login_failures_per_account=3,
    login_failures_per_address=5,
    login_lockout_seconds=30.0,
    login_lockout_max_seconds=100.0,
)
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Node:
    """A node's presence, its lease renewed every second, and its shared limits."""

    def __init__(self, redis: Redis, clock: Clock) -> None:
        self.presence = RedisPresence(redis, PREFIX)
        self.limits = RedisLimits(redis, PREFIX, self.presence.node, SETTINGS, clock)
        self.stopped = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.presence.start()
        self.task = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        # Stopped by an event, not by cancelling: redis-py may swallow a cancellation.
        while not self.stopped.is_set():
            await self.presence.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), 1.0)

    async def stop(self) -> None:
        self.stopped.set()
        if self.task is not None:
            await self.task
        await self.presence.close()


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
async def redis(server: RedisServer) -> AsyncIterator[Redis]:
    client = connect(server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def nodes(redis: Redis, clock: Clock) -> AsyncIterator[list[Node]]:
    """Two nodes over one Redis, both alive."""
    started = [Node(redis, clock), Node(redis, clock)]
    for node in started:
        await node.start()
    yield started
    for node in started:
        await node.stop()


@pytest.fixture(params=["local", "redis"])
def limits(request: pytest.FixtureRequest, clock: Clock, nodes: list[Node]) -> Limits:
    if request.param == "local":
        return LocalLimits(SETTINGS, clock)
    return nodes[0].limits


# --- the same answers, in one process or shared -------------------------------------------------


async def test_new_conversations_per_address_in_a_window(limits: Limits, clock: Clock) -> None:
    address = await limits.keyed("address", "192.0.2.1")
    assert [await limits.new_conversation(address) for _ in range(3)] == [True, True, False]
    assert await limits.new_conversation(await limits.keyed("address", "192.0.2.2"))
    clock.now += 59.0
    assert not await limits.new_conversation(address)
    clock.now += 1.0
    assert await limits.new_conversation(address)


async def test_failed_logins_lock_a_user_out_for_longer_each_time(
    limits: Limits, clock: Clock
) -> None:
    user, address = await limits.keyed("user", "counsellor"), await limits.keyed("address", "x")
    assert [await limits.login_allowed(user, address) for _ in range(4)] == [True] * 3 + [False]
    # 30 s, then twice as long after each further failure, at most 100 s.
    for lockout in (30.0, 60.0, 100.0, 100.0):
        clock.now += lockout - 1.0
        assert not await limits.login_allowed(user, address)
        clock.now += 1.0
        assert await limits.login_allowed(user, address)
    other = await limits.keyed("user", "counsellor2")
    assert await limits.login_allowed(other, address)


async def test_failures_lock_an_address_out_whatever_the_user_name(limits: Limits) -> None:
    address = await limits.keyed("address", "192.0.2.1")
    for n in range(5):
        user = await limits.keyed("user", f"guess {n}")
        assert await limits.login_allowed(user, address)
        await limits.login_failed(user, address)
    assert not await limits.login_allowed(await limits.keyed("user", "counsellor"), address)
    elsewhere = await limits.keyed("address", "192.0.2.2")
    assert await limits.login_allowed(await limits.keyed("user", "counsellor"), elsewhere)


async def test_unjudged_logins_are_forgiven_and_a_success_resets(limits: Limits) -> None:
    user, address = await limits.keyed("user", "officer"), await limits.keyed("address", "x")
    for _ in range(10):
        assert await limits.login_allowed(user, address)
        await limits.login_not_judged(user, address)
    for _ in range(2):
        assert await limits.login_allowed(user, address)
    await limits.login_succeeded(user, address)
    assert [await limits.login_allowed(user, address) for _ in range(4)] == [True] * 3 + [False]


async def test_a_quiet_user_name_is_forgotten(limits: Limits, clock: Clock) -> None:
    user, address = await limits.keyed("user", "officer"), await limits.keyed("address", "x")
    for _ in range(3):
        await limits.login_allowed(user, address)
    # Quiet for the cap after its 30 s lock-out: it starts again from nothing.
    clock.now += 30.0 + 100.0
    assert [await limits.login_allowed(user, address) for _ in range(4)] == [True] * 3 + [False]


async def test_sockets_per_owner(limits: Limits) -> None:
    opened = [await limits.socket_opened(f"s{n}", "token:a", 2, HOUR) for n in range(3)]
    assert opened == [True, True, False]
    assert await limits.socket_opened("s3", "account:b", 2, HOUR)
    await limits.socket_closed("s0")
    await limits.socket_closed("s0")  # a second close changes nothing
    assert await limits.socket_opened("s4", "token:a", 2, HOUR)
    assert not await limits.socket_opened("s5", "token:a", 2, HOUR)


async def test_parallel_attempts_never_pass_the_allowance(limits: Limits, redis: Redis) -> None:
    user, address = await limits.keyed("user", "officer"), await limits.keyed("address", "x")
    # A connection each, open already: the attempts reach Redis at the same time.
    await asyncio.gather(*(redis.ping() for _ in range(40)))
    attempts = await asyncio.gather(*(limits.login_allowed(user, address) for _ in range(40)))
    assert sum(attempts) == 3
    created = await asyncio.gather(*(limits.new_conversation(address) for _ in range(40)))
    assert sum(created) == 2
    sockets = await asyncio.gather(
        *(limits.socket_opened(f"s{n}", "token:a", 4, HOUR) for n in range(40))
    )
    assert sum(sockets) == 4


# --- shared by the nodes ------------------------------------------------------------------------


async def test_two_nodes_count_against_the_same_limits(nodes: list[Node]) -> None:
    a, b = (node.limits for node in nodes)
    await asyncio.gather(*(a.redis.ping() for _ in range(40)))
    assert await a.keyed("address", "192.0.2.1") == await b.keyed("address", "192.0.2.1")
    address = await a.keyed("address", "192.0.2.1")
    assert [await n.new_conversation(address) for n in (a, b, a, b)] == [True, True, False, False]
    user = await b.keyed("user", "counsellor")
    allowed = await asyncio.gather(*(n.login_allowed(user, address) for n in (a, b) * 20))
    assert sum(allowed) == 3
    assert not await a.login_allowed(user, address) and not await b.login_allowed(user, address)
    opened = [await n.socket_opened(f"{i}", "token:t", 3, HOUR) for i, n in enumerate((a, b) * 2)]
    assert opened == [True, True, True, False]
    await b.socket_closed("1")
    assert await a.socket_opened("4", "token:t", 3, HOUR)


async def test_nodes_whose_clocks_differ_a_little_count_alike(redis: Redis, clock: Clock) -> None:
    behind = Clock()
    behind.now = clock.now - 0.5
    a = RedisLimits(redis, PREFIX, "a", SETTINGS, clock)
    b = RedisLimits(redis, PREFIX, "b", SETTINGS, behind)
    user, address = await a.keyed("user", "officer"), await a.keyed("address", "x")
    assert [await n.login_allowed(user, address) for n in (a, b, a, b)] == [True] * 3 + [False]
    window = await a.keyed("address", "192.0.2.1")
    assert [await n.new_conversation(window) for n in (a, b, a)] == [True, True, False]


async def test_a_dead_nodes_sockets_no_longer_count(
    redis: Redis, nodes: list[Node], clock: Clock
) -> None:
    a, b = nodes
    for n in range(2):
        assert await b.limits.socket_opened(f"b{n}", "token:t", 2, HOUR)
    assert not await a.limits.socket_opened("a0", "token:t", 2, HOUR)
    # Node b dies: it closes none of its sockets, and its lease runs out.
    b.stopped.set()
    await b.task if b.task is not None else None
    await redis.zadd(f"{PREFIX}:nodes", {b.presence.node: (clock.now - 1.0) * 1000})
    assert await a.limits.socket_opened("a1", "token:t", 2, HOUR)
    assert await a.limits.socket_opened("a2", "token:t", 2, HOUR)
    assert not await a.limits.socket_opened("a3", "token:t", 2, HOUR)
    # What it held is gone from Redis too, not only left uncounted.
    [key] = [k async for k in redis.scan_iter(f"{PREFIX}:limits:sockets:*")]
    members = await redis.smembers(key)
    assert {m.decode().split("|")[0] for m in members} == {a.presence.node}


async def test_keys_are_hashed_under_the_prefix_and_expire_by_themselves(
    redis: Redis, nodes: list[Node]
) -> None:
    limits = nodes[0].limits
    user, address = await limits.keyed("user", "counsellor"), await limits.keyed("address", "x")
    await limits.new_conversation(await limits.keyed("address", "192.0.2.77"))
    for _ in range(4):
        await limits.login_allowed(user, address)
    await limits.login_failed(user, await limits.keyed("address", "192.0.2.77"))
    await limits.socket_opened("s", "account:counsellor", 2, HOUR)
    keys = [k.decode() async for k in redis.scan_iter("*")]
    assert len(keys) == 6  # nodes, secret, a window, a user and an address, sockets
    for key in keys:
        assert key.startswith(f"{PREFIX}:")
        assert "192.0.2.77" not in key and "counsellor" not in key
        if key != f"{PREFIX}:nodes":
            assert await redis.pttl(key) > 0, key
    stored = b"".join([await redis.dump(k) or b"" for k in keys])
    assert b"192.0.2.77" not in stored and b"counsellor" not in stored


async def test_the_secret_is_made_once_in_redis_for_a_day(
    redis: Redis, nodes: list[Node], clock: Clock
) -> None:
    first = await nodes[0].limits.keyed("address", "192.0.2.1")
    later = RedisLimits(redis, PREFIX, "another", SETTINGS, clock)
    assert await later.keyed("address", "192.0.2.1") == first
    assert 0 < await redis.pttl(f"{PREFIX}:limits:secret") <= SECRET_SECONDS * 1000
    # Redis restarted (it keeps nothing): a new secret, and nodes that start agree on it.
    await redis.flushall()
    fresh = RedisLimits(redis, PREFIX, "fresh", SETTINGS, clock)
    renewed = await fresh.keyed("address", "192.0.2.1")
    assert renewed != first
    third = RedisLimits(redis, PREFIX, "third", SETTINGS, clock)
    assert await third.keyed("address", "192.0.2.1") == renewed
