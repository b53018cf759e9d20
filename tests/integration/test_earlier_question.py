"""An answer to a question that is no longer the one in force (the conversation has a newer
one) is ``wrong_state`` and changes nothing; the question in force can still be answered."""

from __future__ import annotations

from harness import Bridge, grant_payload, proposed, state_is


async def test_an_answer_to_an_earlier_question_is_wrong_state_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await proposed(bridge)
    earlier = await grant_payload(world.victim)
    await world.victim.decline()
    await world.counsellor.next_event("bridge.state", where=state_is("declined"))
    await world.counsellor.propose(world.cid, "report")
    await world.victim.next_event("consent.prompt", where=lambda e: e["purpose"] == "report")

    assert await world.refused(world.victim, "consent.grant", earlier) == "wrong_state"
    request = {"request_id": earlier["request_id"]}
    assert await world.refused(world.victim, "consent.decline", request) == "wrong_state"
    await world.victim.grant()
    await world.counsellor.next_event("bridge.state", where=state_is("granted"))
