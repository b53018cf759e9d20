"""Progress of the long audit commands: a line on a terminal, nothing on a pipe."""

from __future__ import annotations

import io

from bridge.log.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_the_count_and_the_line_cleared_at_the_end() -> None:
    out = Terminal()
    assert list(Progress("entries verified", 3, out).counting("abc")) == ["a", "b", "c"]
    shown = out.getvalue()
    assert "\r\x1b[Kentries verified: 1/3 (33 %)" in shown  # the first is drawn at once
    assert shown.endswith("\r\x1b[K")


def test_a_pipe_or_file_sees_nothing() -> None:
    out = io.StringIO()
    progress = Progress("entries fetched", 2, out)
    progress.advance(2)
    progress.finish()
    assert out.getvalue() == ""


def test_nothing_to_count_is_all_done() -> None:
    out = Terminal()
    progress = Progress("entries checked", 0, out)
    progress.advance(0)
    assert "entries checked: 0/0 (100 %)" in out.getvalue()
