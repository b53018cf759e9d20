"""After a stop and start, conversations, messages, consent states and deadlines all hold."""

from __future__ import annotations

import pytest

from harness import Bridge, driegesprek, granted, picked_up, policy_text, state_is


@pytest.mark.policy(policy_text(invite_expiry_seconds=5))
async def test_everything_survives_a_restart_and_behaves(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    before = [await victim.send("Voor de herstart."), await officer.send(cid, "Ik lees mee.")]
    care_only = await victim.send("Alleen voor jou.", care_only=True)

    waiting_victim, waiting_counsellor = await picked_up(bridge)
    await waiting_counsellor.propose(waiting_victim.conversation_id)
    asked = await waiting_victim.next_event("consent.prompt")

    late_victim, _, _ = await granted(bridge)  # its invite is still open

    for client in bridge.clients:
        client.auto_reconnect = False  # this test brings each party back itself, in its order
    await bridge.restart()

    # The waiting question is asked again, and can be answered.
    await waiting_victim.reconnect()
    again = await waiting_victim.next_event("consent.prompt")
    assert again["request_id"] == asked["request_id"]
    assert again["text"]["sha256"] == asked["text"]["sha256"]
    await waiting_victim.grant()
    await waiting_victim.next_event("bridge.state", where=state_is("granted"))

    # The open invite still expires on time.
    await late_victim.reconnect()
    state = late_victim.conversation.bridge
    assert state is not None
    if state["state"] != "expired":
        state = await late_victim.next_event("bridge.state", timeout=10, where=state_is("expired"))
    assert state["reason"] == "no_officer"

    # The driegesprek waits for its counsellor, then goes on where it was.
    await victim.reconnect()
    assert victim.bridge is not None
    assert victim.bridge["state"] == "paused"
    assert victim.bridge["reason"] == "counsellor_away"
    await officer.reconnect()
    rejoined = await officer.rejoin(cid)
    assert rejoined["conversation"]["last_seq"] == care_only
    await counsellor.reconnect()
    await counsellor.join(cid)
    await officer.next_event("bridge.state", where=state_is("joined"))
    after = await officer.send(cid, "Na de herstart.")
    assert after == care_only + 1
    await victim.next_event("message", where=lambda e: e["seq"] == after)
    assert [m.seq for m in await officer.history(cid)] == [*before, after]
    history = await victim.history()
    assert [m.seq for m in history] == [*before, care_only, after]
    assert all(m.text is not None and m.verified for m in history)
