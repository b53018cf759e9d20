"""A reconnect storm: every socket of one server dropped at once, while messages are in flight.

The set-up of ``load.py`` (one ``bridge serve`` process, driver processes, real driegesprekken;
334 of them by default: 1,002 sockets). Every party sends at a steady rate; halfway through, the
server process is killed (SIGKILL: no socket is closed cleanly, acks in flight are lost) and
started again on the same port and database. The clients reconnect by themselves (jittered
back-off), resume (register, re-join, fetch what they missed, resend what was not acked with the
same ``client_msg_id``) and go on sending.

Checked at the end, as in ``load.py``: every acked message reached every reader of its audience
exactly once, none that was care-only reached an officer, and the victim's history equals the
acks. Sends the server refused because the police part was paused by the restart (it waits for
the counsellor to come back) are refusals the sender hears (``wrong_state``), counted apart.

Timed: from the kill until the last client has resumed, and from the new server answering
``/healthz`` until then; the baseline is the time the same sockets took to be set up the first
time (log in, create, join, consent), in the same run.

    .venv/bin/python bench/storm.py [--conversations 334] [--rate 0.3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import load  # type: ignore[import-not-found]

JSON = dict[str, Any]
RESUME_TIMEOUT = 180.0  # how long a client may take to be back after the restart
# A send the restart's pause refused: the sender is told, nothing is lost.
PAUSE_REFUSALS = frozenset({"ack: wrong_state"})


async def storm_drive(pipe: Connection, url: str, indices: list[int]) -> None:
    loop = asyncio.get_running_loop()
    convs = [load.Conv(i) for i in indices]
    setup = load.Tally()
    began = time.perf_counter()
    await load.set_up_bridge(url, convs, setup)
    ready = [c for c in convs if c.parties]
    pipe.send({"ready": len(ready), "setup_seconds": time.perf_counter() - began})
    start, duration, rate = await loop.run_in_executor(None, pipe.recv)
    clients = [client for conv in ready for client in conv.clients]
    for client in clients:  # a thousand resumes queue up at the server: wait, do not give up
        client.ack_timeout = client.send_wait = RESUME_TIMEOUT
    resumed_at: list[float] = []

    async def back(client: Any) -> None:
        try:
            await client.resumed(1, timeout=duration + RESUME_TIMEOUT)
        except Exception as exc:
            setup.errors[f"resume: {type(exc).__name__}: {exc}"] += 1
        else:
            resumed_at.append(time.time())

    watchers = [asyncio.create_task(back(client)) for client in clients]
    tally = await load.send_phase(ready, start, duration, rate)
    await asyncio.gather(*watchers)
    checks = await load.settle_and_check(ready, bridge=True)
    pipe.send(
        {
            "sent": tally.sent,
            "acked": tally.acked,
            "errors": dict(tally.errors + setup.errors),
            "latencies": tally.latencies,
            "resumed_at": resumed_at,
            "clients": len(clients),
            **checks,
        }
    )
    await loop.run_in_executor(None, pipe.recv)
    for conv in convs:
        for close in conv.closers:
            with contextlib.suppress(Exception):
                await close()


def storm_driver(pipe: Connection, url: str, indices: list[int]) -> None:
    try:
        asyncio.run(storm_drive(pipe, url, indices))
    except BaseException:
        pipe.send({"failed": traceback.format_exc()})
        raise


async def storm(folder: Path, args: argparse.Namespace) -> JSON:
    config = await load.prepare(folder, args.conversations, "FULL")
    server = load.start_bridge(folder, config)
    servers = [server]
    ctx = multiprocessing.get_context("spawn")
    group = []
    try:
        await load.wait_healthy(server.url, server.proc)
        for n in range(args.drivers):
            parent, child = ctx.Pipe()
            indices = list(range(n, args.conversations, args.drivers))
            proc = ctx.Process(target=storm_driver, args=(child, server.url, indices), daemon=True)
            proc.start()
            group.append((parent, proc))
        readies = [await asyncio.to_thread(load.receive, p, proc) for p, proc in group]
        start = time.time() + 1.0
        for pipe, _ in group:
            pipe.send((start, args.duration, args.rate))
        await asyncio.sleep(start + args.duration / 2 - time.time())
        killed_at = time.time()
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server = load.start_bridge(folder, config, server.port, name="bridge-restarted")
        servers.append(server)
        await load.wait_healthy(server.url, server.proc)
        back_at = time.time()
        results = [await asyncio.to_thread(load.receive, p, proc) for p, proc in group]
        for pipe, _ in group:
            pipe.send("done")
        for _, proc in group:
            await asyncio.to_thread(proc.join, 60)
    except BaseException:
        for _, proc in group:
            proc.kill()
        raise
    finally:
        status = server.stop()
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    refused = sum(n for key, n in errors.items() if key in PAUSE_REFUSALS)
    other = {key: n for key, n in errors.items() if key not in PAUSE_REFUSALS}
    resumed = sorted(t for r in results for t in r["resumed_at"])
    latencies = sorted(x for r in results for x in r["latencies"])
    setup_seconds = max(r["setup_seconds"] for r in readies)
    last = resumed[-1] if resumed else float("nan")
    figures: JSON = {
        "conversations": sum(r["ready"] for r in readies),
        "sockets": sum(r["clients"] for r in results),
        "resumed": len(resumed),
        "setup_seconds": round(setup_seconds, 1),
        "server_down_seconds": round(back_at - killed_at, 2),
        "all_resumed_after_kill_seconds": round(last - killed_at, 2),
        "all_resumed_after_back_seconds": round(last - back_at, 2),
        "half_resumed_after_back_seconds": round(resumed[len(resumed) // 2] - back_at, 2)
        if resumed
        else None,
        "ratio_resume_to_setup": round((last - back_at) / setup_seconds, 3),
        "sent": sum(r["sent"] for r in results),
        "acked": sum(r["acked"] for r in results),
        "refused_while_paused": refused,
        "errors": other,
        "ack_ms": {f"p{q}": round(1000 * load.percentile(latencies, q), 1) for q in (50, 99)},
        "server_log_errors": sum(len(s.errors()) for s in servers[1:]),
        "server_log_error_samples": [line for s in servers[1:] for line in s.errors()][:5],
        "server_exit_status": status,
        "lost_by_role": dict(sum((Counter(r["lost_by_role"]) for r in results), Counter())),
        "loss_samples": [x for r in results for x in r["loss_samples"]][:5],
        "killed_at": killed_at,
        **{
            key: sum(r[key] for r in results)
            for key in ("lost", "duplicated", "leaked_to_officer", "unreadable", "history_mismatch")
        },
    }
    figures["missing_conversations"] = args.conversations - figures["conversations"]
    return figures


def failures(figures: JSON) -> int:
    keys = ("lost", "duplicated", "leaked_to_officer", "unreadable", "history_mismatch")
    missing = figures["sockets"] - figures["resumed"] + figures["missing_conversations"]
    return sum(figures[k] for k in keys) + len(figures["errors"]) + missing


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=334, help="3 sockets each")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
    parser.add_argument(
        "--rate", type=float, default=0.3, help="messages a second per conversation"
    )
    parser.add_argument("--drivers", type=int, default=2, help="client processes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> JSON:
    with tempfile.TemporaryDirectory(prefix="bridge-storm-") as tmp:
        return asyncio.run(storm(Path(tmp), args))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    f = measure(args)
    if args.json:
        print(json.dumps(f, indent=2), flush=True)
    else:
        print(
            f"{f['conversations']} conversations, {f['sockets']} sockets, set up in "
            f"{f['setup_seconds']} s (baseline)\n"
            f"  server killed and back in {f['server_down_seconds']} s; {f['resumed']} sockets "
            f"resumed, the last {f['all_resumed_after_back_seconds']} s after it was back "
            f"(half within {f['half_resumed_after_back_seconds']} s); ratio to set-up "
            f"{f['ratio_resume_to_setup']}\n"
            f"  {f['acked']} of {f['sent']} sends acked, {f['refused_while_paused']} refused "
            f"while the police part waited for its counsellor; ack ms p50 {f['ack_ms']['p50']}, "
            f"p99 {f['ack_ms']['p99']}\n"
            f"  errors {f['errors'] or 0}, lost {f['lost']}, duplicated {f['duplicated']}, "
            f"leaked {f['leaked_to_officer']}, unreadable {f['unreadable']}, history "
            f"mismatches {f['history_mismatch']}",
            flush=True,
        )
    return 1 if failures(f) else 0


if __name__ == "__main__":
    sys.exit(main())
