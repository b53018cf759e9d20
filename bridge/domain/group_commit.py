"""Group commit: work that arrives while a transaction is being committed waits and goes into the
next one together, so that many callers share one commit (and one fsync) without any of them
waiting longer than one commit for it.

Nothing is delayed on purpose: the first item of a quiet moment is committed at once, alone.
Each caller gets its own item's result only after the transaction that holds it has committed,
so an acknowledgement still means "durable". When a whole batch fails (the database refused
it), each item is tried again in a transaction of its own, so that one bad item fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

Item = TypeVar("Item")
Result = TypeVar("Result")

# A batch's size is bounded so that one transaction never holds the database for long.
BATCH_LIMIT = 256


class GroupCommit(Generic[Item, Result]):
    """Batches of items for ``commit``, which runs one transaction for a batch and returns each
    item's result, or the exception that is that item's answer, in the batch's order."""

    def __init__(
        self,
        commit: Callable[[Sequence[Item]], Awaitable[Sequence[Result | Exception]]],
        *,
        limit: int = BATCH_LIMIT,
    ) -> None:
        self._commit = commit
        self._limit = limit
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: Item) -> Result:
        """``item``'s result once the transaction holding it has committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        # Its exception is retrieved even when the caller went away before it was set.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._waiting.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work())
        # Shielded: a caller that goes away (its socket closed) leaves its item in the batch.
        return await asyncio.shield(future)

    async def _work(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
            items = [item for item, _ in batch]
            self.batches += 1
            self.items += len(items)
            try:
                results = await self._commit(items)
            except Exception as exc:
                alone = [exc] if len(items) == 1 else None
                results = alone or [await self._alone(item) for item in items]
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _alone(self, item: Item) -> Result | Exception:
        try:
            [result] = await self._commit([item])
        except Exception as exc:
            return exc
        return result
