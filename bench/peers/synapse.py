"""Target (e) of ``bench/compare.py``: Matrix Synapse from PyPI, SQLite, rooms of three.

Synapse runs in a virtual environment of its own (``var/bench/synapse-venv``, made on first use
with the pinned ``matrix-synapse`` below, reused afterwards), as one process pinned to the server
core. Its config is what ``--generate-config`` writes with an override file on top
(:data:`OVERRIDES`): one client listener on 127.0.0.1 (no federation listener), no key servers,
presence off, no media repository and no URL previews, no metrics, logging at WARNING, bcrypt at
its fewest rounds, and every rate limit the benchmark's users meet lifted. The database is
Synapse's SQLite as shipped (WAL, ``synchronous`` at SQLite's default, FULL).

Why those: a fair comparison measures the message path, not the limiter. Synapse's defaults
would refuse the benchmark itself: ``rc_message`` allows a user 0.2 messages a second (burst 10)
where the ladder asks several a second of each; ``rc_login`` 0.003 logins a second per address
and per account (burst 5) where hundreds of users log in from 127.0.0.1; ``rc_registration``
0.17 a second (burst 3); ``rc_room_creation`` one a minute; ``rc_joins`` (local 0.1 a second)
and ``rc_joins_per_room``, ``rc_invites`` (per room, per user, per issuer) the same. The bridge's
bench lifts its per-address limit on new conversations and its per-socket message bucket for the
same reason. bcrypt at 4 rounds (the default 12 costs about a quarter of a second a login) is the
counterpart of the bridge bench's Argon2id at its minimum: logins are set-up, not what is
measured. At INFO Synapse logs a line per request, work the bridge does not do per message.

Set-up (:func:`setup_rooms`): per room three users registered with the shared secret through
the admin API (``/_synapse/admin/v1/register``), each logged in with its password (a device and
an access token, as a client has), one creates a private room (``private_chat``) inviting the
other two, both join. The generator is ``bench/generators/matrix.mjs``.

Memory per idle socket (:func:`idle_memory`): a Matrix client holds no socket open for pushes; it
holds a pending ``/sync`` long-poll (timeout 30 s, answered empty at the timeout and sent again at
once) on a keep-alive connection. So an "idle socket" here is one logged-in member of a room of
three with its first ``/sync`` done and a long-poll pending: the server's VmRSS with warm-up
clients, then with ``count`` more, held.

    .venv/bin/python bench/peers/synapse.py                      # 50 rooms, 50 and 150 a second
    .venv/bin/python bench/peers/synapse.py --rooms 100 --rates 100 200 --idle 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

if __package__ in (None, ""):
    # Run as a script: bench/ (peers/, load.py) in place of bench/peers/, whose bridge.py would
    # hide the bridge package.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from peers.common import (
    JSON,
    ROOT,
    SERVER_CPU,
    Proc,
    SetUp,
    free_port,
    node_generator,
    pin_tree,
    proc_cpu,
    proc_rss,
    run_generator,
    settle,
    spawning_on,
    summary,
)

__all__ = [
    "SYNAPSE_VERSION",
    "SynapseError",
    "SynapseServer",
    "SynapseTarget",
    "idle_memory",
    "idle_memory_async",
    "make_target",
    "setup_rooms",
    "setup_rooms_async",
    "start",
    "venv_python",
]

SYNAPSE_VERSION = "1.163.2"
VENV = ROOT / "var" / "bench" / "synapse-venv"
SERVER_NAME = "bench.local"
PASSWORD = "bench-password"
SYNC_TIMEOUT_MS = 30_000
SETUP_PARALLEL = 8  # rooms set up at once: Synapse on one core is the limit, not the client
IDLE_WARM_UP = 50  # idle clients opened before the first VmRSS reading
IDLE_PARALLEL = 50  # idle clients opening at once

# A rate and burst no benchmark user reaches, for every limiter they meet.
UNLIMITED = {"per_second": 100_000, "burst_count": 100_000}
OVERRIDES: JSON = {
    "rc_message": UNLIMITED,
    "rc_registration": UNLIMITED,
    "rc_login": {"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED},
    "rc_room_creation": UNLIMITED,
    "rc_joins": {"local": UNLIMITED, "remote": UNLIMITED},
    "rc_joins_per_room": UNLIMITED,
    "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
    "bcrypt_rounds": 4,
    "presence": {"enabled": False},
    "enable_media_repo": False,
    "url_preview_enabled": False,
    "enable_metrics": False,
    "report_stats": False,
    # Nothing leaves the machine: no key servers, no federation.
    "trusted_key_servers": [],
    "suppress_key_server_warning": True,
    "federation_domain_whitelist": [],
}


class SynapseError(RuntimeError):
    """Synapse could not be installed, configured, started or set up."""


# --- the virtual environment -------------------------------------------------------------------


def venv_python() -> Path:
    """The Synapse venv's interpreter: made with the pinned version on first use, then reused."""
    python = VENV / "bin" / "python"
    if python.exists():
        found = subprocess.run(
            [python, "-c", "import importlib.metadata as m; print(m.version('matrix-synapse'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode == 0 and found.stdout.strip() == SYNAPSE_VERSION:
            return python
    VENV.parent.mkdir(parents=True, exist_ok=True)
    log = VENV.parent / "synapse-install.log"
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(python), "-m", "pip", "install", f"matrix-synapse=={SYNAPSE_VERSION}"],
    ]
    with log.open("w") as out:
        for step in steps:
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
                tail = "\n".join(log.read_text().splitlines()[-15:])
                raise SynapseError(
                    f"could not install matrix-synapse=={SYNAPSE_VERSION} into {VENV} "
                    f"(the whole log: {log}):\n{tail}"
                )
    return python


