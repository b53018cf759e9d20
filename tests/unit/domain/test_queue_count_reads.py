"""How many conversations wait, as counsellors are told it (bridge/domain/conversations.py,
``QueueCount``): read after each change has committed, one read for every change that came while
the one before it ran, and a count that cannot be read fails no change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bridge.domain.conversations import QueueCount
from bridge.domain.delivery import COUNSELLORS, Emit


class Waiting:
    """Stands in for the database: the count of waiting conversations, read slowly."""

    def __init__(self, fails: bool = False) -> None:
        self.count = 0
        self.reads = 0
        self.fails = fails

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        if self.fails:
            raise ConnectionError("the database went away")
        yield self

    async def scalar(self, _query: object) -> int:
        self.reads += 1
        count = self.count
        await asyncio.sleep(0.01)
        return count


async def test_changes_made_during_a_read_share_the_next_one() -> None:
    waiting = Waiting()
    queue = QueueCount(waiting)  # type: ignore[arg-type]

    async def change() -> list[Any]:
        waiting.count += 1  # committed
        return await queue.after_change()

    told = await asyncio.gather(*(change() for _ in range(5)))
    assert waiting.reads == 2  # the first change's, then one for the four that came meanwhile
    events = [effect for effects in told for effect in effects]
    assert events == [
        Emit("queue", {"waiting": 1}, (COUNSELLORS,)),
        Emit("queue", {"waiting": 5}, (COUNSELLORS,)),
    ]


async def test_a_count_that_cannot_be_read_fails_no_change() -> None:
    waiting = Waiting(fails=True)
    queue = QueueCount(waiting)  # type: ignore[arg-type]
    assert await queue.after_change() == []
    waiting.fails = False
    waiting.count = 3
    assert await queue.after_change() == [Emit("queue", {"waiting": 3}, (COUNSELLORS,))]
