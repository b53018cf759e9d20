"""The ``queue`` event (PROTOCOL.md, server events): every counsellor socket is told how many
conversations wait once a conversation was started, picked up or closed, with a count read after
the change; a burst of changes may share one event, and the last one told is the count after all
of them."""

from __future__ import annotations

import asyncio

import pytest

from harness import Bridge


async def test_counsellors_are_told_the_count_after_a_start_a_pick_up_and_a_close(
    bridge: Bridge,
) -> None:
    counsellor = await bridge.counsellor()
    other = await bridge.counsellor("counsellor2")
    first = await bridge.victim()
    for told in (counsellor, other):
        assert (await told.next_event("queue"))["waiting"] == 1
    second = await bridge.victim()
    assert (await other.next_event("queue"))["waiting"] == 2
    await counsellor.join(first.conversation_id)
    assert (await other.next_event("queue"))["waiting"] == 1
    await second.close()
    assert (await other.next_event("queue"))["waiting"] == 0


@pytest.mark.settings(conversations_per_minute=100)
async def test_a_burst_of_new_conversations_ends_on_the_count_after_the_last(
    bridge: Bridge,
) -> None:
    counsellor = await bridge.counsellor()
    await asyncio.gather(*(bridge.victim() for _ in range(8)))
    await counsellor.next_event("queue", where=lambda e: e["waiting"] == 8)
    assert await counsellor.queue() != []  # a round trip: a later event would be in by now
    told = [e["waiting"] for name, e in counsellor.received if name == "queue"]
    assert told[-1] == 8
    assert told == sorted(told)
    assert len(told) <= 8
