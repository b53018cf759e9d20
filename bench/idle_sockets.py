"""Resident memory per idle socket on one server process, over websocket and over long-polling.

The bridge runs as one separate ``bridge serve`` process on a SQLite file in a temporary
directory. Its victims are made through the real API beforehand (``POST /api/v1/conversations``
on a set-up server process on the same database), so that what the measured process holds is the
sockets alone. Each socket is then opened from client processes as a victim's would be: an
engine.io handshake, the Socket.IO connect with the victim's token and ``conversation.join`` of its
conversation, acknowledged. Then nothing is sent but engine.io's pongs: the server pings every
25 s. A websocket client holds its connection; a long-polling client holds one pending GET per
socket, answered by the next ping (then a POST of the pong and the next GET).

Baseline, in the same run: the bare python-socketio relay of ``load.py`` (a separate process, no
database, no checks, no log) holding the same number of sockets on the same transport, each
connected and joined to one room.

The clients are raw engine.io clients over aiohttp (one task a socket, no Socket.IO library),
run in separate processes (``--clients``; by default one per 5,000 sockets), so that they weigh
nothing in the server's memory. Each client process connects from an address of its own,
127.0.0.2 and up: one source address has some 28,000 ephemeral ports, and a socket closed by a
client keeps its port for a minute (TIME_WAIT). The server's VmRSS (``/proc/PID/status``) is
read after ``--warm-up`` sockets are open (before) and after the others have been held open for
``--hold`` seconds (after); the difference over the number of sockets is the memory of one idle
socket. Each measurement has a fresh server process (the same victims serve each transport).
``--deflate`` adds the relay with websockets that negotiate permessage-deflate (the bridge never
does): the cost of a deflate context. It exits non-zero if a socket did not open or did not stay
open, or the bridge logged an error.

Every socket is a file descriptor in the server: the limit of open files (RLIMIT_NOFILE) is
raised for this process and those it starts to what ``--sockets`` and ``--warm-up`` need, the
hard limit too where the process may (CAP_SYS_RESOURCE); where it may not, the run stops at once
and says which limit it needs.

    .venv/bin/python bench/idle_sockets.py [--sockets 2000] [--transport both] [--json]
    .venv/bin/python bench/idle_sockets.py --transport websocket --deflate   # and its cost
    .venv/bin/python bench/idle_sockets.py --sockets 20000   # RLIMIT_NOFILE of 20,100 or more
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import load  # type: ignore[import-not-found]

from bridge import crypto

JSON = dict[str, Any]
# One socket's handshake: what the Socket.IO connect carries and the event that joins it.
Target = tuple[JSON, list[Any]]

OPEN_PARALLEL = 50  # sockets a client process opens at once
OPEN_TIMEOUT = 120.0  # seconds one socket may take to be connected and joined
CREATE_PARALLEL = 16  # conversations created at once
SOCKETS_PER_CLIENT = 5000  # sockets a client process holds, by default
# Descriptors a server process holds besides its sockets: the listening socket, the database and
# its journal, the log, the event loop's own. Measured: 10 to 12 for ``bridge serve``.
SERVER_FILES = 50
# One source address per client process (127.0.0.2 and up, none twice in a run): ephemeral
# ports, and those a closed socket holds in TIME_WAIT, are counted per address.
_SOURCES = itertools.cycle(range(2, 255))
SEPARATOR = "\x1e"  # between engine.io packets in a long-polling body


# --- one client process ------------------------------------------------------------------------


class Closed(Exception):
    """The server closed the socket or refused it."""


@dataclass
class Idle:
    """One socket of a client: connected, joined, then answering pings."""

    auth: JSON
    event: list[Any]
    ready: asyncio.Future[None] = field(default_factory=lambda: asyncio.Future())
    pings: int = 0
    closed: str = ""  # why it ended, once it has

    def read(self, text: str) -> list[str]:
        """The engine.io packets to send back for one received."""
        kind, rest = text[:1], text[1:]
        if kind == "0":  # engine.io open: connect to Socket.IO's main namespace
            return ["40" + json.dumps(self.auth)]
        if kind == "2":
            self.pings += 1
            return ["3"]
        if kind == "1":
            raise Closed("engine.io close")
        if kind != "4":
            return []
        if rest.startswith("0"):  # connected: join
            return ["421" + json.dumps(self.event)]
        if rest.startswith("4"):
            raise Closed(f"connect refused: {rest[1:200]}")
        if rest.startswith("1"):
            raise Closed("Socket.IO disconnect")
        if rest.startswith("31["):  # the ack of the join (ack id 1)
            body = json.loads(rest[2:])[0]
            if not isinstance(body, dict) or body.get("ok") is not True:
                raise Closed(f"join refused: {str(body)[:200]}")
            if not self.ready.done():
                self.ready.set_result(None)
        return []  # events the server sends (the victim's own state, presence) are not read


async def hold_websocket(http: aiohttp.ClientSession, url: str, idle: Idle, deflate: bool) -> None:
    address = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with http.ws_connect(address, compress=15 if deflate else 0, max_msg_size=0) as ws:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            for reply in idle.read(message.data):
                await ws.send_str(reply)


async def hold_polling(http: aiohttp.ClientSession, url: str, idle: Idle) -> None:
    address = url + "/socket.io/?EIO=4&transport=polling"
    sid = ""
    replies: list[str] = []
    while True:
        if replies:
            data = SEPARATOR.join(replies).encode()
            async with http.post(address, data=data) as response:
                await response.read()
                if response.status != 200:
                    raise Closed(f"POST answered {response.status}")
        async with http.get(address) as response:
            body = await response.text()
            if response.status != 200:
                raise Closed(f"GET answered {response.status}")
        packets = body.split(SEPARATOR)
        if not sid:
            sid = json.loads(packets[0][1:])["sid"]
            address += f"&sid={sid}"
        replies = [reply for text in packets for reply in idle.read(text)]


async def hold(
    http: aiohttp.ClientSession, url: str, transport: str, idle: Idle, deflate: bool
) -> None:
    try:
        if transport == "websocket":
            await hold_websocket(http, url, idle, deflate)
        else:
            await hold_polling(http, url, idle)
        raise Closed("the connection ended")
    except BaseException as exc:
        idle.closed = f"{type(exc).__name__}: {str(exc)[:120]}"
        if not idle.ready.done():
            idle.ready.set_exception(exc if isinstance(exc, Exception) else Closed("cancelled"))
        if not isinstance(exc, Exception):
            raise


async def client(
    pipe: Connection,
    url: str,
    transport: str,
    targets: list[Target],
    deflate: bool,
    source: str | None,
) -> None:
    """Opens sockets when told ("open", count), reports ("status") and closes ("close")."""
    loop = asyncio.get_running_loop()
    left = iter(targets)
    gate = asyncio.Semaphore(OPEN_PARALLEL)
    held: list[Idle] = []
    tasks: list[asyncio.Task[None]] = []
    failures: Counter[str] = Counter()
    # One connection per pending poll, at least.
    connector = aiohttp.TCPConnector(limit=0, local_addr=(source, 0) if source else None)
    timeout = aiohttp.ClientTimeout(total=None, connect=OPEN_TIMEOUT, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def open_one(target: Target) -> None:
            async with gate:
                idle = Idle(*target)
                task = asyncio.create_task(hold(http, url, transport, idle, deflate))
                tasks.append(task)
                try:
                    await asyncio.wait_for(asyncio.shield(idle.ready), OPEN_TIMEOUT)
                except Exception as exc:
                    failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                    # This socket's task (others were appended since), and its readiness,
                    # which nobody waits for any more.
                    task.cancel()
                    idle.ready.cancel()
                else:
                    held.append(idle)

        while True:
            command, count = await loop.run_in_executor(None, pipe.recv)
            if command == "open":
                began = time.perf_counter()
                await asyncio.gather(*(open_one(t) for t in itertools.islice(left, count)))
                pipe.send({"held": len(held), "seconds": time.perf_counter() - began})
            elif command == "status":
                pipe.send(
                    {
                        "held": len(held),
                        "open": sum(not idle.closed for idle in held),
                        "pinged": sum(idle.pings > 0 and not idle.closed for idle in held),
                        "failures": dict(failures),
                        "closed": Counter(idle.closed for idle in held if idle.closed),
                    }
                )
            else:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                return


def client_main(
    pipe: Connection,
    url: str,
    transport: str,
    targets: list[Target],
    deflate: bool,
    source: str | None,
) -> None:
    try:
        asyncio.run(client(pipe, url, transport, targets, deflate, source))
    except BaseException:
        pipe.send({"failed": traceback.format_exc()})
        raise


@contextlib.contextmanager
def clients(
    url: str, transport: str, targets: list[Target], count: int, deflate: bool
) -> Iterator[list[tuple[Connection, Any]]]:
    ctx = multiprocessing.get_context("spawn")
    loopback = urlsplit(url).hostname == "127.0.0.1"
    group = []
    for n in range(count):
        parent, child = ctx.Pipe()
        share = targets[n::count]
        source = f"127.0.0.{next(_SOURCES)}" if loopback else None
        proc = ctx.Process(
            target=client_main, args=(child, url, transport, share, deflate, source), daemon=True
        )
        proc.start()
        group.append((parent, proc))
    try:
        yield group
    finally:
        for pipe, _ in group:
            with contextlib.suppress(OSError):
                pipe.send(("close", 0))
        for _, proc in group:
            proc.join(60)
            if proc.is_alive():
                proc.kill()


# --- measuring one server ----------------------------------------------------------------------


def ask(group: list[tuple[Connection, Any]], command: str, counts: list[int]) -> list[JSON]:
    for (pipe, _), count in zip(group, counts, strict=True):
        pipe.send((command, count))
    return [load.receive(pipe, proc) for pipe, proc in group]


def shares(total: int, parts: int) -> list[int]:
    """``total`` split as ``targets[n::parts]`` splits a list: the first parts one longer."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def measure(
    server: load.Server,
    transport: str,
    targets: list[Target],
    args: argparse.Namespace,
    deflate: bool = False,
) -> JSON:
    """Warm-up sockets, RSS, the measured sockets held for ``args.hold`` s, RSS again."""
    pid = server.proc.pid
    count = args.clients
    warm = shares(args.warm_up, count)  # each client's first sockets
    rest = [len(targets[n::count]) - w for n, w in enumerate(warm)]
    with clients(server.url, transport, targets, count, deflate) as group:
        warmed = sum(r["held"] for r in ask(group, "open", warm))
        time.sleep(args.settle)
        before = load.proc_rss(pid)[0]
        began = time.perf_counter()
        opened = sum(r["held"] for r in ask(group, "open", rest)) - warmed
        open_seconds = time.perf_counter() - began
        rss_opened = load.proc_rss(pid)[0]
        cpu0, t0 = load.proc_cpu(pid), time.monotonic()
        samples = [rss_opened]
        while time.monotonic() < t0 + args.hold:
            time.sleep(min(1.0, max(0.0, t0 + args.hold - time.monotonic())))
            samples.append(load.proc_rss(pid)[0])
        cpu = load.proc_cpu(pid) - cpu0
        after = load.proc_rss(pid)[0]
        status = ask(group, "status", [0] * count)
    failed: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    for s in status:
        failed.update(s["failures"])
        closed.update(s["closed"])
    return {
        "transport": transport,
        "wanted": len(targets) - sum(warm),
        "opened": opened,
        "warm_up": warmed,
        # Over every socket held, the warm-up ones too.
        "held": sum(s["held"] for s in status),
        "open_at_end": sum(s["open"] for s in status),
        "pinged": sum(s["pinged"] for s in status),
        "failed_to_open": dict(failed),
        "closed_during_hold": dict(closed),
        "open_seconds": round(open_seconds, 1),
        "rss_before_kib": before,
        "rss_opened_kib": rss_opened,
        "rss_after_kib": after,
        "rss_max_during_hold_kib": max(samples),
        "kib_per_socket": round((after - before) / opened, 1) if opened else None,
        "hold_seconds": args.hold,
        "server_cpu_percent_idle": round(100 * cpu / args.hold, 1),
    }


