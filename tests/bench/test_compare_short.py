"""A very short run of ``bench/compare.py`` on targets (a), (b) and (c): the raw websocket relay,
the bare python-socketio relay and the bridge on SQLite, each with a few rooms, one ladder step
and a few idle sockets.

It checks the bench's plumbing end to end (servers pinned and started, the bridge's rooms set up
with the Python client and taken over by the Node generator, real envelopes accepted and read by
the victims, every message at all three members exactly once, the JSON and the table written),
never a timing. compare.py runs as its own process: it pins itself to a core.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

COMPARE = Path(__file__).parents[2] / "bench" / "compare.py"
RUN_KEYS = {
    "offered",
    "sent",
    "acked",
    "delivered",
    "deliveries_expected",
    "lost",
    "duplicates",
    "errors",
    "latency_ms",
    "ack_latency_ms",
    "server_cpu_ms_per_delivery",
    "cpu_seconds",
    "cores",
    "status",
}


@pytest.mark.heavy
@pytest.mark.slow
def test_a_short_comparison_loses_nothing_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    command = [
        sys.executable,
        str(COMPARE),
        "--targets=a,b,c",
        "--rooms=3",
        "--ladder=30",
        "--fixed-rates=30",
        "--bisect=0",
        "--retries=0",
        "--duration=1",
        "--warmup=0.5",
        "--warmup-run=0.5",
        "--drain=5",
        "--idle-sockets=20",
        "--idle-hold=0.5",
        f"--json={out}",
    ]
    plot = tmp_path / "compare.png"
    if importlib.util.find_spec("matplotlib") is not None:  # the bench extra
        command.append(f"--plot={plot}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    figures = json.loads(out.read_text())
    assert [t["key"] for t in figures["targets"]] == ["a", "b", "c"]
    for target in figures["targets"]:
        assert "error" not in target, target
        assert target["setup"]["rooms"] == 3
        assert target["server_log_errors"] == []
        runs = target["runs"]
        assert {r["kind"] for r in runs} >= {"warm-up", "ladder"}
        for run in runs:
            assert set(run) >= RUN_KEYS, set(run)
            assert run["sent"] > 0
            assert run["acked"] == run["sent"]
            assert run["delivered"] == run["deliveries_expected"] == 3 * run["acked"]
            assert (run["lost"], run["duplicates"], run["errors"]) == (0, 0, 0), run
            assert run["latency_ms"]["n"] > 0
        idle = target["idle"]
        assert idle["opened"] == 20, idle
    bridge = figures["targets"][2]
    # The bridge's envelopes were real: the victims verified and opened the first ones.
    assert all(r["verified"] > 0 and r["unreadable"] == 0 for r in bridge["runs"])
    assert bridge["setup"]["sockets"] == 9
    assert "max rate" in done.stdout
    if plot.exists():
        assert plot.read_bytes().startswith(b"\x89PNG")
