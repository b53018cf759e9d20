"""The whole driegesprek over a real socket: consent, join, messages by audience, the end."""

from __future__ import annotations

from harness import Bridge, driegesprek, picked_up, state_is


async def test_happy_path_messages_reach_exactly_their_readers(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id

    seq_v = await victim.send("Ik wil praten.")
    seq_c = await counsellor.send(cid, "Welkom. Je kunt altijd stoppen.")
    seq_o = await officer.send(cid, "Hallo, ik ben van AVIM.")
    seq_care = await victim.send("Dit is alleen voor mijn hulpverlener.", care_only=True)

    for seq, text in [
        (seq_v, "Ik wil praten."),
        (seq_c, "Welkom. Je kunt altijd stoppen."),
        (seq_o, "Hallo, ik ben van AVIM."),
    ]:
        for party in (victim, counsellor, officer):
            event = await party.next_event("message", where=lambda e, s=seq: e["seq"] == s)
            assert event["verified"] is True
            assert event["text"] == text
    for party in (victim, counsellor):
        event = await party.next_event("message", where=lambda e: e["seq"] == seq_care)
        assert event["text"] == "Dit is alleen voor mijn hulpverlener."
    assert seq_care not in officer.conversations[cid].messages

    officer_history = await officer.history(cid)
    assert [m.seq for m in officer_history] == [seq_v, seq_c, seq_o]
    assert all(m.text is not None for m in officer_history)
    victim_history = await victim.history()
    assert [m.seq for m in victim_history] == [seq_v, seq_c, seq_o, seq_care]


async def test_decline_keeps_the_officer_out(bridge: Bridge) -> None:
    officer = await bridge.officer()
    victim, counsellor = await picked_up(bridge)
    await counsellor.propose(victim.conversation_id, "report")
    prompt = await victim.next_event("consent.prompt")
    assert prompt["purpose"] == "report"
    assert "aangifte" in prompt["text"]["body"]
    await victim.decline()
    state = await counsellor.next_event("bridge.state", where=state_is("declined"))
    assert state["notice"]
    assert await officer.invites() == []
