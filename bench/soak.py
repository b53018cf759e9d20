"""A steady load for a long time: does the server's resident memory keep growing?

The set-up of ``load.py`` (one server process, driver processes, real driegesprekken), at a
moderate steady rate for ``--duration`` seconds. The server's resident memory (VmRSS) is sampled
every ``--sample-every`` seconds; growth is measured from the first sample after ``--warm-up``
seconds (caches, pools and the first checkpoints have filled by then) to the last one. The
baseline is that warm-up value, in the same run: the figure is a ratio, not a size.

Exits non-zero if memory grew by ``--max-growth`` percent or more, or on any error or loss.

    .venv/bin/python bench/soak.py [--conversations 100] [--duration 1800] [--rate 0.3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import load  # type: ignore[import-not-found]

JSON = dict[str, Any]


async def soak(folder: Path, args: argparse.Namespace) -> JSON:
    config = await load.prepare(folder, args.conversations, "FULL")
    server = load.start_bridge(folder, config)
    try:
        await load.wait_healthy(server.url, server.proc)
        result: JSON = await asyncio.to_thread(
            load.run,
            server,
            args.conversations,
            args.duration,
            args.rate,
            args.drivers,
            False,
            args.sample_every,
        )
    finally:
        result_status = server.stop()
    result["server_exit_status"] = result_status
    result["server_log_errors"] = len(server.errors())
    result["error_count"] += result["server_log_errors"]
    samples = result.pop("server_rss_samples_kib")
    after = [kib for at, kib in samples if at >= args.warm_up]
    warm, last = (after[0], after[-1]) if after else (samples[0][1], samples[-1][1])
    result["rss_mib"] = {
        "start": round(samples[0][1] / 1024, 1),
        "after_warm_up": round(warm / 1024, 1),
        "end": round(last / 1024, 1),
        "min_after_warm_up": round(min(after or [warm]) / 1024, 1),
        "max_after_warm_up": round(max(after or [warm]) / 1024, 1),
    }
    result["rss_growth_percent"] = round(100 * (last - warm) / warm, 2)
    result["rss_samples_mib"] = [(at, round(kib / 1024, 1)) for at, kib in samples]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds of sending")
    parser.add_argument(
        "--rate", type=float, default=0.3, help="messages a second per conversation"
    )
    parser.add_argument("--drivers", type=int, default=1, help="client processes")
    parser.add_argument("--warm-up", type=float, default=120.0, help="seconds before the baseline")
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument("--max-growth", type=float, default=10.0, help="percent")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bridge-soak-") as tmp:
        result = asyncio.run(soak(Path(tmp), args))
    if args.json:
        print(json.dumps(result, indent=2), flush=True)
    else:
        rss = result["rss_mib"]
        print(
            f"{result['conversations']} conversations ({result['sockets']} sockets), "
            f"{result['acked']} messages in {result['duration']:.0f} s "
            f"({result['messages_per_second']:.1f}/s)\n"
            f"  server RSS MiB: start {rss['start']}, after {args.warm_up:.0f} s warm-up "
            f"{rss['after_warm_up']}, end {rss['end']} (range after warm-up "
            f"{rss['min_after_warm_up']} to {rss['max_after_warm_up']}); "
            f"growth {result['rss_growth_percent']} %\n"
            f"  ack ms p50 {result['ack_ms']['p50']}, p95 {result['ack_ms']['p95']}, "
            f"p99 {result['ack_ms']['p99']}; server CPU {result['server_cpu_percent']} %\n"
            f"  errors {result['error_count']} {result['errors'] or ''}, lost {result['lost']}, "
            f"duplicated {result['duplicated']}, leaked {result['leaked_to_officer']}, "
            f"unreadable {result['unreadable']}, history mismatches {result['history_mismatch']}, "
            f"reconnects {result['reconnects']}",
            flush=True,
        )
    grew = result["rss_growth_percent"] >= args.max_growth
    return 1 if grew or load.failures(result) else 0


if __name__ == "__main__":
    sys.exit(main())
