"""Targets (c), (d) and (f) of ``bench/compare.py``: the bridge on SQLite, on PostgreSQL, and as
two nodes over Redis (on PostgreSQL, the database several nodes share).

Servers, database and Redis are the test harness's (``tests/harness``: :class:`Node` runs
``bridge serve`` with a config file, :class:`Cluster` a PostgreSQL of its own in a temporary
directory, :class:`RedisServer` a Redis without persistence), all pinned to the server core.
Accounts, org keys and the config come from ``bench/load.py``'s ``prepare`` (Argon2id at its
minimum, the per-address limit on new conversations lifted), with the harness's
``FAST_SENDING``: no per-socket token bucket, as the generator offers thousands a second.

The driegesprekken are set up as ``bench/load.py`` sets them up, through the real protocol with the
Python client, from driver processes on the generator core: the victim creates, the counsellor
picks up and proposes, the victim grants, the officer accepts. What a member needs to come back
as itself goes to the generator: its token and device key pair (in the generator's config, a
file of mode 0600 removed once read), the conversation's and epoch's ids and public keys. The
drivers hold their sockets until the first generator has joined every room (a victim's token
allows 4 sockets and an account 20, so both can be connected; closing first would pause every
bridge for its absent victim and counsellor), then close them, so that only the generator's
sockets receive.

With two nodes, a room's victim and officer connect to one node and its counsellor to the other
(alternating by room): every message crosses Redis to reach someone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import sys
import time
import traceback
from argparse import Namespace
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import idle_sockets  # type: ignore[import-not-found]  # bench/idle_sockets.py
import load  # type: ignore[import-not-found]
import psycopg

from bridge.crypto import b64u_encode
from peers.common import (
    JSON,
    ROOT,
    SERVER_CPU,
    Proc,
    SetUp,
    node_generator,
    pin_tree,
    spawning_on,
)

sys.path.insert(0, str(ROOT / "tests"))  # the test harness is a package there
from harness.nodes import FAST_SENDING, Node
from harness.postgres import Cluster
from harness.redis_server import RedisServer

__all__ = ["BridgeTarget", "stop_shared", "targets"]

SETUP_TIMEOUT = 1800.0  # seconds the drivers may take to set up every room


# --- PostgreSQL, one cluster for the run -------------------------------------------------------

_cluster: Cluster | None = None


async def cluster(fsync: bool) -> Cluster:
    """The run's PostgreSQL (started once, on the server core). The harness starts it with fsync
    off, for tests; ``fsync`` turns it on again (with full page writes), so that a commit is as
    durable as SQLite's with ``synchronous = FULL``."""
    global _cluster
    if _cluster is None:
        made = Cluster()
        await asyncio.to_thread(made.start)
        _cluster = made
        pin_tree(postmaster(made), SERVER_CPU)
        if fsync:
            with psycopg.connect(made.url("postgres", "postgresql"), autocommit=True) as admin:
                admin.execute("ALTER SYSTEM SET fsync = on")
                admin.execute("ALTER SYSTEM SET full_page_writes = on")
                admin.execute("SELECT pg_reload_conf()")
    return _cluster


def postmaster(made: Cluster) -> int:
    return int((made.root / "data" / "postmaster.pid").read_text().split()[0])


def stop_shared() -> None:
    """Stop the run's PostgreSQL, if one was started."""
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """``BRIDGE_*`` settings for code in this process that reads them (``load.prepare``)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- the set-up drivers ------------------------------------------------------------------------


def credentials(conv: Any) -> JSON:
    """What the generator needs of one set-up driegesprek (``load.Conv``) to come back as its
    three members: tokens, device key pairs, the conversation's public keys."""
    officer, victim, counsellor = conv.clients  # the order load.set_up_bridge makes them in
    conversation = victim.conversation
    members = []
    for role, client in (("victim", victim), ("counsellor", counsellor), ("officer", officer)):
        members.append(
            {
                "role": role,
                "token": client.token,
                "device_id": client.device_id,
                "ed25519_seed": b64u_encode(bytes(client.keys.signing)),
                "x25519_private": b64u_encode(bytes(client.keys.box)),
            }
        )
    return {
        "conversation_id": conv.conversation_id,
        "care_public": conversation.care_public,
        "epoch_id": conversation.epoch["epoch_id"],
        "epoch_public": conversation.epoch["public"],
        "victim_device": conversation.victim_device,
        "members": members,
    }


