"""A short run of ``bench/load.py``: many driegesprekken at once on one server process.

The bench's own set-up and checks (one ``bridge serve`` process, driver processes with the real
clients, every acked message at every reader of its audience exactly once, nothing care-only at
an officer, the victim's history equal to the acks), with the bench's 500 conversations (1,500
sockets) and rate, sending for 6 s instead of 60 so that it fits the suite. It asserts outcomes
only, never timings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))

import load  # type: ignore[import-not-found]

CONVERSATIONS = 500  # 1,500 sockets, as the bench runs it
SECONDS = 6
RATE = 0.1  # a message per conversation every 10 s: 50 a second, as the bench runs it


@pytest.mark.heavy
@pytest.mark.slow
def test_many_driegesprekken_at_once_lose_nothing() -> None:
    args = load.parse(
        [
            "--conversations",
            str(CONVERSATIONS),
            "--duration",
            str(SECONDS),
            "--rate",
            str(RATE),
            "--no-baseline",
        ]
    )
    result = load.measure(args)["bridge"]
    assert result["conversations"] == CONVERSATIONS
    assert result["sockets"] == 3 * CONVERSATIONS
    assert result["acked"] > 0
    assert result["acked"] == result["sent"]
    assert result["errors"] == {}
    assert result["server_log_errors"] == 0
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["leaked_to_officer"] == 0
    assert result["unreadable"] == 0
    assert result["history_mismatch"] == 0
    assert result["reconnects"] == 0
    assert result["server_exit_status"] == 0
