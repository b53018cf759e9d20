"""What the adversarial suites share: a bridge served from a thread, and the tally of cases.

Hypothesis drives plain (synchronous) test functions, so the bridge and its clients live on an
event loop in a thread of their own and each step is handed to that loop; the server is then
module-scoped, set up once for many generated cases.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from harness import Bridge, backend, staffed

T = TypeVar("T")

# Cases run per kind, printed at the end of the run (conftest.py).
TALLY: Counter[str] = Counter()


class LoopThread:
    """An event loop running in a daemon thread; ``run`` waits for one coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.run(_cancel_others())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _cancel_others() -> None:
    """Cancel what is left on the loop (engine.io ping tasks of closed sockets) before it stops."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def threaded_bridge(data_dir: Path, **overrides: Any) -> Iterator[tuple[LoopThread, Bridge]]:
    """A staffed bridge on a loop thread; clients and server are closed on the way out."""
    runner = LoopThread()
    bridge = runner.run(staffed(data_dir, overrides=overrides))
    try:
        yield runner, bridge
    finally:
        runner.run(bridge.close_clients())
        runner.run(bridge.stop())
        runner.stop()
        backend.release(data_dir)
