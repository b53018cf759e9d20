"""An officer removed from a conversation cannot come back through its still-open socket.

After a withdrawal, the counsellor ending the bridge, or the officer leaving, that officer's
socket stays connected (it is still on duty for other conversations) but gets ``no_consent`` for
the conversation, cannot replay its ``invite.accept`` or an envelope it signed earlier (the same
``client_msg_id`` or a new one), and is sent no further messages. Nothing it tries changes the
conversation, its messages or the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from bridge.client import CounsellorClient, OfficerClient, VictimClient
from bridge.edges.app import DB
from bridge.store.models import LogEntry, Message
from harness import Bridge, driegesprek, error_code, state_is

Remove = Callable[[VictimClient, CounsellorClient, OfficerClient], Awaitable[Any]]

REMOVALS: dict[str, Remove] = {
    "withdrawn": lambda v, c, o: v.withdraw(),
    "ended by the counsellor": lambda v, c, o: c.end(v.conversation_id),
    "left": lambda v, c, o: o.end(v.conversation_id),
}


async def _counts(bridge: Bridge) -> tuple[int, int]:
    async with bridge.app[DB].session() as session:
        messages = await session.scalar(select(func.count()).select_from(Message))
        entries = await session.scalar(select(func.count()).select_from(LogEntry))
    return int(messages or 0), int(entries or 0)


@pytest.mark.parametrize("how", list(REMOVALS))
async def test_a_removed_officer_cannot_come_back_through_its_open_socket(
    bridge: Bridge, how: str
) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    invite_id = next(e for n, e in officer.received if n == "invite")["invite_id"]
    earlier = officer.build("Ik lees mee.", audience=["care", "investigation"])
    first_seq = await officer.post(earlier)
    unsent = officer.build("Nog een vraag.", audience=["care", "investigation"])

    await REMOVALS[how](victim, counsellor, officer)
    await officer.next_event("bridge.state", where=state_is("ended"))
    await counsellor.next_event("bridge.state", where=state_is("ended"))
    before = await _counts(bridge)

    ref = {"conversation_id": cid}
    assert error_code(await officer.call_raw("message.send", {"envelope": earlier})) == "no_consent"
    assert error_code(await officer.call_raw("message.send", {"envelope": unsent})) == "no_consent"
    assert (
        error_code(await officer.call_raw("history.fetch", {**ref, "after_seq": 0})) == "no_consent"
    )
    assert error_code(await officer.call_raw("conversation.join", ref)) == "no_consent"
    # The invite was used once; the bridge it was for is over.
    assert (
        error_code(await officer.call_raw("invite.accept", {"invite_id": invite_id}))
        == "wrong_state"
    )
    assert error_code(await officer.call_raw("bridge.end", ref)) == "no_consent"
    assert await _counts(bridge) == before

    # Victim and counsellor go on; nothing of theirs reaches the officer any more.
    from_victim = await victim.send("Is de agent weg?")
    from_counsellor = await counsellor.send(cid, "Ja, de agent is weg.")
    await counsellor.next_event("message", where=lambda e: e["seq"] == from_victim)
    await victim.next_event("message", where=lambda e: e["seq"] == from_counsellor)
    # A round trip on the officer's socket: anything sent to it before is in by now.
    assert (await officer.call("invite.list", {}))["ok"] is True
    await asyncio.sleep(0.1)
    seqs = [e["seq"] for n, e in officer.received if n == "message"]
    assert max(seqs) == first_seq
    assert (await officer.call("invite.list", {}))["invites"] == []
