from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Bridge, backend, running


@pytest.fixture(scope="session", autouse=True)
def database_backend() -> Iterator[None]:
    """The run's database server, when it runs on PostgreSQL (harness.backend)."""
    backend.start_backend()
    yield
    backend.stop_backend()


@pytest.fixture
async def bridge(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Bridge]:
    """A running bridge with org keys, two counsellors, two officers and an auditor.

    A test marked ``@pytest.mark.policy(text)`` runs with that policy file, one marked
    ``@pytest.mark.settings(name=value, ...)`` with those settings.
    """
    policy = request.node.get_closest_marker("policy")
    settings = request.node.get_closest_marker("settings")
    async with running(
        tmp_path / "data", policy.args[0] if policy else None, settings.kwargs if settings else None
    ) as server:
        yield server