# --- the bridge and the baseline ---------------------------------------------------------------


async def create_victims(url: str, count: int) -> list[tuple[str, str]]:
    """``count`` conversations through the API, as the victim's client makes them: (id, token)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/api/v1/orgs/fier/key") as response:
            org_public = (await response.json())["x25519"]
        gate = asyncio.Semaphore(CREATE_PARALLEL)

        async def one() -> tuple[str, str]:
            async with gate:
                keys = crypto.DeviceKeys.generate()
                body = {
                    "lang": "nl",
                    "device": {"ed25519": keys.ed25519, "x25519": keys.x25519},
                    "care_scope": crypto.ScopeKey.generate().as_payload(org_public),
                }
                async with http.post(url + "/api/v1/conversations", json=body) as response:
                    if response.status != 201:
                        text = await response.text()
                        raise RuntimeError(f"create answered {response.status}: {text[:200]}")
                    created = await response.json()
                return created["conversation_id"], created["victim_token"]

        return await asyncio.gather(*(one() for _ in range(count)))


def bridge_targets(victims: list[tuple[str, str]]) -> list[Target]:
    return [
        ({"token": token}, ["conversation.join", {"conversation_id": cid}])
        for cid, token in victims
    ]


def relay_targets(count: int) -> list[Target]:
    """The relay's sockets: the same connect (a token it does not read) and one room each."""
    return [({"token": uuid.uuid4().hex}, ["join", [f"{uuid.uuid4()}:care"]]) for _ in range(count)]


