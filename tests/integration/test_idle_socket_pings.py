"""What an idle socket keeps is cut down (docs/performance.md, "Memory per idle socket"), and
what it did stays: engine.io's pings come from one task for every socket, on either transport, a
socket that stops answering them is let go; its queue (``engine._Outbox``) keeps
asyncio.Queue's order and waits; the handshake still carries the security headers."""

from __future__ import annotations

import asyncio
import collections
import json

import aiohttp
from raw_socket import RawSocket

from bridge.edges.app import EDGE
from bridge.edges.pages import SECURITY_HEADERS
from bridge.edges.socket.engine import PINGS_PER_TURN, _Outbox
from harness import Bridge

PING_INTERVAL = 0.2
PING_TIMEOUT = 0.5


def fast_pings(bridge: Bridge) -> None:
    eio = bridge.app[EDGE].server.eio
    eio.ping_interval, eio.ping_timeout = PING_INTERVAL, PING_TIMEOUT


def ping_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__name__", "") == "_ping_due"]


async def pings_answered(sock: RawSocket, seconds: float) -> int:
    """Pings read and answered over ``seconds``; other packets are dropped."""
    count = 0
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while (left := until - loop.time()) > 0:
        try:
            message = await sock.ws.receive(timeout=left)
        except TimeoutError:
            break
        assert message.type == aiohttp.WSMsgType.TEXT, message
        if message.data == "2":
            count += 1
            await sock.ws.send_str("3")
    return count


async def test_idle_websockets_are_pinged_by_one_task_and_a_silent_one_is_let_go(
    bridge: Bridge,
) -> None:
    fast_pings(bridge)
    sessions = bridge.app[EDGE].sessions
    tokens = [await bridge.token("counsellor") for _ in range(4)]
    socks = [await RawSocket.open(bridge.url, token) for token in tokens]
    silent = socks.pop()  # reads nothing, so answers no ping
    tasks_seen: set[int] = set()

    async def count_ping_tasks() -> None:
        while True:
            tasks_seen.add(len(ping_tasks()))
            await asyncio.sleep(PING_INTERVAL / 4)

    counting = asyncio.create_task(count_ping_tasks())
    try:
        counts = await asyncio.gather(*(pings_answered(sock, 8 * PING_INTERVAL) for sock in socks))
        assert min(counts) >= 3, counts
        # One task for every socket (none while no ping is due).
        assert max(tasks_seen) == 1, tasks_seen
        # Past its ping timeout the silent socket is gone, its state too; the others stay.
        assert await silent.ended()
        assert len(sessions.sockets) == 3
        for sock in socks:
            assert (await sock.call("queue.list", {}))["error"]["code"] == "wrong_state"
    finally:
        counting.cancel()
        for sock in [*socks, silent]:
            await sock.close()


async def test_a_long_polling_socket_is_pinged_too(bridge: Bridge) -> None:
    fast_pings(bridge)
    token = await bridge.token("counsellor")
    base = f"{bridge.url}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as response:
            opened = await response.text()
        session = f"{base}&sid={json.loads(opened[1:])['sid']}"
        async with http.post(session, data="40" + json.dumps({"token": token})) as response:
            assert response.status == 200
        async with http.get(session) as response:
            assert (await response.text()).startswith("40")
        for _ in range(3):
            async with http.get(session) as response:
                assert await response.text() == "2"
            async with http.post(session, data="3") as response:
                assert response.status == 200
    assert len(bridge.app[EDGE].sessions.sockets) == 1


async def test_the_websocket_handshake_still_carries_the_security_headers(
    bridge: Bridge,
) -> None:
    url = f"{bridge.url}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        for name, value in SECURITY_HEADERS.items():
            assert ws._response.headers[name] == value
        assert (await ws.receive_str()).startswith("0{")


async def test_the_outbox_keeps_order_waits_and_joins_as_asyncio_queue_does() -> None:
    box = _Outbox()
    assert box.empty() and box.qsize() == 0
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    await box.put("a")
    box.put_nowait("b")
    assert await waiting == "a"
    assert box.qsize() == 1
    assert box.get_nowait() == "b"
    # A get cancelled once woken for an item (a poll's timeout just then) leaves the item to
    # the next.
    first, second = asyncio.create_task(box.get()), asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.put_nowait("c")
    first.cancel()
    assert await asyncio.wait_for(second, 1) == "c"
    assert first.cancelled()
    # join waits for every item taken to be done.
    joined = asyncio.create_task(box.join())
    await asyncio.sleep(0)
    for _ in range(2):
        box.task_done()
        assert not joined.done()
    box.task_done()
    await asyncio.wait_for(joined, 1)
    await asyncio.wait_for(box.join(), 1)  # nothing unfinished: at once
    try:
        box.task_done()
    except ValueError:
        pass
    else:
        raise AssertionError("task_done past the items put")
    try:
        box.get_nowait()
    except asyncio.QueueEmpty:
        pass
    else:
        raise AssertionError("get_nowait of an empty outbox")


async def test_sockets_falling_due_together_are_pinged_a_few_at_a_time(bridge: Bridge) -> None:
    """Sockets opened together fall due together; the ping task lets other work in after every
    ``PINGS_PER_TURN`` pings instead of writing them all in one turn of the loop."""
    eio = bridge.app[EDGE].server.eio
    eio.ping_interval = 0.01
    turn = 0
    pinged_in_turn: list[int] = []
    all_pinged = asyncio.Event()

    class Due:
        closing = closed = False
        last_ping: float | None = None

        async def send(self, packet: object) -> None:
            pinged_in_turn.append(turn)
            if len(pinged_in_turn) == 5 * PINGS_PER_TURN:
                all_pinged.set()

    async def count_turns() -> None:
        nonlocal turn
        while True:
            await asyncio.sleep(0)
            turn += 1

    counting = asyncio.create_task(count_turns())
    try:
        for _ in range(5 * PINGS_PER_TURN):
            eio.ping_later(Due())
        async with asyncio.timeout(5):
            await all_pinged.wait()
    finally:
        counting.cancel()
    per_turn = collections.Counter(pinged_in_turn)
    assert max(per_turn.values()) <= PINGS_PER_TURN, per_turn
    assert len(per_turn) >= 5
