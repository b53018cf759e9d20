from __future__ import annotations

import pytest
from adversary import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many generated cases the adversarial suites ran (visible without ``-s``)."""
    if TALLY:
        cases = ", ".join(f"{count} {kind}" for kind, count in sorted(TALLY.items()))
        terminalreporter.write_line(f"adversarial: {cases}")
