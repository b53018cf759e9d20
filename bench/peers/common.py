"""What every target of ``bench/compare.py`` shares: ports, CPU pinning, CPU and memory read from
``/proc``, the generator processes, percentiles, and the :class:`Target` interface.

The generator contract (the Node generators here and ``bench/generators/matrix.*`` keep it):

A generator is a process started with one argument, the path of a JSON config file::

    {"target": NAME, "url": URL, "rooms": [one entry per three-member room, target-specific],
     "rate": messages a second offered in all (spread evenly over the rooms, open-loop),
     "duration": seconds, "warmup": seconds not counted, "payload_bytes": ciphertext size}

Each room's three members are connected from the same generator process, so a delivery's latency
is the time a member receives the message minus the time its sender sent it, on one clock. Every
message goes to all three members, its sender included: three deliveries. At the end it prints
one JSON line to stdout::

    {"offered", "sent", "acked", "deliveries_expected", "delivered", "lost", "duplicates",
     "errors", "latency_ms": [...every delivery after warm-up...], "ack_latency_ms": [...]}

and nothing else on stdout. ``lost`` counts acked messages that did not reach every member by the
end (after a short drain). A generator may add fields; its own ``cpu_seconds`` over the sending is
used when given (a generator may exit before its CPU is read from ``/proc``).

Two optional keys of the config, which a generator may ignore (its target then says
``handshake = False``): ``go_on_stdin`` (connect every member, write ``{"ready": rooms}`` as a line
to stderr, and start sending only when a line arrives on stdin: so the measured window holds the
sending alone) and ``drain`` (seconds to wait for the last deliveries).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import load  # type: ignore[import-not-found]  # bench/load.py

__all__ = [
    "BENCH",
    "GENERATOR_CPU",
    "JSON",
    "ROOT",
    "SERVER_CPU",
    "GeneratorRun",
    "Meter",
    "Proc",
    "SetUp",
    "Target",
    "free_port",
    "node_generator",
    "percentile",
    "pin_tree",
    "proc_cpu",
    "proc_rss",
    "run_generator",
    "settle",
    "spawning_on",
    "summary",
    "tree_cpu",
    "write_private",
]

JSON = dict[str, Any]
BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent
# The system under test (servers, their database and Redis) runs on one core, the load on the
# other: each target gets the same one core, and the generators do not take it from the server.
SERVER_CPU = 0
GENERATOR_CPU = 1

free_port = load.free_port
proc_rss = load.proc_rss  # (VmRSS, VmHWM) in KiB
proc_cpu = load.proc_cpu  # user + system CPU seconds of one process


# --- CPU pinning -------------------------------------------------------------------------------


def _usable(cpu: int) -> bool:
    return cpu < (os.cpu_count() or 1)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pin_tree(pid: int, cpu: int) -> None:
    """Pin ``pid`` and every process below it to ``cpu`` (what they fork later inherits it)."""
    if not _usable(cpu):
        return
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(each, {cpu})


@contextlib.contextmanager
def spawning_on(cpu: int) -> Iterator[None]:
    """Processes started inside the block inherit ``cpu`` as their only core: a daemon that forks
    early (PostgreSQL's postmaster and its helpers) is pinned from its first instruction."""
    before = os.sched_getaffinity(0)
    if _usable(cpu):
        os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# --- CPU and memory ----------------------------------------------------------------------------


def _times(pid: int) -> tuple[float, float]:
    """(own user + system, reaped children's user + system) CPU seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def tree_cpu(pid: int) -> float | None:
    """CPU seconds of ``pid``, its live descendants and the children it reaped: a server that
    forks (PostgreSQL's backends come and go) is counted whole. None once ``pid`` is gone."""
    try:
        own, reaped = _times(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    total = own + reaped
    for child in descendants(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += _times(child)[0]
    return total


def core_jiffies() -> dict[int, tuple[int, int]]:
    """Per core, (busy, all) jiffies since boot from ``/proc/stat``."""
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in values[:8])
        busy = user + nice + system + irq + softirq + steal
        cores[int(name[3:])] = (busy, busy + idle + iowait)
    return cores


@dataclass(frozen=True)
class Proc:
    """A process whose CPU a run records: ``kind`` "server" counts in CPU per message; "helper"
    (a database, Redis) is recorded beside it; "generator" and "driver" are the load."""

    pid: int
    kind: str
    cpu: int  # the core it is pinned to


@dataclass
class Meter:
    """CPU seconds of named processes, and how busy each core was, over a window. What a core did
    beyond the processes pinned to it is someone else's: the run was disturbed."""

    procs: dict[str, Proc]
    began: float = 0.0
    cpu0: dict[str, float | None] = field(default_factory=dict)
    cores0: dict[int, tuple[int, int]] = field(default_factory=dict)

    def start(self) -> None:
        self.began = time.monotonic()
        self.cpu0 = {name: tree_cpu(p.pid) for name, p in self.procs.items()}
        self.cores0 = core_jiffies()

    def stop(self, known: dict[str, float] | None = None) -> JSON:
        """The window's figures; ``known`` gives a process's CPU seconds it reported itself (one
        that may have exited before this reads ``/proc``)."""
        seconds = time.monotonic() - self.began
        used: dict[str, float | None] = {}
        for name, p in self.procs.items():
            before, after = self.cpu0[name], tree_cpu(p.pid)
            used[name] = None if before is None or after is None else after - before
        used.update(known or {})
        tick = os.sysconf("SC_CLK_TCK")
        cores: JSON = {}
        for core, (busy1, _) in core_jiffies().items():
            busy = (busy1 - self.cores0.get(core, (busy1, 0))[0]) / tick
            ours = sum(used[n] or 0.0 for n, p in self.procs.items() if p.cpu == core)
            cores[str(core)] = {
                "busy_percent": round(100 * busy / seconds, 1),
                "ours_percent": round(100 * ours / seconds, 1),
                # Clamped: jiffies and per-process ticks are sampled a little apart.
                "others_percent": round(max(0.0, 100 * (busy - ours) / seconds), 1),
            }
        return {
            "seconds": round(seconds, 3),
            "cpu_seconds": {
                name: None if value is None else round(value, 3) for name, value in used.items()
            },
            "cores": cores,
        }


async def settle(pids: list[int], *, below: float = 0.05, longest: float = 60.0) -> float:
    """Wait until the processes together use less than ``below`` of a core over half a second
    (a server still working off the last run's backlog would disturb the next); the seconds it
    took."""
    began = time.monotonic()
    while time.monotonic() - began < longest:
        before = sum(tree_cpu(pid) or 0.0 for pid in pids)
        await asyncio.sleep(0.5)
        if sum(tree_cpu(pid) or 0.0 for pid in pids) - before < below * 0.5:
            break
    return time.monotonic() - began


# --- percentiles -------------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of sorted values, interpolated between the two nearest
    ranks (numpy's default); None for no values."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> JSON:
    """Count, p50, p90, p99, p99.9 and max, in the values' unit, rounded to 0.01."""
    ordered = sorted(values)
    out: JSON = {"n": len(ordered)}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100)):
        value = percentile(ordered, q)
        out[name] = None if value is None else round(value, 2)
    return out


# --- generators --------------------------------------------------------------------------------


def node_generator(file: str) -> list[str]:
    """The command of a Node generator in ``bench/generators`` (the config path follows)."""
    return ["node", str(BENCH / "generators" / file)]


def write_private(path: Path, data: JSON) -> None:
    """Write JSON to a new file only its owner may read: a generator's config holds tokens and
    device private keys."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)


@dataclass
class GeneratorRun:
    """What one generator process printed, and the measured window around its sending."""

    result: JSON
    window: JSON  # the Meter's figures over the sending (with go_on_stdin) or the whole process
    ready_seconds: float  # from start to ready: connecting and building the envelopes
    stderr: str


async def run_generator(
    command: list[str],
    config: JSON,
    folder: Path,
    procs: dict[str, Proc],
    *,
    on_ready: Callable[[], Awaitable[None]] | None = None,
    handshake: bool = True,
    ready_timeout: float = 900.0,
) -> GeneratorRun:
    """Run one generator on :data:`GENERATOR_CPU` with ``config`` (in a private file, removed
    afterwards); meter ``procs`` and the generator over its sending. With ``handshake`` the
    generator says when it is ready, ``on_ready`` runs, and only then is it told to go."""
    path = folder / f"generator-{time.monotonic_ns()}.json"
    write_private(path, {**config, "go_on_stdin": handshake})
    began = time.monotonic()
    try:
        with spawning_on(GENERATOR_CPU):
            proc = await asyncio.create_subprocess_exec(
                *command,
                str(path),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=1 << 30,  # the result line carries every latency
            )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        meter = Meter({**procs, "generator": Proc(proc.pid, "generator", GENERATOR_CPU)})
        ready = asyncio.Event()
        err_lines: list[str] = []

        async def read_stderr() -> None:
            assert proc.stderr is not None
            async for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                if line.startswith('{"ready"'):
                    ready.set()
                else:
                    err_lines.append(line)

        reader = asyncio.create_task(read_stderr())
        # The window ends with the result line, before the generator closes its sockets: what
        # the servers do for departures is not the messages' cost.
        out_task = asyncio.create_task(proc.stdout.readline())
        ready_seconds = 0.0
        try:
            if handshake:
                waiting = asyncio.create_task(ready.wait())
                await asyncio.wait(
                    {waiting, out_task}, timeout=ready_timeout, return_when="FIRST_COMPLETED"
                )
                waiting.cancel()
                if not ready.is_set():
                    raise RuntimeError("the generator was not ready: " + "\n".join(err_lines[-20:]))
                ready_seconds = time.monotonic() - began
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # read already; the keys need not lie on disk any longer
                if on_ready is not None:
                    await on_ready()
                meter.start()
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            else:
                meter.start()
            out = await out_task
            result = json.loads(out) if out.strip() else None
            reported = (result or {}).get("cpu_seconds")
            window = meter.stop(None if reported is None else {"generator": float(reported)})
            await asyncio.wait_for(proc.wait(), 60)
            await reader
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0 or result is None:
            raise RuntimeError(
                f"the generator exited with {proc.returncode}: " + "\n".join(err_lines[-20:])
            )
        return GeneratorRun(result, window, ready_seconds, "\n".join(err_lines))
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --- targets -----------------------------------------------------------------------------------


@dataclass
class SetUp:
    """A target's rooms, ready for a generator: ``rooms`` are the config's entries."""

    url: str
    rooms: list[JSON]
    seconds: float  # what setting them up took
    sockets: int  # sockets the set-up opened (3 per room)
    errors: dict[str, int] = field(default_factory=dict)
    extra: JSON = field(default_factory=dict)


class Target(Protocol):
    """One system compared: started, its rooms set up, measured, stopped.

    ``key`` is its letter in ``--targets`` (a..f), ``name`` the generator's ``target``, ``label``
    the table's. ``generator`` is the command a config path is appended to; ``handshake`` says
    the generator keeps ``go_on_stdin``. Servers are started pinned to :data:`SERVER_CPU`.
    """

    key: str
    name: str
    label: str
    generator: list[str]
    handshake: bool

    async def start(self, folder: Path) -> None: ...

    async def set_up(self, rooms: int) -> SetUp: ...

    async def release(self) -> None:
        """Once the first generator holds the rooms: let go of what the set-up held."""
        ...

    def procs(self) -> dict[str, Proc]:
        """The processes a run meters: the servers (``kind`` "server") and their database or
        Redis ("helper")."""
        ...

    async def idle_sockets(self, count: int) -> JSON | None:
        """Open ``count`` idle connected sockets and hold them: the server's VmRSS before and
        after (``kib_per_socket``); None where the target cannot. Called once, right after
        :meth:`start` and before :meth:`set_up`, on a server that has done nothing yet."""
        ...

    def errors(self) -> list[str]:
        """Error lines of the servers' logs."""
        ...

    async def stop(self) -> None: ...
