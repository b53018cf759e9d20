"""Every path of the consent state machine, driven over a real socket."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest

from bridge.client import Refused
from harness import Bridge, driegesprek, granted, picked_up, policy_text, state_is


async def expect_code(code: str, call: Awaitable[object]) -> None:
    with pytest.raises(Refused) as info:
        await call
    assert info.value.code == code


@pytest.mark.policy(policy_text(prompt_expiry_seconds=1))
async def test_unanswered_question_expires_and_both_are_told(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    await counsellor.propose(victim.conversation_id)
    await victim.next_event("consent.prompt")
    told_victim = await victim.next_event("bridge.state", where=state_is("expired", "no_answer"))
    told_counsellor = await counsellor.next_event("bridge.state", where=state_is("expired"))
    assert told_victim["notice"] and told_counsellor["notice"]
    assert told_victim["notice"] != told_counsellor["notice"]
    await expect_code("wrong_state", victim.grant())


@pytest.mark.policy(policy_text(invite_expiry_seconds=1))
async def test_no_officer_in_time_is_told_plainly(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    await counsellor.propose(victim.conversation_id)
    await victim.next_event("consent.prompt")
    await victim.grant()
    waiting = await victim.next_event("bridge.state", where=state_is("granted"))
    assert "{until}" not in waiting["notice"]
    expired = await victim.next_event("bridge.state", where=state_is("expired", "no_officer"))
    staff = await counsellor.next_event("bridge.state", where=state_is("expired", "no_officer"))
    assert expired["notice"] and staff["notice"]
    officer = await bridge.officer()
    assert await officer.invites() == []
    await expect_code(
        "no_consent", victim.send_envelope("nog iemand?", audience=["care", "investigation"])
    )


async def test_pause_refuses_the_investigation_audience_until_resumed(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await victim.pause()
    paused = await officer.next_event("bridge.state", where=state_is("paused", "victim"))
    assert paused["notice"]
    await expect_code("wrong_state", officer.send(cid, "Mag ik iets vragen?"))
    await expect_code(
        "wrong_state",
        counsellor.send_envelope("x", audience=["care", "investigation"], conversation_id=cid),
    )
    care_only = await victim.send("Even alleen met jou.")
    await counsellor.next_event("message", where=lambda e: e["seq"] == care_only)
    # The victim's pause is the victim's to lift.
    await expect_code("forbidden", counsellor.resume(cid))
    await victim.resume()
    await officer.next_event("bridge.state", where=state_is("joined"))
    seq = await officer.send(cid, "Dank je, ik lees weer mee.")
    await victim.next_event("message", where=lambda e: e["seq"] == seq)
    assert care_only not in officer.conversations[cid].messages


async def test_counsellor_can_pause_and_resume(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await counsellor.pause(cid)
    await victim.next_event("bridge.state", where=state_is("paused", "counsellor"))
    await counsellor.resume(cid)
    await officer.next_event("bridge.state", where=state_is("joined"))


async def test_withdraw_removes_the_officer_at_once(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    before = await officer.send(cid, "Voor het stoppen.")
    await victim.withdraw()
    ended = await officer.next_event("bridge.state", where=state_is("ended", "withdrawn"))
    assert ended["notice"]
    removed = await victim.next_event("participant", where=lambda e: e["event"] == "removed")
    assert removed["participant"]["role"] == "officer"
    await expect_code("no_consent", officer.send(cid, "Ben je er nog?"))
    await expect_code("no_consent", officer.history(cid))
    await expect_code("no_consent", officer.rejoin(cid))
    await expect_code("no_consent", officer.end(cid))
    after = await victim.send("Dit hoort de politie niet meer.")
    await counsellor.next_event("message", where=lambda e: e["seq"] == after)
    await expect_code("no_consent", victim.send_envelope("x", audience=["care", "investigation"]))
    assert after not in officer.conversations[cid].messages
    assert before in officer.conversations[cid].messages


async def test_counsellor_ends_the_police_part(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await counsellor.end(cid)
    await officer.next_event("bridge.state", where=state_is("ended", "counsellor"))
    await victim.next_event("bridge.state", where=state_is("ended", "counsellor"))
    await expect_code("no_consent", officer.send(cid, "Hallo?"))


async def test_officer_leaves(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await officer.end(cid)
    left = await victim.next_event("participant", where=lambda e: e["event"] == "left")
    assert left["participant"]["role"] == "officer"
    await counsellor.next_event("bridge.state", where=state_is("ended", "officer_left"))
    await expect_code("no_consent", officer.send(cid, "Toch nog iets."))


async def test_re_consent_makes_a_new_epoch_and_the_officer_reads_only_that(
    bridge: Bridge,
) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    first_epoch = victim.conversation.epoch["epoch_id"]
    old = await victim.send("Eerste gesprek met de politie.")
    await victim.withdraw()
    await officer.next_event("bridge.state", where=state_is("ended"))
    between = await victim.send("Tussen de gesprekken.")

    await counsellor.propose(cid, "report")
    await victim.next_event("consent.prompt", where=lambda e: e["purpose"] == "report")
    ack = await victim.grant()
    assert ack["epoch_id"] != first_epoch
    invite = await officer.next_event("invite")
    accepted = await officer.accept(invite["invite_id"])
    assert accepted["epoch"]["epoch_id"] == ack["epoch_id"]
    await victim.next_event("bridge.state", where=state_is("joined"))
    new = await victim.send("Tweede gesprek.")
    await officer.next_event("message", where=lambda e: e["seq"] == new)
    assert [m.seq for m in await officer.history(cid)] == [new]
    assert old not in [m.seq for m in await officer.history(cid)]
    assert between not in officer.conversations[cid].messages


async def test_counsellor_dropping_out_pauses_the_police_part(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await counsellor.disconnect()
    away = await officer.next_event("bridge.state", where=state_is("paused", "counsellor_away"))
    assert away["notice"]
    await victim.next_event("bridge.state", where=state_is("paused", "counsellor_away"))
    await expect_code("wrong_state", officer.send(cid, "Hallo?"))
    await expect_code("wrong_state", victim.resume())

    await counsellor.connect()
    await counsellor.register_device()
    await counsellor.join(cid)
    await officer.next_event("bridge.state", where=state_is("joined"))
    seq = await officer.send(cid, "De hulpverlener is terug.")
    await victim.next_event("message", where=lambda e: e["seq"] == seq)


async def test_officer_accepting_while_the_counsellor_is_away_starts_paused(
    bridge: Bridge,
) -> None:
    officer = await bridge.officer()
    victim, counsellor, _ = await granted(bridge)
    await counsellor.disconnect()
    invite = await officer.next_event("invite")
    await officer.accept(invite["invite_id"])
    await officer.next_event("bridge.state", where=state_is("paused", "counsellor_away"))
    await expect_code("wrong_state", officer.send(victim.conversation_id, "Hallo?"))


async def test_needs_note_goes_to_the_officer_before_it_joins(bridge: Bridge) -> None:
    officer = await bridge.officer()
    victim, counsellor, _ = await granted(bridge)
    cid = victim.conversation_id
    note = await counsellor.send(cid, "Eenvoudige taal, rustig tempo.", kind="needs_note")
    shown = await victim.next_event("message", where=lambda e: e["seq"] == note)
    assert shown["kind"] == "needs_note" and shown["text"] == "Eenvoudige taal, rustig tempo."
    invite = await officer.next_event("invite")
    await officer.accept(invite["invite_id"])
    history = await officer.history(cid)
    assert [(m.seq, m.kind, m.text) for m in history] == [
        (note, "needs_note", "Eenvoudige taal, rustig tempo.")
    ]


async def test_needs_note_is_refused_when_the_grant_does_not_allow_it(bridge: Bridge) -> None:
    victim, counsellor, _ = await granted(bridge, share_needs_note=False)
    await expect_code(
        "forbidden", counsellor.send(victim.conversation_id, "Eenvoudige taal.", kind="needs_note")
    )


async def test_invites_follow_region_and_gender(bridge: Bridge) -> None:
    noord_holland = await bridge.officer("officer")
    limburg = await bridge.officer("officer2")
    victim, counsellor = await picked_up(bridge)
    await counsellor.propose(victim.conversation_id, preferences={"region": "Limburg"})
    await victim.next_event("consent.prompt")
    await victim.grant()
    invite = await limburg.next_event("invite")
    assert await noord_holland.invites() == []
    await expect_code("forbidden", noord_holland.accept(invite["invite_id"]))
    await limburg.accept(invite["invite_id"])


async def test_gender_preference_is_a_hard_filter(bridge: Bridge) -> None:
    male = await bridge.officer("officer2")
    victim, counsellor = await picked_up(bridge)
    await counsellor.propose(victim.conversation_id, preferences={"officer_gender": "female"})
    await victim.next_event("consent.prompt")
    await victim.grant()
    await victim.next_event("bridge.state", where=state_is("granted"))
    assert await male.invites() == []
    female = await bridge.officer("officer")
    invite = await female.next_event("invite")
    assert invite["preferences"] == {"officer_gender": "female"}


async def test_victim_leaving_suddenly_pauses_the_police_part_until_the_victim_is_back(
    bridge: Bridge,
) -> None:
    """A quick exit (or a lost connection) is neither consent nor withdrawal: counsellor and
    officer are told, and the police part waits for the victim; her page coming back lifts it."""
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await victim.disconnect()
    left = await counsellor.next_event("participant", where=lambda e: e["event"] == "left")
    assert left["participant"]["role"] == "victim"
    paused = await officer.next_event("bridge.state", where=state_is("paused", "victim_away"))
    staff_notice = await counsellor.next_event(
        "bridge.state", where=state_is("paused", "victim_away")
    )
    assert paused["notice"] == staff_notice["notice"] and paused["notice"]
    await expect_code("wrong_state", officer.send(cid, "Ben je er nog?"))
    await expect_code("forbidden", counsellor.resume(cid))

    await victim.connect()
    await victim.join()
    assert victim.bridge is not None and victim.bridge["state"] == "joined"
    back = await counsellor.next_event("participant", where=lambda e: e["event"] == "joined")
    assert back["participant"]["role"] == "victim"
    resumed = await officer.next_event("bridge.state", where=state_is("joined", "victim_back"))
    assert resumed["notice"]
    seq = await officer.send(cid, "Fijn dat je er weer bent.")
    message = await victim.next_event("message", where=lambda e: e["seq"] == seq)
    assert message["text"] == "Fijn dat je er weer bent."


async def test_a_pause_the_victim_made_outlasts_her_leaving(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    await victim.pause()
    await officer.next_event("bridge.state", where=state_is("paused", "victim"))
    await victim.disconnect()
    await counsellor.next_event("participant", where=lambda e: e["event"] == "left")
    await victim.connect()
    await victim.join()
    assert victim.bridge is not None and victim.bridge["reason"] == "victim"
    await victim.resume()
    await officer.next_event("bridge.state", where=state_is("joined"))


async def test_victim_leaving_leaves_a_pending_question_unanswered(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    request_id = await counsellor.propose(victim.conversation_id)
    await victim.next_event("consent.prompt")
    await victim.disconnect()
    await counsellor.next_event("participant", where=lambda e: e["event"] == "left")
    await victim.connect()
    await victim.join()
    prompt = await victim.next_event("consent.prompt")
    assert prompt["request_id"] == request_id
    assert victim.bridge is not None and victim.bridge["state"] == "proposed"
