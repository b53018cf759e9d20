"""The one clock of the bridge and the one way its times are written.

Every timestamp is UTC. The core takes the clock as a value (``Callable[[], datetime]``), so tests
can move time; this module gives the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "iso", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The log's and the protocol's time format: UTC, whole seconds, ``Z`` (no floats)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
