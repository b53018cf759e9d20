"""Presence shared over a real Redis: what it holds, that nothing is left of a socket that went,
and that a dead node's departures run once, on one of the nodes left."""

from __future__ import annotations

import asyncio

from bridge.adapters import redis as shared
from bridge.adapters.redis_presence import LEASE_SECONDS, RENEW_SECONDS, RedisPresence
from bridge.domain.delivery import OnDutyOfficer
from bridge.domain.presence import Departed
from harness import redis_server


async def test_a_socket_leaves_nothing_behind_once_it_is_gone() -> None:
    with redis_server() as server:
        redis = shared.connect(server.url)
        board = RedisPresence(redis, shared.PREFIX)
        await board.start()
        await board.joined("sid-1", "victim", "c-1")
        await board.on_duty("sid-2", OnDutyOfficer("acc-1", "Limburg", "female"))
        assert await board.victim_present("c-1")
        assert not await board.counsellor_present("c-1")
        assert await board.officers_on_duty() == [OnDutyOfficer("acc-1", "Limburg", "female")]
        # Only ids, roles and this node are kept: no address, name or token.
        held = await redis.hkeys(f"{shared.PREFIX}:presence:c-1")
        assert held == [f"victim|{board.node}|sid-1".encode()]

        await board.gone("sid-1")
        await board.gone("sid-2")
        assert not await board.victim_present("c-1")
        assert await board.officers_on_duty() == []
        assert await redis.exists(f"{shared.PREFIX}:presence:c-1", f"{shared.PREFIX}:duty") == 0
        await redis.aclose()


async def test_a_dead_nodes_departures_run_once_on_one_of_the_others() -> None:
    with redis_server() as server:
        redis = shared.connect(server.url)
        dead = RedisPresence(redis, shared.PREFIX)
        await dead.start()
        await dead.joined("sid-v", "victim", "c-1")
        await dead.joined("sid-c", "counsellor", "c-2")
        await dead.close()  # its lease ends now; it never runs its departures itself

        departures: list[tuple[str, str, str]] = []
        boards = [RedisPresence(redis, shared.PREFIX) for _ in range(3)]

        def recorder(board: RedisPresence) -> Departed:
            async def departed(role: str, conversation_id: str) -> None:
                departures.append((board.node, role, conversation_id))

            return departed

        tasks = [asyncio.create_task(b.run(recorder(b))) for b in boards]
        try:
            for _ in range(int(3 * (LEASE_SECONDS + RENEW_SECONDS) / 0.1)):
                if len(departures) >= 2:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(2 * RENEW_SECONDS)  # time for a second run, were there one
        finally:
            for board in boards:
                board.stop()
            await asyncio.gather(*tasks)
        assert sorted((role, cid) for _, role, cid in departures) == [
            ("counsellor", "c-2"),
            ("victim", "c-1"),
        ]
        assert len({node for node, _, _ in departures}) == 1
        assert not await boards[0].victim_present("c-1")
        await redis.aclose()


async def test_a_node_taken_for_dead_writes_its_presence_again() -> None:
    """After an outage longer than a lease another node may let go of a live one: the live node
    finds its lease gone at its next renewal and writes what it holds again."""
    with redis_server() as server:
        redis = shared.connect(server.url)
        alive, other = RedisPresence(redis, shared.PREFIX), RedisPresence(redis, shared.PREFIX)
        await alive.start()
        await alive.joined("sid-v", "victim", "c-1")
        await alive.on_duty("sid-o", OnDutyOfficer("acc-1", None, None))
        departures: list[tuple[str, str]] = []

        async def departed(role: str, conversation_id: str) -> None:
            departures.append((role, conversation_id))

        assert await redis.zrem(f"{shared.PREFIX}:nodes", alive.node)
        await other._let_go(alive.node, departed)
        assert departures == [("victim", "c-1")]
        assert not await other.victim_present("c-1")

        task = asyncio.create_task(alive.run(departed))
        try:
            for _ in range(50):
                if await other.victim_present("c-1"):
                    break
                await asyncio.sleep(0.1)
        finally:
            alive.stop()
            await task
        assert await other.victim_present("c-1")
        assert await other.officers_on_duty() == [OnDutyOfficer("acc-1", None, None)]
        await redis.aclose()