async def set_up_bridge(folder: Path, args: argparse.Namespace) -> tuple[Path, list[Target]]:
    """Config, schema and org keys; every victim made on a set-up server process, stopped."""
    config = await load.prepare(folder, 0, "FULL")
    server = load.start_bridge(folder, config, name="setup")
    try:
        await load.wait_healthy(server.url, server.proc)
        victims = await create_victims(server.url, args.sockets + args.warm_up)
    finally:
        server.stop()
    if server.errors():
        raise RuntimeError(f"the set-up server logged errors: {server.errors()[:3]}")
    return config, bridge_targets(victims)


def run_bridge(
    folder: Path, config: Path, transport: str, targets: list[Target], args: Any
) -> JSON:
    server = load.start_bridge(folder, config, name=f"bridge-{transport}")
    try:
        asyncio.run(load.wait_healthy(server.url, server.proc))
        result = measure(server, transport, targets, args)
    finally:
        server.stop()
    result["server_log_errors"] = len(server.errors())
    return result


def run_relay(folder: Path, transport: str, args: Any, deflate: bool = False) -> JSON:
    server = load.start_relay(folder)
    try:
        asyncio.run(load.wait_healthy(server.url, server.proc))
        targets = relay_targets(args.sockets + args.warm_up)
        return measure(server, transport, targets, args, deflate)
    finally:
        server.stop()


