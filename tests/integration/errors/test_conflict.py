"""``conflict``: the same ``client_msg_id`` with other content; nothing changes."""

from __future__ import annotations

from harness import (
    CARE,
    Bridge,
    chatting,
)


async def test_same_client_msg_id_with_another_envelope_is_conflict_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await chatting(bridge)
    victim = world.victim
    first = victim.build("Eerste versie.", audience=CARE)
    seq = await victim.post(first)
    # An identical resend is not a conflict: the same seq, nothing new.
    assert await world.unchanged(lambda: victim.post(first)) == seq
    second = victim.build("Tweede versie.", audience=CARE, client_msg_id=first["client_msg_id"])
    assert await world.refused_send(victim, second) == "conflict"
    by_counsellor = world.counsellor.build(
        "Ook anders.",
        audience=CARE,
        conversation_id=world.cid,
        client_msg_id=first["client_msg_id"],
    )
    assert await world.refused_send(world.counsellor, by_counsellor) == "conflict"
