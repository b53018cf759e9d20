"""Two bridge nodes over Redis behind nginx with the site shipped in deploy/.

The nodes share the database the run uses, the data directory (the log key) and a real Redis;
nginx picks a node by the client's address, so the parties connect from addresses of their own
on the loopback network (127.0.0.x) to land where the test wants them: the victim and the
officer on node A, the counsellor on node B. What one node decides reaches the sockets of the
other: the counsellor ending the police part on B removes the officer on A, as does the
victim's withdrawal. Then node A is killed with SIGKILL while everyone sends: its clients come
back through nginx on node B, send again what was not acknowledged, and nothing acknowledged is
lost or stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from raw_socket import RawSocket

from bridge.adapters.redis_presence import LEASE_SECONDS, RENEW_SECONDS
from bridge.client import (
    CounsellorClient,
    Network,
    OfficerClient,
    Refused,
    VictimClient,
)
from harness import (
    Bridge,
    Node,
    RedisServer,
    audit_verify,
    error_code,
    policy_text,
    query,
    redis_server,
    staffed,
    state_is,
)
from harness.nginx import Proxy, proxy_in_front

SENDS = 40  # per party, while node A is killed


@dataclass
class Cluster:
    bridge: Bridge
    a: Node
    b: Node
    redis: RedisServer
    proxy: Proxy | None = None

    @property
    def front(self) -> Proxy:
        assert self.proxy is not None, "this cluster has no proxy in front"
        return self.proxy

    async def landing(self, address: str) -> Node:
        """The node nginx sends a client from ``address`` to: an engine.io session is opened
        through nginx and looked for on node A."""
        network = Network(self.front.tls, address)
        async with network.session() as http:
            url = self.front.https + "/socket.io/?EIO=4&transport=polling"
            async with http.get(url) as response:
                sid = json.loads((await response.text())[1:])["sid"]
            async with aiohttp.ClientSession() as direct:
                probe = f"{self.a.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
                async with direct.post(probe, data="1") as response:  # closes it, if A has it
                    return self.a if response.status == 200 else self.b

    async def address_on(self, node: Node) -> Network:
        for last in range(2, 120):
            address = f"127.0.0.{last}"
            if await self.landing(address) is node:
                return Network(self.front.tls, address)
        raise AssertionError("no loopback address lands on that node")


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path, *, proxy: bool = False, policy: str | None = None
) -> AsyncIterator[Cluster]:
    """Nodes A and B over one Redis (and nginx in front, with ``proxy``); sessions are checked
    against the database five times a second."""
    bridge = await staffed(tmp_path / "data", policy)
    await bridge.stop()
    with redis_server() as redis:
        env = {"BRIDGE_REDIS_URL": redis.url, "BRIDGE_SESSION_CHECK_SECONDS": "0.2"}
        if policy is not None:
            env["BRIDGE_POLICY_FILE"] = str(bridge.settings.policy_file)
        a = Node(bridge.data_dir, name="a", env=env)
        b = Node(bridge.data_dir, name="b", env=env)
        try:
            await a.start()
            await b.start()
            bridge.port = b.port  # the harness's own requests (tokens) go to node B
            async with contextlib.AsyncExitStack() as stack:
                front = None
                if proxy:
                    front = await stack.enter_async_context(
                        proxy_in_front(tmp_path / "nginx", [a.port, b.port])
                    )
                try:
                    yield Cluster(bridge, a, b, redis, front)
                finally:
                    await bridge.close_clients()
        finally:
            await asyncio.gather(a.stop(), b.stop())
    for node in (a, b):
        assert "Traceback" not in node.errors(), node.errors()


async def sockets_on(node: Node, role: str) -> float:
    """The node's open sockets of ``role``, from its own metrics."""
    async with aiohttp.ClientSession() as http, http.get(node.url + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(f'bridge_sockets{{role="{role}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"no bridge_sockets for {role}")


async def bridged(
    victim: VictimClient, counsellor: CounsellorClient, officer: OfficerClient
) -> None:
    """The counsellor proposes, the victim grants, the officer accepts: the bridge is joined
    (wherever each of them is connected)."""
    await counsellor.propose(victim.conversation_id, "informational")
    await victim.next_event("consent.prompt")
    await victim.grant()
    invite = await officer.next_event("invite")
    await officer.accept(invite["invite_id"])
    for party in (victim, counsellor):
        await party.next_event("bridge.state", where=state_is("joined"))


@pytest.mark.heavy
async def test_two_nodes_behind_nginx_share_the_driegesprek_and_survive_a_kill(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, proxy=True) as c:
        on_a, on_b = await c.address_on(c.a), await c.address_on(c.b)
        officer = await c.bridge.officer(url=c.front.https, network=on_a)
        victim = await c.bridge.victim(url=c.front.https, network=on_a)
        counsellor = await c.bridge.counsellor(url=c.front.https, network=on_b)
        assert [await sockets_on(c.a, r) for r in ("victim", "officer", "counsellor")] == [1, 1, 0]
        assert [await sockets_on(c.b, r) for r in ("victim", "officer", "counsellor")] == [0, 0, 1]
        cid = victim.conversation_id

        await counsellor.join(cid)
        await bridged(victim, counsellor, officer)
        seq = await counsellor.send(cid, "Van node B naar node A.")
        for party in (victim, officer):
            event = await party.next_event("message", where=lambda e: e["seq"] == seq)
            assert event["verified"] and event["text"] == "Van node B naar node A."

        # The counsellor ends the police part on B: the officer on A is out at once.
        await counsellor.end(cid)
        ended = await officer.next_event("bridge.state", where=state_is("ended"))
        assert ended["reason"] == "counsellor"
        with pytest.raises(Refused) as refused:
            await officer.send(cid, "Nog iets?")
        assert refused.value.code == "no_consent"
        seq = await victim.send("Alleen voor de hulpverlener nu.")
        await counsellor.next_event("message", where=lambda e: e["seq"] == seq)
        assert seq not in officer.conversations[cid].messages

        # A new consent, then the victim withdraws it: the officer is out again.
        await bridged(victim, counsellor, officer)
        await victim.withdraw()
        withdrawn = await officer.next_event("bridge.state", where=state_is("ended"))
        assert withdrawn["reason"] == "withdrawn"
        await counsellor.next_event("bridge.state", where=state_is("ended"))
        await bridged(victim, counsellor, officer)

        # Node A dies under load; its clients come back on B and resend what was not acked.
        acked: dict[str, list[int]] = {}

        under_way = asyncio.Event()  # set once a third of the messages are acknowledged

        async def sending(name: str, send: Callable[[str], Awaitable[int]]) -> None:
            seqs = acked.setdefault(name, [])
            for n in range(SENDS):
                seqs.append(await send(f"{name} {n}"))
                if sum(len(group) for group in acked.values()) >= SENDS:
                    under_way.set()

        load = [
            asyncio.create_task(sending("victim", victim.send)),
            asyncio.create_task(sending("counsellor", lambda t: counsellor.send(cid, t))),
            asyncio.create_task(sending("officer", lambda t: officer.send(cid, t))),
        ]
        await under_way.wait()
        await c.a.kill()
        await asyncio.wait_for(asyncio.gather(*load), 120)
        assert victim.resumes >= 1 and officer.resumes >= 1
        assert await sockets_on(c.b, "victim") == 1 and await sockets_on(c.b, "officer") == 1

        stored = query(
            c.bridge.data_dir,
            "SELECT seq, client_msg_id FROM messages WHERE conversation_id = ? ORDER BY seq",
            cid,
        )
        seqs = [seq for seq, _ in stored]
        assert seqs == list(range(1, len(seqs) + 1))
        assert len({m for _, m in stored}) == len(stored)
        every_ack = [s for group in acked.values() for s in group]
        assert len(every_ack) == 3 * SENDS and len(set(every_ack)) == len(every_ack)
        assert set(every_ack) <= set(seqs)

        # Bad input still gets its code on the node that took over, and changes nothing.
        ack = await victim.call_raw("message.send", {"envelope": {"v": 1}})
        assert error_code(ack) == "invalid"
        ack = await officer.call_raw("consent.withdraw", {"conversation_id": cid})
        assert error_code(ack) == "forbidden"

        # Still one bridge, joined, with the counsellor on B; the log verifies on B.
        later = await victim.send("Ben je er nog?")
        await officer.next_event("message", where=lambda e: e["seq"] == later)
        status, report = await audit_verify(c.bridge, c.b.url)
        assert status == 0, report


# --- each node sees what the other one holds ---------------------------------------------------


async def joined_across(c: Cluster) -> tuple[VictimClient, CounsellorClient, OfficerClient]:
    """A driegesprek with the victim on node A and the counsellor and officer on node B."""
    officer = await c.bridge.officer(url=c.b.url)
    victim = await c.bridge.victim(url=c.a.url)
    counsellor = await c.bridge.counsellor(url=c.b.url)
    await counsellor.join(victim.conversation_id)
    await bridged(victim, counsellor, officer)
    return victim, counsellor, officer


@pytest.mark.slow
async def test_a_dead_nodes_victim_is_let_go_and_the_police_part_pauses(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        victim, counsellor, officer = await joined_across(c)
        victim.auto_reconnect = False  # she does not come back
        await c.a.kill()
        # Node B lets go of A once its lease has run out (LEASE_SECONDS, renewed every
        # RENEW_SECONDS), and runs the departure A never ran.
        wait = 3 * (LEASE_SECONDS + RENEW_SECONDS)
        left = await counsellor.next_event(
            "participant", timeout=wait, where=lambda e: e["event"] == "left"
        )
        assert left["participant"]["role"] == "victim"
        for party in (counsellor, officer):
            paused = await party.next_event("bridge.state", timeout=wait, where=state_is("paused"))
            assert paused["reason"] == "victim_away"


@pytest.mark.slow
async def test_the_counsellor_leaving_one_node_pauses_the_officer_on_the_other(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path) as c:
        officer = await c.bridge.officer(url=c.a.url)
        victim = await c.bridge.victim(url=c.a.url)
        counsellor = await c.bridge.counsellor(url=c.b.url)
        cid = victim.conversation_id
        await counsellor.join(cid)
        await bridged(victim, counsellor, officer)  # proposed on B, granted and accepted on A
        await counsellor.aclose()
        for party in (victim, officer):
            paused = await party.next_event("bridge.state", where=state_is("paused"))
            assert paused["reason"] == "counsellor_away"
        back = await c.bridge.counsellor(url=c.b.url)
        await back.join(cid)
        for party in (victim, officer):
            await party.next_event("bridge.state", where=state_is("joined"))


@pytest.mark.slow
async def test_an_officer_on_duty_on_one_node_is_invited_from_the_other(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        officer = await c.bridge.officer(url=c.a.url)
        victim = await c.bridge.victim(url=c.b.url)
        counsellor = await c.bridge.counsellor(url=c.b.url)
        await counsellor.join(victim.conversation_id)
        # Granted on B, with the officer on duty on A: only an officer seen on duty is sent the
        # invite at the grant (with nobody on duty it waits, and no invite event comes).
        await bridged(victim, counsellor, officer)


@pytest.mark.slow
async def test_a_withdrawal_on_one_node_refuses_the_next_message_on_the_other(
    tmp_path: Path,
) -> None:
    """Node B keeps the conversation's standing in memory between messages (joined, from the
    officer's first message). The victim withdraws on node A: the conversation's version moves
    in that transaction, so the officer's next message on B, a new one or the first sent again,
    is checked against the conversation as it is now and refused, and nothing is stored."""
    async with cluster(tmp_path) as c:
        victim, counsellor, officer = await joined_across(c)  # the victim on A, the others on B
        cid = victim.conversation_id
        both = ["care", "investigation"]
        first = officer.build("Ik lees mee.", audience=both)
        seq = await officer.post(first)
        await victim.next_event("message", where=lambda e: e["seq"] == seq)
        unsent = officer.build("Nog een vraag.", audience=both)

        await victim.withdraw()
        for party in (officer, counsellor):
            await party.next_event("bridge.state", where=state_is("ended"))
        count = "SELECT COUNT(*) FROM messages WHERE conversation_id = ?"
        before = query(c.bridge.data_dir, count, cid)
        for envelope in (unsent, first):
            ack = await officer.call_raw("message.send", {"envelope": envelope})
            assert error_code(ack) == "no_consent"
        assert query(c.bridge.data_dir, count, cid) == before
        # The counsellor, on the same node, goes on in the care scope.
        later = await counsellor.send(cid, "De agent leest niet meer mee.")
        await victim.next_event("message", where=lambda e: e["seq"] == later)
        assert later == seq + 1


@pytest.mark.slow
async def test_a_logout_on_one_node_ends_the_sockets_on_the_other(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c:
        token = await c.bridge.token("counsellor")
        on_a = await RawSocket.open(c.a.url, token)
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.delete(
                    c.b.url + "/api/v1/session", headers={"Authorization": f"Bearer {token}"}
                ) as response,
            ):
                assert response.status == 204
            assert await on_a.ended()
        finally:
            await on_a.close()


@pytest.mark.slow
async def test_a_deadline_expires_once_with_two_nodes(tmp_path: Path) -> None:
    async with cluster(tmp_path, policy=policy_text(prompt_expiry_seconds=1)) as c:
        victim = await c.bridge.victim(url=c.a.url)
        counsellor = await c.bridge.counsellor(url=c.b.url)
        cid = victim.conversation_id
        await counsellor.join(cid)
        await counsellor.propose(cid, "informational")
        for party in (victim, counsellor):
            expired = await party.next_event("bridge.state", where=state_is("expired"))
            assert expired["reason"] == "no_answer"
        # Both nodes' expiry loops saw the deadline; one moved it, the other found it done.
        await counsellor.propose(cid, "report")
        for party in (victim, counsellor):
            await party.next_event("bridge.state", where=state_is("expired"))
        kinds = query(
            c.bridge.data_dir,
            "SELECT kind FROM log_entries WHERE conversation_id = ? AND kind = 'consent.expired'",
            cid,
        )
        assert len(kinds) == 2
        assert [e for n, e in victim.received if n == "bridge.state" and e["state"] == "expired"]


@pytest.mark.slow
async def test_readiness_names_redis(tmp_path: Path) -> None:
    async with cluster(tmp_path) as c, aiohttp.ClientSession() as http:
        async with http.get(c.a.url + "/readyz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "database": True, "redis": True}
        c.redis.stop()
        async with http.get(c.a.url + "/readyz") as response:
            assert response.status == 503
            assert await response.json() == {
                "status": "unavailable",
                "database": True,
                "redis": False,
            }
