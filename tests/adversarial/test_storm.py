"""A reconnect storm (``bench/storm.py``): 1,002 sockets of one server dropped at once.

334 driegesprekken on one ``bridge serve`` process send at a steady rate; halfway, the process is
killed (SIGKILL) and started again on the same port and database. Every client reconnects and
resumes by itself; afterwards every acked message is at every reader of its audience exactly
once, nothing care-only reached an officer, and the victim's history equals the acks. Sends
refused while the restart's pause lasted (``wrong_state``) are told to their sender, never lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))

import storm  # type: ignore[import-not-found]

CONVERSATIONS = 334  # 1,002 sockets


@pytest.mark.heavy
@pytest.mark.slow
def test_a_thousand_sockets_dropped_at_once_resume_with_nothing_missing() -> None:
    args = storm.parse(["--conversations", str(CONVERSATIONS), "--duration", "16"])
    result = storm.measure(args)
    assert result["errors"] == {}
    assert result["conversations"] == CONVERSATIONS
    assert result["sockets"] == 3 * CONVERSATIONS
    assert result["resumed"] == result["sockets"]
    assert result["acked"] > 0
    assert result["acked"] + result["refused_while_paused"] == result["sent"]
    assert result["server_log_errors"] == 0, result["server_log_error_samples"]
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["leaked_to_officer"] == 0
    assert result["unreadable"] == 0
    assert result["history_mismatch"] == 0
