"""``bad_keys``: an envelope whose sealed keys are not exactly those the audience requires;
nothing changes (DESIGN, "End-to-end encryption": no more, no fewer)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bridge import crypto
from harness import (
    BOTH,
    CARE,
    JSON,
    ON_SHARED_WORLD,
    World,
    resigned,
    with_keys,
)

BAD_KEYS: dict[str, tuple[list[str], Callable[[JSON], JSON]]] = {
    "missing investigation key": (BOTH, lambda e: with_keys(e, investigation=...)),
    "missing care key": (BOTH, lambda e: with_keys(e, care=...)),
    "missing victim key": (CARE, lambda e: with_keys(e, victim=...)),
    "no keys": (CARE, lambda e: {}),
    "extra investigation key": (CARE, lambda e: with_keys(e, investigation=e["keys"]["care"])),
    "sealed key one byte short": (
        CARE,
        lambda e: with_keys(e, care=crypto.b64u_encode(crypto.b64u_decode(e["keys"]["care"])[:-1])),
    ),
    "sealed key one byte long": (
        BOTH,
        lambda e: with_keys(
            e, investigation=crypto.b64u_encode(crypto.b64u_decode(e["keys"]["care"]) + b"\0")
        ),
    ),
    "raw key instead of a sealed one": (
        CARE,
        lambda e: with_keys(e, victim=crypto.b64u_encode(bytes(32))),
    ),
}


@ON_SHARED_WORLD
@pytest.mark.parametrize("case", list(BAD_KEYS))
async def test_keys_not_exactly_those_of_the_audience_are_bad_keys_and_change_nothing(
    joined_world: World, case: str
) -> None:
    world = joined_world
    audience, change = BAD_KEYS[case]
    envelope = world.victim.build("x", audience=audience)
    envelope = resigned(world.victim, envelope, keys=change(envelope))
    assert await world.refused_send(world.victim, envelope) == "bad_keys"
