"""Two ``bridge serve`` nodes over one Redis count against one set of limits: failed logins for an
account, new conversations from one address and the sockets of one victim token, spread over
both nodes, meet the limit of one node; each node counting alone would allow twice as much. A
node that dies stops counting its sockets once its lease has run out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from raw_socket import RawSocket, login

from bridge.client import Refused
from harness import Node, redis_server, staffed

# Each of these is reached from both nodes: half of it on each would pass a node counting alone.
LIMITS = """
login_failures_per_account = 4
login_lockout_seconds = 600.0
login_lockout_max_seconds = 3600.0
conversations_per_minute = 4
sockets_per_victim = 3
"""


async def _refused(url: str, token: str) -> str:
    with pytest.raises(Refused) as info:
        await RawSocket.open(url, token)
    return info.value.code


async def _opened_within(url: str, token: str, seconds: float) -> RawSocket:
    """A socket as soon as one fits under the limit again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            return await RawSocket.open(url, token)
        except Refused as exc:
            assert exc.code == "rate_limited" and loop.time() < deadline, exc.code
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_limits_spread_over_two_nodes_are_counted_once(tmp_path: Path) -> None:
    bridge = await staffed(tmp_path / "data")
    await bridge.stop()
    with redis_server() as redis:
        env = {"BRIDGE_REDIS_URL": redis.url}
        a = Node(bridge.data_dir, name="a", env=env, config=LIMITS)
        b = Node(bridge.data_dir, name="b", env=env, config=LIMITS)
        await asyncio.gather(a.start(), b.start())
        bridge.port = a.port
        sockets: list[RawSocket] = []
        try:
            # Failed logins for one account: two on each node lock it out on both.
            for node in (a, b, a, b):
                assert (await login(node.url, "counsellor", "wrong"))["status"] == 401
            for node in (a, b):
                answer = await login(node.url, "counsellor", bridge.passwords["counsellor"])
                assert (answer["status"], answer["error"]["code"]) == (429, "rate_limited")

            # New conversations from one address (127.0.0.1): two on each node, then none.
            victims = [await bridge.victim(url=node.url) for node in (a, b, a, b)]
            for node in (a, b):
                with pytest.raises(Refused) as info:
                    await bridge.victim(url=node.url)
                assert (info.value.code, info.value.status) == ("rate_limited", 429)

            # One victim token's sockets: its page's on A, one more on each node, then none.
            token = str(victims[0].token)
            sockets += [await RawSocket.open(b.url, token), await RawSocket.open(a.url, token)]
            assert await _refused(a.url, token) == await _refused(b.url, token) == "rate_limited"
            # A socket closed on one node frees its place on the other.
            await sockets.pop(0).close()
            sockets.append(await _opened_within(a.url, token, 10.0))
            assert await _refused(b.url, token) == "rate_limited"

            # Node A dies with all three: once its lease has run out they no longer count.
            await a.kill()
            sockets += [await _opened_within(b.url, token, 20.0) for _ in range(3)]
            assert await _refused(b.url, token) == "rate_limited"
        finally:
            for raw in sockets:
                await raw.close()
            await bridge.close_clients()
            await asyncio.gather(a.stop(), b.stop())
    for node in (a, b):
        assert "Traceback" not in node.errors(), node.errors()
