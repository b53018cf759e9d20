"""The bridge beside its peers: one command, one run, one machine, the same load for each.

Targets (``--targets``, letters): (a) a raw aiohttp websocket relay, (b) the bare python-socketio
relay of ``load.py``, (c) the bridge on SQLite, (d) the bridge on PostgreSQL, (e) Matrix Synapse
(``bench/peers/synapse.py``, when it is there), (f) two bridge nodes over Redis (PostgreSQL). Each
holds ``--rooms`` three-member rooms (victim, counsellor, officer); every message goes to all
three, its sender included, with ``--payload-bytes`` of ciphertext.

The load comes from generator processes (Node: socket.io-client, ws and the pages' own crypto
modules; ``bench/generators``), open-loop at an offered rate spread evenly over the rooms; the
generator times every delivery on its own clock. The servers (and their PostgreSQL and Redis)
are pinned to core 0 (two nodes share it: every target gets the same one core, so what a second
node and Redis cost shows as CPU per delivery, not as more throughput); the generators, the
set-up drivers and this process to core 1. Every process's CPU is read from ``/proc`` over each
run, with how busy each core was: what a core did beyond our processes on it is someone else's
(or the kernel's), and a run where that passes ``--disturbed-percent`` is marked disturbed; a
failing step that was disturbed is run again (``--retries``).

For each target: a warm-up run, then a ladder of offered rates until p99 reaches
``--p99-limit-ms`` or a message is lost or refused, then a bisection between the last good and the
first bad step: the highest offered rate sustained. p50 and p99 at ``--fixed-rates`` (the same for
every target), server CPU per delivered message (and the database's or Redis's beside it), the
servers' resident memory after the sweep, and memory per idle socket (``--idle-sockets`` opened
and held on the fresh server before anything else, VmRSS before and after).

    .venv/bin/python bench/compare.py --quick --targets a,b,c
    .venv/bin/python bench/compare.py --json compare.json --plot compare.png
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from peers import bridge as bridge_peers
from peers.common import (
    GENERATOR_CPU,
    JSON,
    SetUp,
    Target,
    proc_rss,
    run_generator,
    settle,
    summary,
)
from peers.relays import SocketioRelay, WebsocketRelay

LETTERS = "abcdef"
GENERATOR_LAG_MS = 20.0  # a generator this late (p99) on its own schedule limits the run itself


# --- the targets -------------------------------------------------------------------------------


def synapse_target(options: argparse.Namespace) -> Target | str:
    """Target (e) from ``bench/peers/synapse.py`` (its ``make_target(options)``), or why not."""
    try:
        from peers import synapse  # type: ignore[attr-defined]
    except ModuleNotFoundError as exc:
        if exc.name != "peers.synapse":
            raise
        return "bench/peers/synapse.py is not there yet"
    make = getattr(synapse, "make_target", None)
    if make is None:
        return "bench/peers/synapse.py has no make_target(options)"
    target: Target = make(options)
    return target


def make_targets(options: argparse.Namespace) -> dict[str, Target | str]:
    """The chosen targets by letter, in the order asked; a string says why one cannot run."""
    bridges = bridge_peers.targets(options)
    made: dict[str, Target | str] = {}
    for letter in options.targets:
        if letter == "a":
            made[letter] = WebsocketRelay(options)
        elif letter == "b":
            made[letter] = SocketioRelay(options)
        elif letter == "e":
            made[letter] = synapse_target(options)
        else:
            made[letter] = bridges[letter]
    return made


# --- one run -----------------------------------------------------------------------------------


def digest(run_kind: str, rate: float, target: Target, result: JSON, window: JSON) -> JSON:
    """One generator run as figures: latencies, losses, CPU per delivery, memory, disturbance."""
    procs = target.procs()
    cpu = window["cpu_seconds"]
    seconds = window["seconds"]
    # None: a process gone before its CPU was read (a generator that did not report its own).
    server = sum(cpu.get(name) or 0.0 for name, p in procs.items() if p.kind == "server")
    helpers = {name: cpu.get(name) or 0.0 for name, p in procs.items() if p.kind == "helper"}
    generator = cpu.get("generator")
    delivered = int(result["delivered"])
    rss = {}
    for name, p in procs.items():
        with contextlib.suppress(FileNotFoundError, KeyError):
            now, peak = proc_rss(p.pid)
            rss[name] = {"rss_kib": now, "peak_kib": peak}
    figures: JSON = {
        "kind": run_kind,
        "offered": rate,
        **{
            key: result.get(key)
            for key in (
                "sent",
                "acked",
                "deliveries_expected",
                "delivered",
                "lost",
                "duplicates",
                "errors",
                "unacked",
                "error_codes",
                "verified",
                "unreadable",
                "connect_seconds",
                "build_seconds",
                "send_seconds",
                "send_lag_ms",
            )
        },
        "latency_ms": summary(result["latency_ms"]),
        "ack_latency_ms": summary(result["ack_latency_ms"]),
        "window_seconds": seconds,
        "cpu_seconds": cpu,
        "server_cpu_percent": round(100 * server / seconds, 1),
        "server_cpu_ms_per_delivery": round(1000 * server / delivered, 4) if delivered else None,
        "system_cpu_ms_per_delivery": (
            round(1000 * (server + sum(helpers.values())) / delivered, 4) if delivered else None
        ),
        "generator_cpu_percent": None if generator is None else round(100 * generator / seconds, 1),
        "cores": window["cores"],
        "memory": rss,
    }
    return figures


def judge(run: JSON, options: argparse.Namespace) -> str:
    """ "ok", or what failed: "lost" (losses, refusals, drops or missing acks), "slow" (p99 at or
    over the limit), "generator" (the generator fell behind its own schedule)."""
    p99 = run["latency_ms"]["p99"]
    lag = (run.get("send_lag_ms") or {}).get("p99") or 0.0
    if run["lost"] or run["errors"] or run["duplicates"] or run.get("unacked"):
        return "lost"
    if run["delivered"] < run["deliveries_expected"]:
        return "lost"
    if lag > GENERATOR_LAG_MS:
        return "generator"
    if p99 is None or p99 >= options.p99_limit_ms:
        return "slow"
    return "ok"


def disturbed(run: JSON, options: argparse.Namespace) -> list[str]:
    """Cores where others used more than ``--disturbed-percent`` of the core during the run."""
    return [
        core
        for core, figures in run["cores"].items()
        if figures["others_percent"] > options.disturbed_percent
    ]


def counted(runs: list[JSON]) -> list[JSON]:
    """The runs that stand: not the warm-up, not one run again for a disturbance."""
    return [r for r in runs if r["kind"] != "warm-up" and not r.get("superseded")]


class Sweep:
    """The runs of one target, each with a fresh generator on the same rooms."""

    def __init__(
        self, target: Target, setup: SetUp, folder: Path, options: argparse.Namespace
    ) -> None:
        self.target, self.setup, self.folder, self.options = target, setup, folder, options
        self.runs: list[JSON] = []
        self.released = False

    async def run(self, rate: float, kind: str) -> JSON:
        options = self.options
        servers = [p.pid for p in self.target.procs().values()]
        settled = await settle(servers)
        config = {
            "target": self.target.name,
            "url": self.setup.url,
            "rooms": self.setup.rooms,
            "rate": rate,
            "duration": options.warmup_run if kind == "warm-up" else options.duration,
            "warmup": options.warmup,
            "payload_bytes": options.payload_bytes,
            "drain": options.drain,
        }
        on_ready = None if self.released else self.target.release
        self.released = True
        generated = await run_generator(
            self.target.generator,
            config,
            self.folder,
            self.target.procs(),
            on_ready=on_ready,
            handshake=self.target.handshake,
        )
        run = digest(kind, rate, self.target, generated.result, generated.window)
        run["ready_seconds"] = round(generated.ready_seconds, 2)
        run["settle_seconds"] = round(settled, 2)
        run["status"] = judge(run, options)
        run["disturbed_cores"] = disturbed(run, options)
        self.runs.append(run)
        lat = run["latency_ms"]
        print(
            f"  {self.target.key} {kind:<8} {rate:>7.0f}/s: p50 {lat['p50']} p99 {lat['p99']} ms, "
            f"delivered {run['delivered']}/{run['deliveries_expected']}, lost {run['lost']}, "
            f"errors {run['errors']}, server CPU {run['server_cpu_percent']} %, "
            f"generator {run['generator_cpu_percent']} %, lag p99 "
            f"{(run.get('send_lag_ms') or {}).get('p99')} ms -> {run['status']}"
            + (
                f" (disturbed: cores {','.join(run['disturbed_cores'])})"
                if run["disturbed_cores"]
                else ""
            ),
            file=sys.stderr,
            flush=True,
        )
        return run

    async def step(self, rate: float, kind: str) -> JSON:
        """One run that decides: a failing run while other processes took a core is run again
        (``--retries`` times), and the last one stands; the earlier is kept, marked."""
        run = await self.run(rate, kind)
        for _ in range(self.options.retries):
            if run["status"] == "ok" or not run["disturbed_cores"]:
                break
            run["superseded"] = True
            run = await self.run(rate, kind)
        return run

    async def sustained(self) -> JSON:
        """The ladder, then the bisection: the highest offered rate with p99 under the limit
        and nothing lost."""
        good, bad = 0.0, None
        first_bad: JSON | None = None
        for rate in self.options.ladder:
            run = await self.step(rate, "ladder")
            if run["status"] != "ok":
                bad, first_bad = rate, run
                break
            good = rate
        if bad is not None:
            for _ in range(self.options.bisect):
                mid = float(round((good + bad) / 2))
                if mid <= good or mid >= bad:
                    break
                run = await self.step(mid, "bisect")
                if run["status"] == "ok":
                    good = mid
                else:
                    bad, first_bad = mid, run
        return {
            "rate": good or None,
            "first_failing_rate": bad,
            "failed_by": first_bad["status"] if first_bad else None,
            # The ladder's top held: the true limit is higher.
            "at_least": bad is None,
        }

    async def fixed(self) -> dict[str, JSON]:
        """p50 and p99 at the shared offered rates (a rate the ladder ran is not run again)."""
        table: dict[str, JSON] = {}
        for rate in self.options.fixed_rates:
            done = [r for r in counted(self.runs) if r["offered"] == rate]
            run = done[-1] if done else await self.step(rate, "fixed")
            table[str(int(rate))] = {
                "p50_ms": run["latency_ms"]["p50"],
                "p99_ms": run["latency_ms"]["p99"],
                "status": run["status"],
                "lost": run["lost"],
            }
        return table

    async def at_half(self, rate: float | None) -> JSON | None:
        """p50 and p99 at half the highest rate sustained (the latency a load with headroom
        sees)."""
        if not rate:
            return None
        half = float(round(rate / 2))
        done = [r for r in counted(self.runs) if r["offered"] == half]
        run = done[-1] if done else await self.step(half, "half")
        return {
            "rate": half,
            "p50_ms": run["latency_ms"]["p50"],
            "p99_ms": run["latency_ms"]["p99"],
            "status": run["status"],
            "lost": run["lost"],
        }


async def measure(target: Target, folder: Path, options: argparse.Namespace) -> JSON:
    """Start the target, set up its rooms, sweep, measure idle sockets, stop it."""
    print(f"{target.key}: {target.label}", file=sys.stderr, flush=True)
    figures: JSON = {"key": target.key, "name": target.name, "label": target.label}
    await target.start(folder)
    try:
        # First, on a server that has done nothing yet: after the sweep, the sockets would take
        # memory the sweep's garbage freed, and seem cheaper.
        figures["idle"] = await target.idle_sockets(options.idle_sockets)
        setup = await target.set_up(options.rooms)
        figures["setup"] = {
            "rooms": len(setup.rooms),
            "sockets": setup.sockets,
            "seconds": round(setup.seconds, 2),
            "errors": setup.errors,
            **setup.extra,
        }
        print(
            f"  {target.key} set up {len(setup.rooms)} rooms in {setup.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        if len(setup.rooms) < options.rooms:
            raise RuntimeError(
                f"only {len(setup.rooms)} of {options.rooms} rooms set up: {setup.errors}"
            )
        sweep = Sweep(target, setup, folder, options)
        await sweep.run(options.ladder[0], "warm-up")
        figures["sustained"] = await sweep.sustained()
        figures["fixed"] = await sweep.fixed()
        figures["at_half"] = await sweep.at_half(figures["sustained"]["rate"])
        best = [r for r in counted(sweep.runs) if r["offered"] == figures["sustained"]["rate"]]
        figures["at_sustained"] = best[-1] if best else None
        figures["memory_after_sweep"] = {
            name: proc_rss(p.pid)[0] for name, p in target.procs().items()
        }
        figures["runs"] = sweep.runs
        figures["server_log_errors"] = target.errors()[:20]
    finally:
        await target.stop()
    return figures


# --- output ------------------------------------------------------------------------------------


def machine() -> JSON:
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return {
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "node": node.stdout.strip(),
        "kernel": platform.release(),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(figures: JSON) -> str:
    """The figures as a plain-text table, one line per target."""
    fixed = [str(int(r)) for r in figures["options"]["fixed_rates"]]
    head = (
        f"{'target':<38} {'max rate':>9} "
        + " ".join(f"{'p50/p99 @' + r:>16}" for r in fixed)
        + f" {'p99 @max/2':>14}"
        + f" {'CPU ms/dlv':>10} {'server CPU':>10} {'RSS MiB':>8} {'KiB/idle':>9} {'set-up':>8}"
    )
    lines = [head, "-" * len(head)]
    notes: list[str] = []
    for t in figures["targets"]:
        if "error" in t or "skipped" in t:
            why = t.get("error") or t.get("skipped")
            lines.append(f"{t['key'] + ' ' + t.get('label', ''):<38} not run: {why}")
            continue
        sustained = t["sustained"]
        rate = sustained["rate"]
        rate_text = "-" if rate is None else f"{'>=' if sustained['at_least'] else ''}{rate:.0f}"
        cells = []
        for r in fixed:
            cell = t["fixed"].get(r, {})
            mark = "" if cell.get("status") == "ok" else "*"
            cells.append(f"{_ms(cell.get('p50_ms'))}/{_ms(cell.get('p99_ms'))}{mark}")
        half = t.get("at_half") or {}
        half_text = (
            f"{_ms(half.get('p99_ms'))}@{half['rate']:.0f}"
            + ("" if half.get("status") == "ok" else "*")
            if half
            else "-"
        )
        best = t.get("at_sustained") or {}
        cpu = best.get("server_cpu_ms_per_delivery")
        servers = [n for n in t["memory_after_sweep"] if n not in ("postgresql", "redis")]
        rss = sum(t["memory_after_sweep"][n] for n in servers)
        idle = (t.get("idle") or {}).get("kib_per_socket")
        lines.append(
            f"{t['key'] + ' ' + t['label']:<38} {rate_text:>9} "
            + " ".join(f"{c:>16}" for c in cells)
            + f" {half_text:>14}"
            + f" {'-' if cpu is None else f'{cpu:.3f}':>10}"
            + f" {_ms(best.get('server_cpu_percent')) + ' %':>10}"
            + f" {rss / 1024:>8.1f} {'-' if idle is None else idle:>9}"
            + f" {t['setup']['seconds']:>7.1f}s"
        )
        helpers = {
            k: v for k, v in (best.get("cpu_seconds") or {}).items() if k in ("postgresql", "redis")
        }
        if helpers and best.get("window_seconds"):
            extra = ", ".join(
                f"{k} {100 * v / best['window_seconds']:.1f} % of a core"
                for k, v in helpers.items()
            )
            notes.append(
                f"{t['key']}: at {rate_text}/s also {extra}; with them "
                f"{best['system_cpu_ms_per_delivery']} ms CPU a delivery"
            )
        if sustained["failed_by"]:
            notes.append(
                f"{t['key']}: first failing rate {sustained['first_failing_rate']:.0f}/s "
                f"({sustained['failed_by']})"
            )
        shaken = [r for r in t["runs"] if r["disturbed_cores"]]
        if shaken:
            worst = max(f["others_percent"] for r in shaken for f in r["cores"].values())
            notes.append(
                f"{t['key']}: {len(shaken)} of {len(t['runs'])} runs disturbed: other processes "
                f"took up to {worst:.0f} % of a core "
                f"(cores {','.join(sorted({c for r in shaken for c in r['disturbed_cores']}))})"
            )
        if t.get("server_log_errors"):
            notes.append(f"{t['key']}: {len(t['server_log_errors'])} error lines in server logs")
    lines.append("")
    lines.append(
        f"max rate: highest offered messages/s with p99 < {figures['options']['p99_limit_ms']:g} "
        "ms "
        "and nothing lost; p50/p99 in ms of delivery (send to each member's receipt), * = not "
        "within the limit or lost; p99 @max/2: p99 in ms at half the max rate, @ that rate; "
        "CPU ms/dlv and server CPU at the max rate (servers only); "
        "RSS after the sweep; KiB/idle: VmRSS growth per idle connected socket."
    )
    lines += notes
    return "\n".join(lines)


def plot(figures: JSON, path: Path) -> None:
    """p50 and p99 of delivery against offered rate, log scales, one line per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for t in figures["targets"]:
        if "runs" not in t:
            continue
        points = sorted(
            (r["offered"], r["latency_ms"]["p50"], r["latency_ms"]["p99"])
            for r in counted(t["runs"])
            if r["latency_ms"]["p50"] is not None
        )
        if not points:
            continue
        rates = [p[0] for p in points]
        for axis, column in zip(axes, (1, 2), strict=True):
            axis.plot(
                rates, [p[column] for p in points], marker="o", label=f"({t['key']}) {t['label']}"
            )
    limit = figures["options"]["p99_limit_ms"]
    for axis, title in zip(axes, ("p50", "p99"), strict=True):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("offered messages a second (3 deliveries each)")
        axis.set_title(f"{title} delivery latency")
        axis.axhline(limit, color="grey", linestyle="--", linewidth=0.8)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms")
    axes[1].legend(fontsize=8, loc="upper left")
    rooms = figures["options"]["rooms"]
    fig.suptitle(
        f"{rooms} rooms of 3, {figures['options']['payload_bytes']} B ciphertext; "
        "servers on core 0, generators on core 1"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- the command -------------------------------------------------------------------------------


def rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="a,b,c,d,e,f", help="letters, e.g. a,b,c")
    parser.add_argument("--quick", action="store_true", help="short runs, fewer rooms and steps")
    parser.add_argument("--rooms", type=int, help="three-member rooms (default 100, quick 20)")
    parser.add_argument("--duration", type=float, help="seconds counted per run (10, quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds not counted per run (2, quick 1)")
    parser.add_argument("--warmup-run", type=float, help="seconds of the first run (5, quick 2)")
    parser.add_argument("--drain", type=float, help="seconds for the last deliveries (5, quick 3)")
    parser.add_argument("--ladder", type=rates, help="offered rates, ascending")
    parser.add_argument("--fixed-rates", type=rates, help="rates every target runs")
    parser.add_argument("--bisect", type=int, help="bisection steps (3, quick 1)")
    parser.add_argument("--p99-limit-ms", type=float, default=100.0)
    parser.add_argument("--payload-bytes", type=int, default=256, help="ciphertext per message")
    parser.add_argument("--idle-sockets", type=int, help="idle sockets (1000, quick 200)")
    parser.add_argument("--idle-hold", type=float, help="seconds they are held (5, quick 2)")
    parser.add_argument("--setup-drivers", type=int, default=2, help="bridge set-up processes")
    parser.add_argument("--pg-fsync", choices=["on", "off"], default="on")
    parser.add_argument(
        "--disturbed-percent",
        type=float,
        default=10.0,
        help="a run is disturbed where others took more of a core than this",
    )
    parser.add_argument(
        "--retries", type=int, default=1, help="runs again of a failing, disturbed step"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--plot", type=Path, help="write the latency plot to this PNG")
    options = parser.parse_args(argv)
    quick = options.quick
    defaults: dict[str, Any] = {
        "rooms": 20 if quick else 100,
        "duration": 3.0 if quick else 10.0,
        "warmup": 1.0 if quick else 2.0,
        "warmup_run": 2.0 if quick else 5.0,
        "drain": 3.0 if quick else 5.0,
        "ladder": rates("100,200,500,1000,2000" if quick else "100,200,500,1000,2000,4000,8000"),
        "fixed_rates": rates("100,500" if quick else "100,200,500,1000"),
        "bisect": 1 if quick else 3,
        "idle_sockets": 200 if quick else 1000,
        "idle_hold": 2.0 if quick else 5.0,
    }
    for name, value in defaults.items():
        if getattr(options, name) is None:
            setattr(options, name, value)
    options.targets = [t.strip() for t in options.targets.split(",") if t.strip()]
    unknown = [t for t in options.targets if t not in LETTERS]
    if unknown:
        parser.error(f"unknown targets {unknown}: choose from {','.join(LETTERS)}")
    return options


async def compare(options: argparse.Namespace) -> JSON:
    figures: JSON = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()},
        "targets": [],
    }
    with tempfile.TemporaryDirectory(prefix="bridge-compare-") as tmp:
        try:
            for letter, target in make_targets(options).items():
                if isinstance(target, str):
                    figures["targets"].append({"key": letter, "label": "", "skipped": target})
                    print(f"{letter}: not run: {target}", file=sys.stderr, flush=True)
                    continue
                folder = Path(tmp) / letter
                folder.mkdir()
                try:
                    figures["targets"].append(await measure(target, folder, options))
                except Exception as exc:
                    traceback.print_exc()
                    error = f"{type(exc).__name__}: {str(exc)[:300]}"
                    figures["targets"].append(
                        {"key": letter, "name": target.name, "label": target.label, "error": error}
                    )
        finally:
            await asyncio.to_thread(bridge_peers.stop_shared)
    figures["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return figures


def _stopped(signum: int, _frame: object) -> None:
    # A SIGTERM (a timeout, a kill) unwinds like an error, so that every server, database and
    # generator this run started is stopped by the blocks that started it.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    signal.signal(signal.SIGTERM, _stopped)
    # Every socket is a file descriptor, in the servers (which inherit this) and the clients.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # This process, and all it starts but the servers, on the generators' core.
    if (os.cpu_count() or 1) > GENERATOR_CPU:
        os.sched_setaffinity(0, {GENERATOR_CPU})
    figures = asyncio.run(compare(options))
    if options.json:
        options.json.write_text(json.dumps(figures, indent=1) + "\n")
    if options.plot:
        plot(figures, options.plot)
    print(table(figures), flush=True)
    return 1 if any("error" in t for t in figures["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
