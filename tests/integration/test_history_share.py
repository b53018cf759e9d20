"""Sharing earlier messages with the officer: off by default, and where the policy allows it,
only what the victim selects, re-sealed by the victim's own client and logged."""

from __future__ import annotations

import json

import pytest

from bridge.client import Refused
from harness import Bridge, policy_text, query, state_is


async def join_after(bridge: Bridge, victim, counsellor, officer) -> None:  # type: ignore[no-untyped-def]
    await counsellor.propose(victim.conversation_id)
    await victim.next_event("consent.prompt")
    await victim.grant()
    invite = await officer.next_event("invite")
    await officer.accept(invite["invite_id"])
    await victim.next_event("bridge.state", where=state_is("joined"))


@pytest.mark.policy(policy_text(victim_may_share=True))
async def test_victim_shares_selected_earlier_messages(bridge: Bridge) -> None:
    officer = await bridge.officer()
    victim = await bridge.victim()
    counsellor = await bridge.counsellor()
    await counsellor.join(victim.conversation_id)
    cid = victim.conversation_id
    chosen = await victim.send("Dit mag de politie ook lezen.")
    kept = await victim.send("Dit niet.")
    await join_after(bridge, victim, counsellor, officer)

    assert await victim.share_history([chosen]) == 1
    history = await officer.history(cid)
    assert [(m.seq, m.text) for m in history] == [(chosen, "Dit mag de politie ook lezen.")]
    assert kept not in officer.conversations[cid].messages

    rows = query(bridge.data_dir, "SELECT entry FROM log_entries WHERE kind = 'history.shared'")
    assert [json.loads(entry)["seqs"] for (entry,) in rows] == [[chosen]]


async def test_sharing_history_is_forbidden_by_default(bridge: Bridge) -> None:
    officer = await bridge.officer()
    victim = await bridge.victim()
    counsellor = await bridge.counsellor()
    await counsellor.join(victim.conversation_id)
    earlier = await victim.send("Eerder bericht.")
    await join_after(bridge, victim, counsellor, officer)
    with pytest.raises(Refused) as info:
        await victim.share_history([earlier])
    assert info.value.code == "forbidden"
    assert await officer.history(victim.conversation_id) == []
