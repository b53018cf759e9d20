"""Worlds shared by the refusals of one module (``chatting_world``, ``proposed_world``,
``joined_world``, ``closed_world``).

A refused event changes nothing, and every test here asserts it (``World.unchanged``), so the
next test finds the world exactly as the first did: the world is built once per module, on a
bridge of its own (a second world on the same bridge would send the first one's counsellor queue
events in the middle of a comparison), and with no periodic checkpoint, which would add a log
entry mid-comparison. A test that uses one is marked ``ON_SHARED_WORLD``; a test that changes its
world, or adds a party to it, builds its own on the ``bridge`` fixture instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from harness import Bridge, World, chatting, closed, joined, proposed, running


def shared(build: Callable[[Bridge], Awaitable[World]]) -> Any:
    """A module-scoped fixture: the world ``build`` makes, on a bridge of its own."""

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
        data_dir = tmp_path_factory.mktemp("world") / "data"
        async with running(data_dir, overrides={"checkpoint_seconds": 86400.0}) as bridge:
            yield await build(bridge)

    return world


chatting_world = shared(chatting)
joined_world = shared(joined)
closed_world = shared(closed)
proposed_world = shared(proposed)