# --- the server --------------------------------------------------------------------------------


@dataclass
class SynapseServer:
    """A running Synapse: ``url``, ``pid``, ``stop()``; ``setup_seconds`` is the wall time of the
    last :func:`setup_rooms`."""

    url: str
    pid: int
    workdir: Path
    process: subprocess.Popen[bytes]
    shared_secret: str
    cpu: int | None
    version: str = SYNAPSE_VERSION
    setup_seconds: float = 0.0
    users: int = field(default=0, repr=False)  # registered so far: the next user's number

    def cpu_seconds(self) -> float:
        return float(proc_cpu(self.pid))

    def rss_kib(self) -> int:
        return int(proc_rss(self.pid)[0])

    def errors(self) -> list[str]:
        """ERROR and CRITICAL lines of its log (it logs at WARNING)."""
        log = self.workdir / "homeserver.log"
        if not log.exists():
            return []
        lines = log.read_text(errors="replace").splitlines()
        return [line for line in lines if " ERROR " in line or " CRITICAL " in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _write_config(python: Path, workdir: Path, port: int) -> tuple[list[Path], str]:
    """``--generate-config`` once, then the override file: the config files (later ones win, key
    by key at the top level) and the registration shared secret."""
    base = workdir / "homeserver.yaml"
    if not base.exists():
        generated = subprocess.run(
            [
                python,
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                SERVER_NAME,
                "--config-path",
                base,
                "--data-directory",
                workdir,
                "--generate-config",
                "--report-stats=no",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if generated.returncode:
            raise SynapseError(f"--generate-config failed:\n{generated.stderr[-2000:]}")
    # The generated value is a double-quoted YAML scalar of printable ASCII, which JSON reads.
    secret = ""
    for line in base.read_text().splitlines():
        if line.startswith("registration_shared_secret:"):
            secret = json.loads(line.split(":", 1)[1].strip())
    if not secret:
        raise SynapseError(f"no registration_shared_secret in {base}")
    # JSON is YAML: the override and logging files need no YAML writer here.
    log_config = workdir / "log.yaml"
    log_format = "%(asctime)s %(name)s %(levelname)s %(message)s"
    logging = {
        "version": 1,
        "formatters": {"plain": {"format": log_format}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "plain",
                "filename": str(workdir / "homeserver.log"),
            }
        },
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }
    log_config.write_text(json.dumps(logging, indent=1))
    listener = {
        "port": port,
        "bind_addresses": ["127.0.0.1"],
        "type": "http",
        "tls": False,
        "x_forwarded": False,
        "resources": [{"names": ["client"], "compress": False}],
    }
    overrides = {**OVERRIDES, "listeners": [listener], "log_config": str(log_config)}
    bench = workdir / "bench.yaml"
    bench.write_text(json.dumps(overrides, indent=1))
    return [base, bench], secret


def start(workdir: Path, cpu: int | None, timeout: float = 180.0) -> SynapseServer:
    """Start Synapse (SQLite, files in ``workdir``) on a free port of 127.0.0.1, pinned to core
    ``cpu`` (None: not pinned), and return once ``/health`` answers."""
    python = venv_python()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    configs, secret = _write_config(python, workdir, port)
    command: list[str | Path] = [python, "-m", "synapse.app.homeserver"]
    for config in configs:
        command += ["-c", config]
    pinning = spawning_on(cpu) if cpu is not None else contextlib.nullcontext()
    with (workdir / "synapse.out").open("wb") as out, pinning:
        # Pinned from its first instruction, so every thread Synapse starts inherits the core.
        process = subprocess.Popen(
            command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    if cpu is not None:
        pin_tree(process.pid, cpu)
    server = SynapseServer(f"http://127.0.0.1:{port}", process.pid, workdir, process, secret, cpu)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = (workdir / "synapse.out").read_text(errors="replace")[-3000:]
            raise SynapseError(f"Synapse exited with {process.returncode}:\n{tail}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.url}/health", timeout=2) as answer,
        ):
            if answer.status == 200:
                return server
        if time.monotonic() > deadline:
            server.stop()
            raise SynapseError(f"Synapse did not answer on {server.url} within {timeout:.0f} s")
        time.sleep(0.2)


# --- users and rooms ---------------------------------------------------------------------------


async def _call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: JSON | None = None,
    token: str | None = None,
) -> JSON:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as answer:
        data: JSON = await answer.json(content_type=None)
        if answer.status != 200:
            raise SynapseError(f"{method} {url}: HTTP {answer.status} {data}")
        return data


async def _register(http: aiohttp.ClientSession, server: SynapseServer, name: str) -> None:
    """Shared-secret registration through the admin API: a nonce, then an HMAC over it."""
    url = f"{server.url}/_synapse/admin/v1/register"
    nonce = (await _call(http, "GET", url))["nonce"]
    mac = hmac.new(server.shared_secret.encode(), digestmod=hashlib.sha1)
    mac.update(f"{nonce}\0{name}\0{PASSWORD}\0notadmin".encode())
    body = {
        "nonce": nonce,
        "username": name,
        "password": PASSWORD,
        "admin": False,
        "mac": mac.hexdigest(),
        "inhibit_login": True,  # no device here: the member logs in next, as a client does
    }
    await _call(http, "POST", url, body)


async def _login(http: aiohttp.ClientSession, server: SynapseServer, name: str) -> JSON:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": name},
        "password": PASSWORD,
        "initial_device_display_name": "bench",
    }
    answer = await _call(http, "POST", f"{server.url}/_matrix/client/v3/login", body)
    return {"user_id": answer["user_id"], "access_token": answer["access_token"]}


