"""Group commit (bridge/domain/group_commit.py): what arrives during a commit goes into the next
one together, each caller gets its own item's answer once its batch committed, and a batch the
database refused is tried again item by item so that one bad item fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bridge.domain.group_commit import GroupCommit


class Store:
    """Commits batches of numbers; a batch holding a negative number fails as a whole."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.committed: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def commit(self, batch: Sequence[int]) -> list[int | Exception]:
        await self.gate.wait()
        if any(n < 0 for n in batch):
            raise RuntimeError("the database refused the batch")
        self.batches.append(list(batch))
        self.committed.extend(batch)
        return [n * 10 if n != 13 else ValueError("13 is refused") for n in batch]


async def test_items_arriving_during_a_commit_share_the_next_one() -> None:
    store = Store()
    commits = GroupCommit(store.commit)
    store.gate.clear()
    first = asyncio.create_task(commits.submit(1))
    await asyncio.sleep(0)  # the first commit has begun, alone
    rest = [asyncio.create_task(commits.submit(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    assert not first.done()
    store.gate.set()
    assert await first == 10
    assert [await task for task in rest] == [20, 30, 40, 50, 60]
    assert store.batches == [[1], [2, 3, 4, 5, 6]]
    assert (commits.batches, commits.items) == (2, 6)


async def test_an_answer_comes_only_after_its_batch_committed() -> None:
    store = Store()
    commits = GroupCommit(store.commit)
    store.gate.clear()
    task = asyncio.create_task(commits.submit(4))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done() and store.committed == []
    store.gate.set()
    assert await task == 40 and store.committed == [4]


async def test_an_item_refused_in_its_batch_fails_alone() -> None:
    store = Store()
    commits = GroupCommit(store.commit)
    results = await asyncio.gather(
        *(commits.submit(n) for n in (12, 13, 14)), return_exceptions=True
    )
    assert results[0] == 120 and results[2] == 140
    assert isinstance(results[1], ValueError)


async def test_a_batch_the_database_refused_is_tried_item_by_item() -> None:
    store = Store()
    commits = GroupCommit(store.commit)
    store.gate.clear()
    head = asyncio.create_task(commits.submit(0))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(commits.submit(n)) for n in (1, -1, 2)]
    await asyncio.sleep(0)
    store.gate.set()
    assert await head == 0
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], RuntimeError)
    assert store.batches == [[0], [1], [2]]  # the batch of three failed, then each alone


async def test_a_caller_that_goes_away_leaves_its_item_in_the_batch() -> None:
    store = Store()
    commits = GroupCommit(store.commit)
    store.gate.clear()
    head = asyncio.create_task(commits.submit(0))
    await asyncio.sleep(0)
    gone = asyncio.create_task(commits.submit(5))
    stays = asyncio.create_task(commits.submit(6))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    store.gate.set()
    assert await head == 0 and await stays == 60
    assert store.committed == [0, 5, 6]


async def test_a_batch_is_bounded() -> None:
    store = Store()
    commits = GroupCommit(store.commit, limit=3)
    store.gate.clear()
    tasks = [asyncio.create_task(commits.submit(n)) for n in range(1, 8)]
    await asyncio.sleep(0)
    store.gate.set()
    assert [await task for task in tasks] == [n * 10 for n in range(1, 8)]
    assert store.batches == [[1, 2, 3], [4, 5, 6], [7]]