async def _set_up(pipe: Connection, url: str, indices: list[int]) -> None:
    loop = asyncio.get_running_loop()
    convs = [load.Conv(i) for i in indices]
    tally = load.Tally()
    began = time.perf_counter()
    await load.set_up_bridge(url, convs, tally)
    seconds = time.perf_counter() - began
    rooms = [(conv.index, credentials(conv)) for conv in convs if conv.parties]
    pipe.send({"rooms": rooms, "seconds": seconds, "errors": dict(tally.errors)})
    await loop.run_in_executor(None, pipe.recv)  # until the generator holds the rooms
    # engine.io's client logs an error for each socket closed while its writer waits: noise.
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
    for conv in convs:
        for close in conv.closers:
            with contextlib.suppress(Exception):
                await close()
    pipe.send("closed")


def _driver_main(pipe: Connection, url: str, indices: list[int]) -> None:
    try:
        asyncio.run(_set_up(pipe, url, indices))
    except BaseException:
        pipe.send({"failed": traceback.format_exc()})
        raise


# --- the target --------------------------------------------------------------------------------


class BridgeTarget:
    """The bridge: ``database`` "sqlite" or "postgresql", ``nodes`` 1 or 2 (over Redis)."""

    handshake = True

    def __init__(self, key: str, database: str, nodes: int, options: Namespace) -> None:
        self.key, self.database, self.node_count, self.options = key, database, nodes, options
        self.name = f"bridge-{database}" if nodes == 1 else f"bridge-{nodes}-nodes-redis"
        self.label = (
            f"bridge on {'SQLite' if database == 'sqlite' else 'PostgreSQL'}"
            if nodes == 1
            else f"bridge, {nodes} nodes over Redis (PostgreSQL)"
        )
        self.generator = node_generator("socketio.mjs")
        self.nodes: list[Node] = []
        self.redis: RedisServer | None = None
        self.cluster: Cluster | None = None
        self.data_dir = Path()
        self.drivers: list[tuple[Connection, Any]] = []

    async def start(self, folder: Path) -> None:
        self.data_dir = folder / "data"
        env: dict[str, str] = {}
        if self.database == "postgresql":
            self.cluster = await cluster(self.options.pg_fsync == "on")
            self.data_dir.mkdir(parents=True)
            env["BRIDGE_DATABASE_URL"] = self.cluster.url(self.cluster.database_for(self.data_dir))
        else:
            env["BRIDGE_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.data_dir / 'bridge.db'}"
        if self.node_count > 1:
            with spawning_on(SERVER_CPU):
                self.redis = RedisServer()
            pin_tree(self.redis.proc.pid, SERVER_CPU)
            env["BRIDGE_REDIS_URL"] = self.redis.url
        with environ(**env):
            # One counsellor and one officer account per room (the officer in a region of its
            # own), the org keys, the log key and the schema.
            config = await load.prepare(folder, self.options.rooms, "FULL")
        text = config.read_text() + FAST_SENDING
        for n in range(self.node_count):
            node = Node(self.data_dir, name=f"node{n + 1}", env=env, config=text)
            await self._start(node)
            self.nodes.append(node)

    async def _start(self, node: Node) -> None:
        with spawning_on(SERVER_CPU):
            await node.start()
        assert node.proc is not None
        pin_tree(node.proc.pid, SERVER_CPU)

    async def set_up(self, rooms: int) -> SetUp:
        """Set up ``rooms`` driegesprekken through node 1 from the driver processes; their
        sockets stay open until :meth:`release`."""
        url = self.nodes[0].url
        count = max(1, min(self.options.setup_drivers, rooms))
        ctx = multiprocessing.get_context("spawn")
        began = time.perf_counter()
        for n in range(count):
            parent, child = ctx.Pipe()
            indices = list(range(n, rooms, count))
            proc = ctx.Process(target=_driver_main, args=(child, url, indices), daemon=True)
            proc.start()
            self.drivers.append((parent, proc))
        answers = await asyncio.gather(
            *(asyncio.to_thread(load.receive, pipe, proc) for pipe, proc in self.drivers)
        )
        seconds = time.perf_counter() - began
        indexed = sorted(room for answer in answers for room in answer["rooms"])
        entries = []
        for index, room in indexed:
            for member, node in zip(room["members"], self._nodes_of(index), strict=True):
                member["url"] = node.url
            entries.append(room)
        errors: dict[str, int] = {}
        for answer in answers:
            for what, n in answer["errors"].items():
                errors[what] = errors.get(what, 0) + n
        return SetUp(
            url,
            entries,
            seconds,
            3 * len(entries),
            errors,
            {
                "drivers": count,
                "driver_seconds": [round(a["seconds"], 2) for a in answers],
                "rooms_per_second": round(len(entries) / seconds, 1),
            },
        )

    def _nodes_of(self, room: int) -> list[Node]:
        """The nodes of a room's victim, counsellor and officer."""
        first = self.nodes[room % len(self.nodes)]
        other = self.nodes[(room + 1) % len(self.nodes)]
        return [first, other, first]

    async def release(self) -> None:
        """The drivers close their sockets and end."""
        for pipe, _ in self.drivers:
            pipe.send("close")
        for pipe, proc in self.drivers:
            await asyncio.to_thread(load.receive, pipe, proc)
            await asyncio.to_thread(proc.join, 30)
        self.drivers = []

    def procs(self) -> dict[str, Proc]:
        found: dict[str, Proc] = {}
        for n, node in enumerate(self.nodes):
            assert node.proc is not None
            name = "bridge" if len(self.nodes) == 1 else f"bridge node {n + 1}"
            found[name] = Proc(node.proc.pid, "server", SERVER_CPU)
        if self.cluster is not None:
            found["postgresql"] = Proc(postmaster(self.cluster), "helper", SERVER_CPU)
        if self.redis is not None:
            found["redis"] = Proc(self.redis.proc.pid, "helper", SERVER_CPU)
        return found

    async def idle_sockets(self, count: int) -> JSON | None:
        """Victims made through the API of node 1, which is then started again (so that what
        it holds is the sockets, not what making them left), then ``count`` of them connected
        and joined, idle, on node 1 (``bench/idle_sockets.py``'s measure)."""
        from peers.relays import IDLE_WARM_UP, idle_options

        node = self.nodes[0]
        victims = await idle_sockets.create_victims(node.url, count + IDLE_WARM_UP)
        await node.stop()
        await self._start(node)
        targets = idle_sockets.bridge_targets(victims)
        options = idle_options(self.options)
        return dict(
            await asyncio.to_thread(idle_sockets.measure, node, "websocket", targets, options)
        )

    def errors(self) -> list[str]:
        lines = "\n".join(node.errors() for node in self.nodes).splitlines()
        return [line for line in lines if '"level": "error"' in line or "Traceback" in line]

    async def stop(self) -> None:
        for pipe, proc in self.drivers:
            with contextlib.suppress(OSError):
                pipe.send("close")
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        for node in self.nodes:
            with contextlib.suppress(Exception):
                await node.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.cluster is not None:
            self.cluster.drop(self.data_dir)


def targets(options: Namespace) -> dict[str, BridgeTarget]:
    """(c), (d) and (f) by their letters."""
    return {
        "c": BridgeTarget("c", "sqlite", 1, options),
        "d": BridgeTarget("d", "postgresql", 1, options),
        "f": BridgeTarget("f", "postgresql", 2, options),
    }
