"""``no_consent``: the investigation scope without a grant in force; nothing changes.

PROTOCOL.md: before a grant, after a decline and after a withdrawal the investigation audience is
refused, and a removed officer gets ``no_consent`` for every event until a new grant.
"""

from __future__ import annotations

import uuid

import pytest

from bridge.client import BridgeClient
from harness import (
    BOTH,
    JSON,
    ON_SHARED_WORLD,
    Bridge,
    World,
    chatting,
    forged,
    joined,
    proposed,
    shared_world,
    state_is,
)


@pytest.mark.parametrize("scenario", ["no bridge", "proposed", "declined"])
@pytest.mark.parametrize("sender", ["victim", "counsellor"])
async def test_investigation_audience_without_consent_is_no_consent_and_changes_nothing(
    bridge: Bridge, scenario: str, sender: str
) -> None:
    world = await (chatting if scenario == "no bridge" else proposed)(bridge)
    if scenario == "declined":
        await world.victim.decline()
        await world.counsellor.next_event("bridge.state", where=state_is("declined"))
    client: BridgeClient = getattr(world, sender)
    envelope = forged(client, world.victim, BOTH, epoch_id=str(uuid.uuid4()))
    assert await world.refused_send(client, envelope) == "no_consent"


async def withdrawn(bridge: Bridge) -> tuple[World, JSON]:
    """A driegesprek whose consent the victim withdrew; also an envelope the officer built
    beforehand, under the epoch it joined."""
    world = await joined(bridge)
    assert world.officer is not None
    before = world.officer.build("x", audience=BOTH, conversation_id=world.cid)
    await world.victim.withdraw()
    for party in (world.counsellor, world.officer):
        await party.next_event("bridge.state", where=state_is("ended"))
    return world, before


after_withdrawal = shared_world(withdrawn)


@ON_SHARED_WORLD
@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("history.fetch", {"after_seq": 0}),
        ("bridge.end", {}),
        ("conversation.join", {}),
    ],
)
async def test_officer_event_after_withdrawal_is_no_consent_and_changes_nothing(
    after_withdrawal: tuple[World, JSON], event: str, payload: JSON
) -> None:
    world, _ = after_withdrawal
    assert world.officer is not None
    ref = {"conversation_id": world.cid, **payload}
    assert await world.refused(world.officer, event, ref) == "no_consent"


@ON_SHARED_WORLD
@pytest.mark.parametrize("built", ["before", "after"])
async def test_officer_message_after_withdrawal_is_no_consent_and_changes_nothing(
    after_withdrawal: tuple[World, JSON], built: str
) -> None:
    world, before = after_withdrawal
    officer = world.officer
    assert officer is not None
    envelope = (
        before
        if built == "before"
        else officer.build(
            "x", audience=BOTH, conversation_id=world.cid, epoch_id=before["epoch_id"]
        )
    )
    assert await world.refused_send(officer, envelope) == "no_consent"


@ON_SHARED_WORLD
@pytest.mark.parametrize("sender", ["victim", "counsellor"])
async def test_investigation_audience_after_withdrawal_is_no_consent_and_changes_nothing(
    after_withdrawal: tuple[World, JSON], sender: str
) -> None:
    world, before = after_withdrawal
    client: BridgeClient = getattr(world, sender)
    envelope = client.build(
        "x", audience=BOTH, conversation_id=world.cid, epoch_id=before["epoch_id"]
    )
    assert await world.refused_send(client, envelope) == "no_consent"
