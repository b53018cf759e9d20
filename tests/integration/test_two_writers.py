"""Two ``bridge serve`` processes writing into one conversation and one log at the same time.

The nodes share the database the run uses (PostgreSQL, or SQLite) and the data directory (the
log key). The victim writes through node A and the counsellor through node B into the same
conversation, while new conversations are started on both nodes, each a log entry. Afterwards the
seqs run 1..n without gaps or doubles and each ack named its message's seq; the log has one
entry per index and ``bridge audit verify`` finds it intact: it cannot fork, because its tree
head is written by one transaction at a time, whichever node that is on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bridge.client import VictimClient
from harness import Bridge, Node, audit_verify, query, staffed

MESSAGES = 60  # from each of the two writers
STARTS = 15  # new conversations started on each node


async def _started(url: str, count: int) -> list[VictimClient]:
    victims = []
    for _ in range(count):
        victims.append(await VictimClient.create(url))
    return victims


@pytest.mark.slow
async def test_two_nodes_share_one_conversation_and_one_log(tmp_path: Path) -> None:
    bridge: Bridge = await staffed(tmp_path / "data")
    await bridge.stop()
    a, b = Node(bridge.data_dir, name="a"), Node(bridge.data_dir, name="b")
    await asyncio.gather(a.start(), b.start())
    bridge.port = a.port  # the harness's own requests (tokens) go to node A
    others: list[VictimClient] = []
    try:
        victim = await bridge.victim(url=a.url)
        counsellor = await bridge.counsellor(url=b.url)
        await counsellor.join(victim.conversation_id)

        async def write(send: Callable[[str], Awaitable[int]], who: str) -> list[int]:
            return [await send(f"{who} {n}") for n in range(MESSAGES)]

        cid = victim.conversation_id
        victim_seqs, counsellor_seqs, *started = await asyncio.gather(
            write(victim.send, "victim"),
            write(lambda text: counsellor.send(cid, text), "counsellor"),
            _started(a.url, STARTS),
            _started(b.url, STARTS),
        )
        for group in started:
            others.extend(group)

        acked = sorted(victim_seqs + counsellor_seqs)
        assert acked == list(range(1, 2 * MESSAGES + 1))
        stored = query(bridge.data_dir, "SELECT seq FROM messages WHERE conversation_id = ?", cid)
        assert sorted(seq for (seq,) in stored) == acked
        [(last_seq,)] = query(
            bridge.data_dir, "SELECT last_seq FROM conversations WHERE id = ?", cid
        )
        assert last_seq == 2 * MESSAGES

        indices = [idx for (idx,) in query(bridge.data_dir, "SELECT idx FROM log_entries")]
        assert sorted(indices) == list(range(len(indices)))
        [(size,)] = query(bridge.data_dir, "SELECT size FROM log_state")
        assert size == len(indices)
        started_entries = query(
            bridge.data_dir, "SELECT COUNT(*) FROM log_entries WHERE kind = 'conversation.started'"
        )
        assert started_entries == [(1 + 2 * STARTS,)]
        for node in (a, b):
            status, report = await audit_verify(bridge, node.url)
            assert status == 0, report
    finally:
        for client in others:
            await client.aclose()
        await bridge.close_clients()
        await asyncio.gather(a.stop(), b.stop())
    for node in (a, b):
        assert "Traceback" not in node.errors(), node.errors()
