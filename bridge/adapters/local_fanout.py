"""Fan-out within one process: what is published is applied to this process's sockets.

``deliver`` returns once its effects were applied, as when the edge emitted them itself: a
client that gets an ack has already been sent what the call caused, before that ack.
"""

from __future__ import annotations

import asyncio

import structlog

from bridge.domain.fanout import Fanout, Message, Sockets, apply

__all__ = ["LocalFanout"]

_log = structlog.get_logger("bridge.fanout")


class LocalFanout(Fanout):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Message, asyncio.Future[None]]] = asyncio.Queue()
        self._stopped = False

    async def _publish(self, message: Message) -> None:
        if self._stopped:
            return  # the server is stopping: its sockets are closed already
        applied = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((message, applied))
        await applied

    async def run(self, sockets: Sockets) -> None:
        applied: asyncio.Future[None] | None = None
        try:
            while True:
                message, applied = await self._queue.get()
                try:
                    await apply(sockets, message)
                except Exception:
                    _log.exception("fanout.apply_failed")
                # The publisher goes on once its message is applied.
                if not applied.done():
                    applied.set_result(None)
                applied = None
        finally:
            self._stopped = True
            # Stopped (the server shuts down): nobody waits for what will not be applied.
            if applied is not None and not applied.done():
                applied.set_result(None)
            while not self._queue.empty():
                _, waiting = self._queue.get_nowait()
                if not waiting.done():
                    waiting.set_result(None)
