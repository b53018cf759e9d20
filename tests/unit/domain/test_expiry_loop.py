"""The expiry loop (bridge/domain/consent/expiry.py): a pass over what is due runs at start, when
the earliest deadline comes and every ``RECHECK_SECONDS``; a wake for a deadline just made only
looks the earliest deadline up again, unless one has come or the last pass failed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from bridge.domain.consent.expiry import ExpiryLoop
from bridge.domain.delivery import Effect

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class Deadlines:
    """Stands in for ``Expiry``: counts the passes and the look-ups; a pass expires the
    deadline once it has come."""

    def __init__(self) -> None:
        self.deadline: datetime | None = None
        self.passes = 0
        self.lookups = 0
        self.failures = 0
        self.called = asyncio.Event()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while True:
                self.called.clear()
                if condition():
                    return
                await self.called.wait()

    async def expire_due(self) -> list[Effect]:
        self.passes += 1
        self.called.set()
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the database went away")
        if self.deadline is not None and self.deadline <= NOW:
            self.deadline = None
        return []

    async def next_deadline(self) -> datetime | None:
        self.lookups += 1
        self.called.set()
        return self.deadline


async def _deliver(effects: list[Effect]) -> None:
    pass


@pytest.fixture
async def running() -> AsyncIterator[tuple[ExpiryLoop, Deadlines]]:
    deadlines = Deadlines()
    loop = ExpiryLoop(deadlines, _deliver, lambda: NOW)  # type: ignore[arg-type]
    task = asyncio.create_task(loop.run())
    await deadlines.until(lambda: deadlines.lookups == 1)
    yield loop, deadlines
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_wakes_for_new_deadlines_look_them_up_without_a_pass(
    running: tuple[ExpiryLoop, Deadlines],
) -> None:
    loop, deadlines = running
    assert deadlines.passes == 1  # at start
    deadlines.deadline = NOW + timedelta(minutes=5)
    for lookups in (2, 3, 4):
        loop.wake()
        await deadlines.until(lambda n=lookups: deadlines.lookups == n)
    assert deadlines.passes == 1


async def test_a_deadline_that_has_come_is_expired(running: tuple[ExpiryLoop, Deadlines]) -> None:
    loop, deadlines = running
    deadlines.deadline = NOW - timedelta(seconds=1)
    loop.wake()
    await deadlines.until(lambda: deadlines.passes == 2)
    assert deadlines.deadline is None


async def test_a_failed_pass_is_run_again_at_the_next_wake(
    running: tuple[ExpiryLoop, Deadlines],
) -> None:
    loop, deadlines = running
    deadlines.deadline = NOW - timedelta(seconds=1)
    deadlines.failures = 1
    loop.wake()
    await deadlines.until(lambda: deadlines.passes == 2)  # failed: the deadline is still there
    deadlines.deadline = NOW + timedelta(minutes=5)
    loop.wake()
    await deadlines.until(lambda: deadlines.passes == 3)
