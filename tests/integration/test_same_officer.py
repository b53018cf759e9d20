"""``same_officer`` (PROTOCOL.md, "Preferences"), end to end: the officer of the conversation's
last bridge is invited alone while on duty, else every matching officer is; an officer coming on
duty is shown an invite only if it is among those."""

from __future__ import annotations

from bridge.client import OfficerClient, VictimClient
from harness import Bridge, driegesprek, state_is

SAME = {"same_officer": True}


async def _ended_then_granted_again(
    bridge: Bridge, officer_stays: bool
) -> tuple[VictimClient, OfficerClient]:
    """A driegesprek whose victim withdrew and then granted a new bridge asking for the same
    officer (who went off duty first unless ``officer_stays``)."""
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await victim.withdraw()
    await officer.next_event("bridge.state", where=state_is("ended"))
    if not officer_stays:
        await officer.aclose()
    await counsellor.propose(cid, preferences=SAME)
    await victim.next_event("consent.prompt", where=lambda e: e["preferences"] == SAME)
    await victim.grant()
    return victim, officer


async def test_the_previous_officer_on_duty_is_invited_alone(bridge: Bridge) -> None:
    other = await bridge.officer("officer2")
    victim, officer = await _ended_then_granted_again(bridge, officer_stays=True)
    invite = await officer.next_event("invite")
    assert invite["preferences"] == SAME
    assert await other.invites() == []
    await officer.accept(invite["invite_id"])
    await victim.next_event("bridge.state", where=state_is("joined"))


async def test_an_officer_coming_on_duty_is_shown_it_while_the_previous_one_is_away(
    bridge: Bridge,
) -> None:
    await _ended_then_granted_again(bridge, officer_stays=False)
    other = await bridge.officer("officer2")
    invite = await other.next_event("invite")
    assert invite["preferences"] == SAME
    back = await bridge.officer("officer")
    assert (await back.next_event("invite"))["invite_id"] == invite["invite_id"]
    assert await other.invites() == []  # the previous officer is on duty again