def machine() -> JSON:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(int(meminfo[1]) / 1024**2, 1),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
    }


def open_files(needed: int) -> int:
    """Raise this process's limit of open files (which the servers and clients it starts
    inherit) to ``needed`` at least; the limit now. Exits saying what is needed where the hard
    limit is lower and cannot be raised (raising it takes CAP_SYS_RESOURCE, which root in a
    container often lacks)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
    except (ValueError, OSError):
        sys.exit(
            f"idle_sockets: the server needs {needed} open files (RLIMIT_NOFILE) for the sockets "
            f"asked and its own; the hard limit here is {hard} and this process may not raise it "
            f"(that takes CAP_SYS_RESOURCE). Raise it where the bench is started (`ulimit -Hn "
            f"{needed}` as root, `docker run --ulimit nofile={needed}`, systemd "
            f"LimitNOFILE={needed}), or ask for at most {hard - SERVER_FILES} sockets "
            "(--sockets plus --warm-up)."
        )
    return needed


def progress(text: str) -> None:
    """A line on stderr: a run of 20,000 sockets takes the better part of an hour."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def measure_all(args: argparse.Namespace) -> JSON:
    per_run = args.sockets + args.warm_up
    nofile = open_files(per_run + SERVER_FILES)
    figures: JSON = {"machine": {**machine(), "nofile": nofile}, "sockets": args.sockets}
    figures["runs"] = []
    with tempfile.TemporaryDirectory(prefix="bridge-idle-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        config, targets = asyncio.run(set_up_bridge(folder, args))
        figures["setup_seconds"] = round(time.perf_counter() - began)
        progress(f"{len(targets)} victims made in {figures['setup_seconds']} s")
        for transport in args.transports:
            bridge = {"server": "bridge", **run_bridge(folder, config, transport, targets, args)}
            progress(f"bridge, {transport}: {bridge['kib_per_socket']} KiB a socket")
            relay = {"server": "relay", **run_relay(folder, transport, args)}
            progress(f"relay, {transport}: {relay['kib_per_socket']} KiB a socket")
            figures["runs"] += [bridge, relay]
            if bridge["kib_per_socket"] and relay["kib_per_socket"]:
                figures.setdefault("ratio", {})[transport] = round(
                    bridge["kib_per_socket"] / relay["kib_per_socket"], 2
                )
        if args.deflate and "websocket" in args.transports:
            # The relay's aiohttp accepts permessage-deflate when the client offers it; the
            # bridge never does. Each socket's ack and pings are sent compressed.
            relay = run_relay(folder, "websocket", args, deflate=True)
            figures["runs"].append({"server": "relay", **relay, "transport": "websocket+deflate"})
    runs = {(r["server"], r["transport"]): r["kib_per_socket"] for r in figures["runs"]}
    for server in ("bridge", "relay"):
        ws, polling = runs.get((server, "websocket")), runs.get((server, "polling"))
        if ws is not None and polling is not None:
            figures.setdefault("polling_over_websocket_kib", {})[server] = round(polling - ws, 1)
    plain, deflate = runs.get(("relay", "websocket")), runs.get(("relay", "websocket+deflate"))
    if plain is not None and deflate is not None:
        figures["deflate_context_kib"] = round(deflate - plain, 1)
    return figures


def failures(figures: JSON) -> int:
    """Sockets that did not open or did not stay open through the hold, and server errors."""
    return sum(
        r["wanted"] - r["opened"] + r["held"] - r["open_at_end"] + r.get("server_log_errors", 0)
        for r in figures["runs"]
    )


def report(figures: JSON) -> str:
    m = figures["machine"]
    lines = [
        f"{m['nproc']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
        f"aiohttp {m['aiohttp']}; sockets held idle for {figures['runs'][0]['hold_seconds']:.0f} s",
        f"{'transport':<18} {'server':<7} {'opened':>11} {'RSS before':>11} {'RSS after':>11} "
        f"{'KiB/socket':>10} {'idle CPU':>9}",
    ]
    for r in figures["runs"]:
        lines.append(
            f"{r['transport']:<18} {r['server']:<7} {r['opened']:>5}/{r['wanted']:<5} "
            f"{r['rss_before_kib'] / 1024:>7.1f} MiB {r['rss_after_kib'] / 1024:>7.1f} MiB "
            f"{r['kib_per_socket'] or 0:>10.1f} {r['server_cpu_percent_idle']:>7.1f} %"
        )
        noted = [f"{n}x failed to open: {k}" for k, n in r["failed_to_open"].items()]
        noted += [f"{n}x closed during the hold: {k}" for k, n in r["closed_during_hold"].items()]
        if r["open_at_end"] != r["pinged"]:
            noted.append(f"{r['open_at_end'] - r['pinged']} open but never pinged")
        if r.get("server_log_errors"):
            noted.append(f"{r['server_log_errors']} error lines in the server's log")
        lines += [f"    {note}" for note in noted]
    for transport, ratio in figures.get("ratio", {}).items():
        lines.append(f"ratio bridge / relay, {transport}: {ratio}")
    for server, extra in figures.get("polling_over_websocket_kib", {}).items():
        lines.append(f"a polling socket over a websocket, {server}: {extra:+.1f} KiB")
    if "deflate_context_kib" in figures:
        extra = figures["deflate_context_kib"]
        lines.append(f"permessage-deflate on the relay's websockets: {extra:+.1f} KiB a socket")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=2000, help="measured sockets per run")
    parser.add_argument("--transport", default="both", choices=["websocket", "polling", "both"])
    parser.add_argument(
        "--warm-up", type=int, default=50, help="sockets open before the first read"
    )
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the sockets stay idle")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before the first read")
    parser.add_argument(
        "--clients", type=int, help="client processes (default: one per 5,000 sockets, 2 at least)"
    )
    parser.add_argument(
        "--deflate", action="store_true", help="also the relay with permessage-deflate"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    both = ["websocket", "polling"]
    args.transports = both if args.transport == "both" else [args.transport]
    if args.clients is None:
        args.clients = max(2, -(-(args.sockets + args.warm_up) // SOCKETS_PER_CLIENT))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    figures = measure_all(args)
    print(json.dumps(figures, indent=2) if args.json else report(figures), flush=True)
    return 1 if failures(figures) else 0


if __name__ == "__main__":
    sys.exit(main())
