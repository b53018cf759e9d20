"""``wrong_state``: an event the conversation's or the bridge's state does not allow; nothing
changes.

PROTOCOL.md, "Details every client relies on": a staff event before ``device.register``, a propose
while a bridge is in force, a resume when not paused (or during a ``counsellor_away`` pause), the
investigation audience while paused, a second answer to the same question, any change to a closed
conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bridge.client import BridgeClient, CounsellorClient, OfficerClient
from harness import (
    BOTH,
    CARE,
    JSON,
    ON_SHARED_WORLD,
    Bridge,
    World,
    chatting,
    grant_payload,
    granted_world,
    joined,
    proposed,
    shared_world,
    state_is,
    unregistered,
)


@pytest.mark.parametrize(
    ("role", "event", "payload"),
    [
        ("counsellor", "queue.list", {}),
        ("counsellor", "conversation.join", {}),
        ("counsellor", "history.fetch", {"after_seq": 0}),
        ("officer", "invite.list", {}),
    ],
)
async def test_staff_event_before_device_register_is_wrong_state_and_changes_nothing(
    bridge: Bridge, role: str, event: str, payload: JSON
) -> None:
    victim = await bridge.victim()  # waiting: a join would pick it up
    await victim.send("Is daar iemand?")
    counsellor = await bridge.counsellor()  # registered, but never joins
    world = World(bridge, victim, counsellor)
    cls, name = (
        (CounsellorClient, "counsellor2") if role == "counsellor" else (OfficerClient, "officer")
    )
    client = await unregistered(bridge, cls, name)
    world.extra.append((client, world.cid))
    if event != "queue.list" and event != "invite.list":
        payload = {"conversation_id": world.cid, **payload}
    assert await world.refused(client, event, payload) == "wrong_state"


@pytest.mark.parametrize("scenario", ["proposed", "granted", "joined"])
async def test_propose_while_a_bridge_is_in_force_is_wrong_state_and_changes_nothing(
    bridge: Bridge, scenario: str
) -> None:
    if scenario == "proposed":
        world = await proposed(bridge)
    elif scenario == "granted":
        world = await granted_world(bridge)
    else:
        world = await joined(bridge)
    payload = {"conversation_id": world.cid, "purpose": "report"}
    assert await world.refused(world.counsellor, "bridge.propose", payload) == "wrong_state"


@pytest.mark.parametrize("scenario", ["no bridge", "proposed", "joined"])
@pytest.mark.parametrize("who", ["victim", "counsellor"])
async def test_resume_when_not_paused_is_wrong_state_and_changes_nothing(
    bridge: Bridge, scenario: str, who: str
) -> None:
    world = await {"no bridge": chatting, "proposed": proposed, "joined": joined}[scenario](bridge)
    client: BridgeClient = getattr(world, who)
    assert await world.refused(client, "bridge.resume", {"conversation_id": world.cid}) == (
        "wrong_state"
    )


@dataclass
class Connected(World):
    """A world whose counsellor has dropped out: only the connected parties are readers."""

    @property
    def readers(self) -> list[tuple[BridgeClient, str]]:
        return [r for r in super().readers if r[0] is not self.counsellor]


async def test_resume_during_a_counsellor_away_pause_is_wrong_state_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await joined(bridge)
    assert world.officer is not None
    await world.counsellor.disconnect()
    for party in (world.victim, world.officer):
        await party.next_event(
            "bridge.state",
            where=state_is("paused", "counsellor_away"),
        )
    away = Connected(bridge, world.victim, world.counsellor, world.officer)
    ref = {"conversation_id": world.cid}
    assert await away.refused(world.victim, "bridge.resume", ref) == "wrong_state"


async def paused(bridge: Bridge) -> World:
    """The driegesprek, paused by the victim; counsellor and officer have been told."""
    world = await joined(bridge)
    await world.victim.pause()
    assert world.officer is not None
    for party in (world.counsellor, world.officer):
        await party.next_event("bridge.state", where=state_is("paused"))
    return world


paused_world = shared_world(paused)


@ON_SHARED_WORLD
@pytest.mark.parametrize("sender", ["victim", "counsellor", "officer"])
async def test_investigation_audience_while_paused_is_wrong_state_and_changes_nothing(
    paused_world: World, sender: str
) -> None:
    world = paused_world
    client: BridgeClient = getattr(world, sender)
    envelope = client.build("x", audience=BOTH, conversation_id=world.cid, epoch_id=world.epoch_id)
    assert await world.refused_send(client, envelope) == "wrong_state"


async def test_grant_after_decline_is_wrong_state_and_changes_nothing(bridge: Bridge) -> None:
    world = await proposed(bridge)
    payload = await grant_payload(world.victim)
    await world.victim.decline()
    await world.counsellor.next_event("bridge.state", where=state_is("declined"))
    assert await world.refused(world.victim, "consent.grant", payload) == "wrong_state"
    request = {"request_id": payload["request_id"]}
    assert await world.refused(world.victim, "consent.decline", request) == "wrong_state"


async def test_grant_twice_is_wrong_state_and_changes_nothing(bridge: Bridge) -> None:
    world = await granted_world(bridge)
    payload = await grant_payload(world.victim)
    assert await world.refused(world.victim, "consent.grant", payload) == "wrong_state"


CLOSED: dict[str, Callable[[World], tuple[BridgeClient, str, JSON]]] = {
    "victim message": lambda w: (
        w.victim,
        "message.send",
        {"envelope": w.victim.build("x", audience=CARE)},
    ),
    "counsellor message": lambda w: (
        w.counsellor,
        "message.send",
        {"envelope": w.counsellor.build("x", audience=CARE, conversation_id=w.cid)},
    ),
    "propose": lambda w: (
        w.counsellor,
        "bridge.propose",
        {"conversation_id": w.cid, "purpose": "report"},
    ),
    "pause": lambda w: (w.victim, "bridge.pause", {"conversation_id": w.cid}),
    "close again": lambda w: (w.victim, "conversation.close", {"conversation_id": w.cid}),
    "counsellor join": lambda w: (w.counsellor, "conversation.join", {"conversation_id": w.cid}),
    "victim join": lambda w: (w.victim, "conversation.join", {"conversation_id": w.cid}),
}


@ON_SHARED_WORLD
@pytest.mark.parametrize("case", list(CLOSED))
async def test_event_on_a_closed_conversation_is_wrong_state_and_changes_nothing(
    closed_world: World, case: str
) -> None:
    client, event, payload = CLOSED[case](closed_world)
    assert await closed_world.refused(client, event, payload) == "wrong_state"
