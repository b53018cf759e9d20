"""``too_large``: an envelope over 16 KiB of compact JSON, an HTTP body over 64 KiB; nothing
changes."""

from __future__ import annotations

import json

from bridge import crypto
from harness import (
    LIMIT,
    ON_SHARED_WORLD,
    Bridge,
    World,
    chatting,
    http,
    http_error,
    sized,
)


@ON_SHARED_WORLD
async def test_envelope_over_16_kib_is_too_large_and_changes_nothing(joined_world: World) -> None:
    world = joined_world
    envelope = sized(world.victim, world.cid, LIMIT + 1)
    assert LIMIT < crypto.compact_json_size(envelope) <= LIMIT + 4
    assert await world.refused_send(world.victim, envelope) == "too_large"
    huge = sized(world.counsellor, world.cid, 2 * LIMIT)
    assert await world.refused_send(world.counsellor, huge) == "too_large"


async def test_envelope_limit_is_measured_on_compact_json(bridge: Bridge) -> None:
    world = await chatting(bridge)
    envelope = sized(world.victim, world.cid, LIMIT - 16)
    assert crypto.compact_json_size(envelope) <= LIMIT
    assert len(json.dumps(envelope).encode()) > LIMIT  # with spaces it would be too large
    assert await world.victim.post(envelope) > 0


@ON_SHARED_WORLD
async def test_http_body_over_64_kib_is_413_too_large_and_changes_nothing(
    chatting_world: World,
) -> None:
    world = chatting_world
    bridge = world.bridge
    data = json.dumps({"lang": "nl", "padding": "a" * (64 * 1024)}).encode()
    answer = await world.unchanged(lambda: http(bridge, "POST", "/api/v1/conversations", data=data))
    http_error(answer, 413, "too_large")
