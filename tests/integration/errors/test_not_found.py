"""``not_found``: an unknown conversation, request, invite or HTTP resource; nothing changes."""

from __future__ import annotations

import uuid

import pytest

from harness import (
    CARE,
    ON_SHARED_WORLD,
    Bridge,
    World,
    grant_payload,
    granted_world,
    http,
    http_error,
    resigned,
)


@ON_SHARED_WORLD
async def test_unknown_conversation_is_not_found_and_changes_nothing(joined_world: World) -> None:
    world = joined_world
    assert world.officer is not None
    nowhere = {"conversation_id": str(uuid.uuid4())}
    c = world.counsellor
    assert await world.refused(c, "conversation.join", nowhere) == "not_found"
    assert await world.refused(c, "history.fetch", {**nowhere, "after_seq": 0}) == "not_found"
    assert await world.refused(c, "bridge.propose", {**nowhere, "purpose": "report"}) == "not_found"
    assert await world.refused(world.victim, "bridge.pause", nowhere) == "not_found"
    assert await world.refused(world.officer, "bridge.end", nowhere) == "not_found"
    envelope = resigned(c, c.build("x", audience=CARE, conversation_id=world.cid), **nowhere)
    assert await world.refused_send(c, envelope) == "not_found"


@ON_SHARED_WORLD
async def test_unknown_request_is_not_found_and_changes_nothing(proposed_world: World) -> None:
    world = proposed_world
    nothing = str(uuid.uuid4())
    assert await world.refused(world.victim, "consent.decline", {"request_id": nothing}) == (
        "not_found"
    )
    payload = await grant_payload(world.victim, request_id=nothing)
    assert await world.refused(world.victim, "consent.grant", payload) == "not_found"


async def test_unknown_invite_is_not_found_and_changes_nothing(bridge: Bridge) -> None:
    officer = await bridge.officer()
    world = await granted_world(bridge)
    await officer.next_event("invite")
    world.extra.append((officer, world.cid))
    nothing = {"invite_id": str(uuid.uuid4())}
    assert await world.refused(officer, "invite.accept", nothing) == "not_found"


@ON_SHARED_WORLD
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orgs/police/key",
        "/api/v1/orgs/FIER/key",
        "/api/v1/consent-texts/arrest?lang=nl",
        "/api/v1/nothing",
    ],
)
async def test_unknown_http_resource_is_404_not_found_and_changes_nothing(
    chatting_world: World, path: str
) -> None:
    world = chatting_world
    bridge = world.bridge
    http_error(await world.unchanged(lambda: http(bridge, "GET", path)), 404, "not_found")