async def _room(http: aiohttp.ClientSession, server: SynapseServer, names: list[str]) -> JSON:
    for name in names:
        await _register(http, server, name)
    members = [await _login(http, server, name) for name in names]
    creator, *invited = members
    created = await _call(
        http,
        "POST",
        f"{server.url}/_matrix/client/v3/createRoom",
        {"preset": "private_chat", "invite": [member["user_id"] for member in invited]},
        creator["access_token"],
    )
    room_id = created["room_id"]
    for member in invited:
        join = f"{server.url}/_matrix/client/v3/rooms/{room_id}/join"
        await _call(http, "POST", join, {}, member["access_token"])
    return {"room_id": room_id, "members": members}


async def setup_rooms_async(
    server: SynapseServer, n: int, parallel: int = SETUP_PARALLEL
) -> list[JSON]:
    """``n`` private rooms of three (see the module's docstring): one
    ``{"room_id", "members": [{"user_id", "access_token"}, x3]}`` per room, the creator first.
    Sets ``server.setup_seconds``."""
    began = time.perf_counter()
    first = server.users
    server.users += 3 * n
    gate = asyncio.Semaphore(parallel)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one(index: int) -> JSON:
            async with gate:
                return await _room(http, server, [f"b{first + 3 * index + i}" for i in range(3)])

        rooms = await asyncio.gather(*(one(i) for i in range(n)))
    server.setup_seconds = time.perf_counter() - began
    return list(rooms)


