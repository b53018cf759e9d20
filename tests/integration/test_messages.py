"""Message delivery: idempotent resends, conflicts, and the per-socket rate limit."""

from __future__ import annotations

import pytest

from bridge.client import Refused
from harness import Bridge, picked_up


async def test_resending_the_same_envelope_returns_the_same_seq(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    envelope = victim.build("Kom je terug?", audience=["care"])
    first = await victim.post(envelope)
    await counsellor.next_event("message", where=lambda e: e["seq"] == first)
    again = await victim.resend(str(envelope["client_msg_id"]))
    assert again == first
    history = await victim.history()
    assert [m.seq for m in history] == [first]
    later = await victim.send("Nog een bericht.")
    assert later == first + 1
    # The resend was not delivered a second time.
    seen = await counsellor.next_event("message", where=lambda e: e["seq"] != first)
    assert seen["seq"] == later


async def test_a_resend_after_the_conversation_closed_still_answers_its_seq(
    bridge: Bridge,
) -> None:
    # The ack of the last message was lost, and the counsellor closed the chat meanwhile: the
    # resend learns its seq; a message never stored is refused as the closing demands.
    victim, counsellor = await picked_up(bridge)
    envelope = victim.build("Dank je wel.", audience=["care"])
    seq = await victim.post(envelope)
    await counsellor.close(victim.conversation_id)
    assert await victim.resend(str(envelope["client_msg_id"])) == seq
    with pytest.raises(Refused) as info:
        await victim.send("Nog iets.")
    assert info.value.code == "wrong_state"
    assert [m.seq for m in await victim.history()] == [seq]


async def test_same_client_msg_id_with_other_content_is_a_conflict(bridge: Bridge) -> None:
    victim, _ = await picked_up(bridge)
    envelope = victim.build("Eerste versie.", audience=["care"])
    seq = await victim.post(envelope)
    other = victim.build(
        "Andere versie.", audience=["care"], client_msg_id=str(envelope["client_msg_id"])
    )
    with pytest.raises(Refused) as info:
        await victim.post(other)
    assert info.value.code == "conflict"
    history = await victim.history()
    assert [(m.seq, m.text) for m in history] == [(seq, "Eerste versie.")]


# Practically no refill: the fourth message is refused however slow the machine is.
@pytest.mark.settings(message_rate=0.001, message_burst=3)
async def test_a_flood_of_messages_is_rate_limited_and_not_stored(bridge: Bridge) -> None:
    victim, _ = await picked_up(bridge)
    accepted = [await victim.send(f"bericht {n}") for n in range(3)]
    with pytest.raises(Refused) as info:
        await victim.send("te veel")
    assert info.value.code == "rate_limited"
    assert [m.seq for m in await victim.history()] == accepted
