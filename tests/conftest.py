from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Bridge


async def started(
    tmp_path: Path, policy: str | None = None, overrides: dict[str, Any] | None = None
) -> Bridge:
    bridge = Bridge(tmp_path / "data", policy=policy, overrides=overrides or {})
    await bridge.start()
    await bridge.init_orgs()
    await bridge.add_user("counsellor", "counsellor", "fier")
    await bridge.add_user("counsellor2", "counsellor", "fier")
    await bridge.add_user("officer", "officer", "avim", region="Noord-Holland", gender="female")
    await bridge.add_user("officer2", "officer", "avim", region="Limburg", gender="male")
    await bridge.add_user("auditor", "auditor", "audit")
    return bridge


@pytest.fixture
async def bridge(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Bridge]:
    """A running bridge with org keys, two counsellors, two officers and an auditor.

    A test marked ``@pytest.mark.policy(text)`` runs with that policy file, one marked
    ``@pytest.mark.settings(name=value, ...)`` with those settings.
    """
    policy = request.node.get_closest_marker("policy")
    settings = request.node.get_closest_marker("settings")
    server = await started(
        tmp_path, policy.args[0] if policy else None, settings.kwargs if settings else None
    )
    try:
        yield server
    finally:
        await server.close_clients()
        await server.stop()
