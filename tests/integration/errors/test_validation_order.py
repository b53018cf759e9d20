"""PROTOCOL.md, "Validation order": ``invalid``/``too_large``, then ``forbidden``/``not_found``,
then ``wrong_state``/``no_consent``, then ``bad_signature``/``bad_keys``, then ``conflict``."""

from __future__ import annotations

import uuid

from harness import (
    BOTH,
    CARE,
    LIMIT,
    ON_SHARED_WORLD,
    Bridge,
    World,
    chatting,
    flip_ciphertext_byte,
    joined,
    resigned,
    sized,
    state_is,
    with_keys,
)


@ON_SHARED_WORLD
async def test_invalid_comes_before_forbidden(chatting_world: World) -> None:
    world = chatting_world
    assert await world.refused(world.victim, "queue.list", {"all": True}) == "invalid"


@ON_SHARED_WORLD
async def test_too_large_comes_before_not_found(chatting_world: World) -> None:
    world = chatting_world
    envelope = sized(world.victim, world.cid, LIMIT + 1)
    envelope = resigned(world.victim, envelope, conversation_id=str(uuid.uuid4()))
    assert await world.refused_send(world.victim, envelope) == "too_large"


async def test_forbidden_comes_before_wrong_state(bridge: Bridge) -> None:
    world = await chatting(bridge)
    await world.victim.close()
    second = await bridge.counsellor("counsellor2")
    ref = {"conversation_id": world.cid, "purpose": "report"}
    assert await world.refused(second, "bridge.propose", ref) == "forbidden"


async def test_wrong_state_comes_before_bad_signature_and_bad_keys(bridge: Bridge) -> None:
    world = await joined(bridge)
    await world.victim.pause()
    await world.counsellor.next_event("bridge.state", where=state_is("paused"))
    envelope = world.victim.build("x", audience=BOTH)
    envelope = {**envelope, "keys": with_keys(envelope, investigation=...)}  # unsigned change
    assert await world.refused_send(world.victim, envelope) == "wrong_state"


async def test_bad_signature_comes_before_conflict(bridge: Bridge) -> None:
    world = await chatting(bridge)
    first = world.victim.build("Eerste.", audience=CARE)
    await world.victim.post(first)
    other = world.victim.build("Ander.", audience=CARE, client_msg_id=first["client_msg_id"])
    other = flip_ciphertext_byte(other)
    assert await world.refused_send(world.victim, other) == "bad_signature"