def setup_rooms(server: SynapseServer, n: int) -> list[JSON]:
    """:func:`setup_rooms_async` for a caller without an event loop."""
    return asyncio.run(setup_rooms_async(server, n))


# --- memory per idle client --------------------------------------------------------------------


@dataclass
class _Idle:
    opened: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    answered_early: int = 0  # long-polls answered before their timeout (should stay 0)

    def failed(self, exc: BaseException) -> None:
        key = f"{type(exc).__name__}: {str(exc)[:100]}"
        self.failures[key] = self.failures.get(key, 0) + 1


async def _hold_sync(
    http: aiohttp.ClientSession,
    url: str,
    member: JSON,
    gate: asyncio.Semaphore,
    idle: _Idle,
    opened: asyncio.Event,
) -> None:
    """One idle client: its first /sync, then /sync long-polls of 30 s one after the other."""
    headers = {"Authorization": f"Bearer {member['access_token']}"}
    try:
        async with gate:
            params = {"set_presence": "offline"}
            async with http.get(url, params=params, headers=headers) as answer:
                if answer.status != 200:
                    raise SynapseError(f"first /sync: HTTP {answer.status}")
                since = (await answer.json())["next_batch"]
    except (aiohttp.ClientError, SynapseError, TimeoutError) as exc:
        idle.failed(exc)
        opened.set()
        return
    while True:
        params = {"since": since, "timeout": str(SYNC_TIMEOUT_MS), "set_presence": "offline"}
        request = http.get(url, params=params, headers=headers)
        if not opened.is_set():
            idle.opened += 1
            opened.set()  # the request is on its way; Synapse holds it from here on
        began = time.monotonic()
        async with request as answer:
            since = (await answer.json())["next_batch"]
        if time.monotonic() - began < SYNC_TIMEOUT_MS / 1000 - 1:
            idle.answered_early += 1


