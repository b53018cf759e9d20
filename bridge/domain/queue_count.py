"""The ``queue`` event: how many conversations wait for a counsellor, told to every counsellor
socket after a conversation was started, picked up or closed.

A loop of its own tells it. The count is read after the change has committed, in a read of its
own; the first change after a quiet spell is told at once, and every change that comes in the
next ``INTERVAL`` is told together once it has passed. Every counsellor socket gets an event per
count, so under a burst (hundreds of conversations started within seconds) that is a handful of
events a second, not one per change; and the last event always holds a count read after the last
change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from bridge.domain.delivery import COUNSELLORS, Effect, Emit
from bridge.store import conversations
from bridge.store.db import Database

__all__ = ["INTERVAL", "QueueCount"]

_log = structlog.get_logger("bridge.queue")

INTERVAL = 0.5  # seconds from one count told to the next


class QueueCount:
    def __init__(self, db: Database, interval: float = INTERVAL) -> None:
        self._db = db
        self._interval = interval
        self._changed = asyncio.Event()

    def changed(self) -> None:
        """A change that moves the count has committed."""
        self._changed.set()

    async def run(self, deliver: Callable[[list[Effect]], Awaitable[None]]) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()  # changes from here on are told by the next count
            try:
                async with self._db.reading() as session:
                    count = await conversations.waiting_count(session)
                await deliver([Emit("queue", {"waiting": count}, (COUNSELLORS,))])
            except Exception:
                # The changes have committed: a count not read or not told is no failure of
                # theirs; it is read again once the interval has passed.
                _log.exception("queue.count_failed")
                self._changed.set()
            await asyncio.sleep(self._interval)
