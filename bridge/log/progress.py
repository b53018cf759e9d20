"""Progress of a long audit command (an export, a verification, a rules check of a large log) on
the terminal that runs it: one line on stderr, redrawn a few times a second and cleared at the
end. On a pipe or a file (a script, a cron job) it writes nothing, so output stays as it was.

Pure (the standard library only): the auditor's commands use it without the server.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

__all__ = ["Progress"]

_T = TypeVar("_T")
_REDRAW_SECONDS = 0.2


class Progress:
    """``what: done/total (percent)`` on ``stream`` while it is a terminal."""

    def __init__(self, what: str, total: int, stream: TextIO | None = None) -> None:
        self.what, self.total, self.done = what, total, 0
        self.stream = sys.stderr if stream is None else stream
        self.shown = self.stream.isatty()
        self._drawn = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.shown and now - self._drawn >= _REDRAW_SECONDS:
            self._drawn = now
            self._draw()

    def counting(self, items: Iterable[_T]) -> Iterator[_T]:
        """``items``, advancing by one for each as it is taken; finished after the last."""
        for item in items:
            yield item
            self.advance()
        self.finish()

    def finish(self) -> None:
        """Clear the line (the command prints its outcome after it)."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _draw(self) -> None:
        percent = 100 * self.done // self.total if self.total else 100
        self.stream.write(f"\r\x1b[K{self.what}: {self.done}/{self.total} ({percent} %)")
        self.stream.flush()
