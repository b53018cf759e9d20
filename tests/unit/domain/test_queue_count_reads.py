"""How many conversations wait, as counsellors are told it (bridge/domain/queue_count.py): read
after each change has committed, the first change after a quiet spell told at once, every change
within the next interval told by one later read, and a count that cannot be read read again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bridge.domain.delivery import COUNSELLORS, Effect, Emit
from bridge.domain.queue_count import QueueCount

INTERVAL = 0.2


class Waiting:
    """Stands in for the database: the count of waiting conversations."""

    def __init__(self) -> None:
        self.count = 0
        self.reads = 0
        self.fails = False

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Any]:
        if self.fails:
            raise ConnectionError("the database went away")
        yield self

    async def scalar(self, _query: object) -> int:
        self.reads += 1
        return self.count


class Told:
    """What the loop delivered, in order."""

    def __init__(self) -> None:
        self.effects: list[Effect] = []
        self._changed = asyncio.Condition()

    async def deliver(self, effects: list[Effect]) -> None:
        async with self._changed:
            self.effects += effects
            self._changed.notify_all()

    async def at_least(self, n: int) -> None:
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(lambda: len(self.effects) >= n)

    def counts(self) -> list[object]:
        assert all(isinstance(e, Emit) and e.rooms == (COUNSELLORS,) for e in self.effects)
        return [e.payload["waiting"] for e in self.effects if isinstance(e, Emit)]


@contextlib.asynccontextmanager
async def running(
    waiting: Waiting, deliver: Callable[[Told], Callable[[list[Effect]], Awaitable[None]]]
) -> AsyncIterator[tuple[QueueCount, Told]]:
    queue = QueueCount(waiting, interval=INTERVAL)  # type: ignore[arg-type]
    told = Told()
    task = asyncio.create_task(queue.run(deliver(told)))
    try:
        yield queue, told
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def straight(told: Told) -> Callable[[list[Effect]], Awaitable[None]]:
    return told.deliver


async def test_a_change_after_a_quiet_spell_is_told_at_once() -> None:
    waiting = Waiting()
    async with running(waiting, straight) as (queue, told):
        waiting.count = 1  # committed
        queue.changed()
        # Well within the interval: this one did not wait for it.
        async with asyncio.timeout(INTERVAL / 2):
            await told.at_least(1)
    assert told.counts() == [1]


async def test_a_burst_of_changes_is_told_by_one_read_after_the_interval() -> None:
    waiting = Waiting()
    async with running(waiting, straight) as (queue, told):
        waiting.count = 1
        queue.changed()
        await told.at_least(1)
        for _ in range(7):
            waiting.count += 1
            queue.changed()
            await asyncio.sleep(0)
        await told.at_least(2)
        await asyncio.sleep(2 * INTERVAL)  # nothing changed since: nothing more is told
    assert told.counts() == [1, 8]
    assert waiting.reads == 2


async def test_a_count_that_cannot_be_read_is_read_again() -> None:
    waiting = Waiting()
    waiting.fails = True
    async with running(waiting, straight) as (queue, told):
        waiting.count = 3
        queue.changed()
        await asyncio.sleep(INTERVAL / 2)
        assert told.effects == []
        waiting.fails = False
        await told.at_least(1)
    assert told.counts() == [3]


async def test_a_count_that_cannot_be_told_is_told_again() -> None:
    waiting = Waiting()
    attempts = 0

    def failing_once(told: Told) -> Callable[[list[Effect]], Awaitable[None]]:
        async def deliver(effects: list[Effect]) -> None:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise ConnectionError("the fan-out is away")
            await told.deliver(effects)

        return deliver

    async with running(waiting, failing_once) as (queue, told):
        waiting.count = 2
        queue.changed()
        await told.at_least(1)
    assert told.counts() == [2]
    assert attempts == 2