async def idle_memory_async(
    server: SynapseServer, rooms: list[JSON], count: int, hold: float = 5.0
) -> JSON:
    """The server's VmRSS with :data:`IDLE_WARM_UP` idle clients, then with ``count`` more held
    for ``hold`` seconds; members of ``rooms`` (three a room) are the clients, and ``rooms`` must
    hold at least ``count + IDLE_WARM_UP`` members. The clients run in this process."""
    members = [member for room in rooms for member in room["members"]]
    if len(members) < count + IDLE_WARM_UP:
        raise SynapseError(f"{len(members)} members for {count} + {IDLE_WARM_UP} idle clients")
    url = f"{server.url}/_matrix/client/v3/sync"
    idle = _Idle()
    gate = asyncio.Semaphore(IDLE_PARALLEL)
    tasks: list[asyncio.Task[None]] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_read=SYNC_TIMEOUT_MS / 1000 + 60)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def open_all(group: list[JSON]) -> None:
            events = []
            for member in group:
                event = asyncio.Event()
                events.append(event)
                tasks.append(asyncio.create_task(_hold_sync(http, url, member, gate, idle, event)))
            for event in events:
                await event.wait()
            await asyncio.sleep(1.0)  # the last long-polls reach the server

        await open_all(members[:IDLE_WARM_UP])
        warmed = idle.opened
        before = server.rss_kib()
        began = time.perf_counter()
        await open_all(members[IDLE_WARM_UP : IDLE_WARM_UP + count])
        open_seconds = time.perf_counter() - began
        rss_opened = server.rss_kib()
        cpu_before = server.cpu_seconds()
        samples = []
        held_since = time.perf_counter()
        while (left := hold - (time.perf_counter() - held_since)) > 0:
            await asyncio.sleep(min(1.0, left))
            samples.append(server.rss_kib())
        cpu = server.cpu_seconds() - cpu_before
        after = samples[-1] if samples else rss_opened
        still = sum(1 for task in tasks if not task.done())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    opened = idle.opened - warmed
    return {
        "transport": "/sync long-poll (timeout 30 s)",
        "wanted": count,
        "opened": opened,
        "warm_up": warmed,
        "open_at_end": still - warmed,
        "failed_to_open": idle.failures,
        "answered_before_timeout": idle.answered_early,
        "open_seconds": round(open_seconds, 1),
        "rss_before_kib": before,
        "rss_opened_kib": rss_opened,
        "rss_after_kib": after,
        "rss_max_during_hold_kib": max(samples, default=after),
        "kib_per_socket": round((after - before) / opened, 1) if opened else None,
        "hold_seconds": hold,
        "server_cpu_percent_idle": round(100 * cpu / hold, 1) if hold else None,
    }


def idle_memory(server: SynapseServer, rooms: list[JSON], count: int, hold: float = 5.0) -> JSON:
    """:func:`idle_memory_async` for a caller without an event loop."""
    return asyncio.run(idle_memory_async(server, rooms, count, hold))


# --- the target of compare.py ------------------------------------------------------------------


class SynapseTarget:
    """(e) Matrix Synapse, for ``bench/compare.py`` (a :class:`peers.common.Target`)."""

    key = "e"
    name = "synapse"
    label = f"Matrix Synapse {SYNAPSE_VERSION} (SQLite)"
    handshake = True

    def __init__(self, options: Any) -> None:
        self.options = options
        self.generator = node_generator("matrix.mjs")
        self.server: SynapseServer | None = None
        self.rooms: list[JSON] = []

    def _server(self) -> SynapseServer:
        if self.server is None:
            raise SynapseError("Synapse is not started")
        return self.server

    async def start(self, folder: Path) -> None:
        self.server = await asyncio.to_thread(start, folder / "synapse", SERVER_CPU)

    async def set_up(self, rooms: int) -> SetUp:
        server = self._server()
        self.rooms = await setup_rooms_async(server, rooms)
        # No sockets stay open after the set-up: a Matrix client's connection is its /sync.
        extra = {"users": 3 * rooms, "synapse": SYNAPSE_VERSION}
        return SetUp(server.url, self.rooms, server.setup_seconds, 0, extra=extra)

    async def release(self) -> None:
        return None

    def procs(self) -> dict[str, Proc]:
        return {"server": Proc(self._server().pid, "server", SERVER_CPU)}

    async def idle_sockets(self, count: int) -> JSON | None:
        server = self._server()
        wanted = math.ceil((count + IDLE_WARM_UP) / 3)
        setup_seconds = 0.0
        if wanted > len(self.rooms):
            self.rooms += await setup_rooms_async(server, wanted - len(self.rooms))
            setup_seconds = server.setup_seconds
        hold = float(getattr(self.options, "idle_hold", 5.0))
        figures = await idle_memory_async(server, self.rooms[:wanted], count, hold)
        figures["extra_rooms_setup_seconds"] = round(setup_seconds, 1)
        return figures

    def errors(self) -> list[str]:
        return self.server.errors() if self.server is not None else []

    async def stop(self) -> None:
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)


