"""The expiry loop: unanswered questions and invites no officer took, on time, after restarts too.

Deadlines live in the database; the loop sleeps until the earliest one, or until woken because
a new one was made, and hands what expired to the delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from bridge.consent.bridges import Bridges
from bridge.delivery import Effect

__all__ = ["ExpiryLoop"]

_log = structlog.get_logger("bridge.expiry")


class ExpiryLoop:
    def __init__(
        self,
        bridges: Bridges,
        deliver: Callable[[list[Effect]], Awaitable[None]],
        clock: Callable[[], datetime],
    ) -> None:
        self.bridges = bridges
        self.deliver = deliver
        self.clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.deliver(await self.bridges.expire_due())
                deadline = await self.bridges.next_deadline()
            except Exception:
                _log.exception("expiry.failed")
                deadline = None
                await asyncio.sleep(1)
            timeout = (
                None if deadline is None else max(0.0, (deadline - self.clock()).total_seconds())
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
