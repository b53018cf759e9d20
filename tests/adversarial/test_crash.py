"""The bridge killed with SIGKILL while everyone sends, restarted, several times over.

The server runs as its own process (``bridge serve``) on SQLite with ``synchronous=FULL``. Six
parties send at once into three conversations, one of them a driegesprek with its officer. At
random moments the process is killed and started again on the same data and port. Each party
then connects again by hand, registers and joins again, and resends every envelope whose ack it
did not get, unchanged (same ``client_msg_id``, same bytes).

Afterwards: every acknowledged message is in the history exactly once, under the seq its ack
gave; seqs run 1..n without gaps or doubles; nothing else was stored; the driegesprek is joined
again once its counsellor is back, with one grant and as many resumes as pauses; and
``bridge audit verify`` finds the log intact.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from adversary import TALLY

from bridge.client import BridgeClient, OfficerClient, Refused, StaffClient, VictimClient
from harness import (
    BOTH,
    Node,
    audit_verify,
    driegesprek,
    picked_up,
    query,
    staffed,
)

KILLS = 4


@dataclass
class Sender:
    """One party sending into its conversations, resending what was not acknowledged."""

    client: BridgeClient
    conversations: list[str]
    audiences: list[list[str]]
    acked: dict[str, tuple[str, int]] = field(default_factory=dict)  # client_msg_id -> cid, seq
    pending: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    connected: bool = True

    def __post_init__(self) -> None:
        # The test brings the client back itself: no reconnecting or waiting inside the client
        # (where the client has them), so that what happens is exactly what is done here.
        self.client.auto_reconnect = False
        self.client.send_wait = 0.0
        self.turn = itertools.cycle(self.conversations)

    async def come_back(self) -> None:
        """Connect, register and join again, by hand."""
        await self.client.connect()
        if isinstance(self.client, StaffClient):
            await self.client.register_device()
        for cid in self.conversations:
            if isinstance(self.client, VictimClient):
                await self.client.join()
            elif isinstance(self.client, OfficerClient):
                await self.client.rejoin(cid)
            else:
                await self.client.join(cid)  # type: ignore[attr-defined]

    async def run(self, up: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set() or self.pending:
            if not self.connected:
                await up.wait()
                try:
                    await self.come_back()
                except (ConnectionError, TimeoutError, Refused, OSError):
                    await asyncio.sleep(0.1)
                    continue
                self.connected = True
            if self.pending:  # the oldest unacknowledged envelope, exactly as built
                client_msg_id, (cid, envelope) = next(iter(self.pending.items()))
            else:
                cid = next(self.turn)
                envelope = self.client.build(
                    f"bericht {len(self.acked)}",
                    audience=random.choice(self.audiences),
                    conversation_id=cid,
                )
                client_msg_id = str(envelope["client_msg_id"])
                self.pending[client_msg_id] = (cid, envelope)
            self.attempts[client_msg_id] = self.attempts.get(client_msg_id, 0) + 1
            try:
                seq = await self.client.post(envelope)
            except Refused as refusal:
                # After a restart the driegesprek waits for its counsellor: the investigation
                # audience is refused until then, and sent again.
                assert refusal.code == "wrong_state" and "investigation" in envelope["audience"], (
                    refusal
                )
                await asyncio.sleep(0.05)
                continue
            except (ConnectionError, TimeoutError, OSError):
                self.connected = False
                continue
            del self.pending[client_msg_id]
            self.acked[client_msg_id] = (cid, seq)


async def history(victim: VictimClient) -> list[tuple[int, str]]:
    """``(seq, client_msg_id)`` of every message of the victim's conversation, in order."""
    found: list[tuple[int, str]] = []
    while True:
        page = await victim.history(after_seq=found[-1][0] if found else 0, limit=500)
        if not page:
            return found
        found += [(m.seq, str(m.envelope["client_msg_id"])) for m in page]


def log_kinds(data_dir: Path, conversation_id: str) -> list[str]:
    sql = "SELECT kind FROM log_entries WHERE conversation_id = ? ORDER BY idx"
    return [kind for (kind,) in query(data_dir, sql, conversation_id)]


@pytest.mark.heavy
async def test_killed_and_restarted_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    # Accounts and org keys are made in-process (cheap Argon2id); then the data is served by a
    # separate process that can be killed.
    bridge = await staffed(tmp_path / "data")
    await bridge.stop()
    server = Node(bridge.data_dir)
    bridge.port = server.port
    await server.start()
    try:
        victim_a, counsellor_a, officer = await driegesprek(bridge)
        victim_b, counsellor_b = await picked_up(bridge)
        victim_c = await bridge.victim()
        counsellor_c = await bridge.counsellor("counsellor2")
        await counsellor_c.join(victim_c.conversation_id)
        a, b, c = (v.conversation_id for v in (victim_a, victim_b, victim_c))
        senders = [
            Sender(victim_a, [a], [["care"], BOTH]),
            Sender(counsellor_a, [a], [["care"], BOTH]),
            Sender(officer, [a], [BOTH]),
            Sender(victim_b, [b], [["care"]]),
            Sender(counsellor_b, [b], [["care"]]),
            Sender(victim_c, [c], [["care"]]),
            Sender(counsellor_c, [c], [["care"]]),
        ]
        up, stop = asyncio.Event(), asyncio.Event()
        up.set()
        tasks = [asyncio.create_task(s.run(up, stop)) for s in senders]
        for _ in range(KILLS):
            await asyncio.sleep(random.uniform(0.5, 1.5))
            up.clear()
            await server.kill()
            await server.start()
            up.set()
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)

        acked = {k: v for s in senders for k, v in s.acked.items()}
        resent = [k for s in senders for k, n in s.attempts.items() if n > 1]
        TALLY["crash: kills"] += KILLS
        TALLY["crash: messages acknowledged"] += len(acked)
        TALLY["crash: messages resent"] += len(resent)
        assert resent, "no send was cut off by a kill: nothing was resent"

        # Every acknowledged message once, under its seq; seqs 1..n; nothing else.
        for victim in (victim_a, victim_b, victim_c):
            cid = victim.conversation_id
            stored = await history(victim)
            seqs = [seq for seq, _ in stored]
            assert seqs == list(range(1, len(stored) + 1)), cid
            by_id = dict((client_msg_id, seq) for seq, client_msg_id in stored)
            assert len(by_id) == len(stored), "a client_msg_id stored twice"
            assert by_id == {k: seq for k, (c_id, seq) in acked.items() if c_id == cid}

        # The driegesprek: back to joined with its counsellor; one grant; each pause resumed.
        rejoined = await victim_a.join()
        assert rejoined["conversation"]["bridge"]["state"] == "joined"
        for victim in (victim_b, victim_c):
            assert (await victim.join())["conversation"]["bridge"] is None
        kinds = log_kinds(bridge.data_dir, a)
        assert kinds.count("consent.requested") == kinds.count("consent.granted") == 1
        assert kinds.count("officer.joined") == 1
        assert kinds.count("bridge.paused") == kinds.count("bridge.resumed") >= 1

        status, report = await audit_verify(bridge, server.url)
        assert status == 0, report
    finally:
        await bridge.close_clients()
        await server.stop()
    assert "Traceback" not in server.errors()