def make_target(options: Any) -> SynapseTarget:
    """What ``bench/compare.py`` calls for target (e)."""
    return SynapseTarget(options)


# --- on its own --------------------------------------------------------------------------------


async def _check(args: argparse.Namespace) -> JSON:
    """Start, set up, one generator run per rate (as compare.py runs them), optionally the idle
    clients, stop."""
    target = SynapseTarget(args)
    with tempfile.TemporaryDirectory(prefix="synapse-bench-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        await target.start(folder)
        server = target._server()
        report: JSON = {
            "synapse": SYNAPSE_VERSION,
            "start_seconds": round(time.perf_counter() - began, 1),
            "runs": [],
        }
        try:
            setup = await target.set_up(args.rooms)
            report["setup"] = {"rooms": len(setup.rooms), "seconds": round(setup.seconds, 1)}
            print(f"{args.rooms} rooms set up in {setup.seconds:.1f} s", file=sys.stderr)
            for rate in args.rates:
                config = {
                    "target": target.name,
                    "url": server.url,
                    "rooms": setup.rooms,
                    "rate": rate,
                    "duration": args.duration,
                    "warmup": args.warmup,
                    "payload_bytes": args.payload_bytes,
                    "drain": args.drain,
                }
                settled = await settle([server.pid])  # the last run's backlog worked off first
                run = await run_generator(target.generator, config, folder, target.procs())
                result, window = run.result, run.window
                cpu = window["cpu_seconds"]
                delivered = result["delivered"]
                figures = {
                    "offered": rate,
                    "settle_seconds": round(settled, 1),
                    **{k: result[k] for k in ("sent", "acked", "delivered", "lost", "errors")},
                    "duplicates": result["duplicates"],
                    "deliveries_expected": result["deliveries_expected"],
                    "acked_per_s": round(result["acked"] / result["send_seconds"], 1),
                    "latency_ms": summary(result["latency_ms"]),
                    "ack_latency_ms": summary(result["ack_latency_ms"]),
                    "send_lag_ms": result["send_lag_ms"],
                    "window_seconds": window["seconds"],
                    "server_cpu_percent": round(100 * cpu["server"] / window["seconds"], 1),
                    "generator_cpu_percent": round(
                        100 * (cpu["generator"] or 0.0) / window["seconds"], 1
                    ),
                    "server_cpu_ms_per_delivery": round(1000 * cpu["server"] / delivered, 3)
                    if delivered
                    else None,
                    "deliveries_per_server_cpu_second": round(delivered / cpu["server"])
                    if cpu["server"]
                    else None,
                    "cores": window["cores"],
                    "error_codes": result.get("error_codes"),
                    "limited_timelines": result.get("limited_timelines"),
                }
                report["runs"].append(figures)
                print(
                    json.dumps({k: v for k, v in figures.items() if k != "cores"}), file=sys.stderr
                )
            if args.idle:
                report["idle"] = await target.idle_sockets(args.idle)
            report["rss_kib"] = server.rss_kib()
            report["server_log_errors"] = target.errors()[:20]
        finally:
            await target.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--rates", type=float, nargs="*", default=[50.0, 150.0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not counted per run")
    parser.add_argument("--drain", type=float, default=5.0)
    parser.add_argument("--payload-bytes", type=int, default=256)
    parser.add_argument("--idle", type=int, default=0, help="also hold this many idle clients")
    parser.add_argument("--idle-hold", type=float, default=30.0, help="seconds they are held")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_check(args)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
