"""Delivery across drops: a client comes back by itself, resumes from the last seq it saw and
sends what was not acknowledged again with the same client_msg_id; each message once.

A drop is real: the server closes the client's socket (as it does for a slow consumer), or the
whole server stops and starts again on the same port.
"""

from __future__ import annotations

import asyncio

import pytest
import socketio  # type: ignore[import-untyped]

from bridge.client import BridgeClient, ConnectionLost, Refused
from bridge.edges.app import EDGE
from harness import Bridge, audit_entries, driegesprek, picked_up, state_is


async def drop(bridge: Bridge, client: BridgeClient, *, away: bool = False) -> int:
    """The server closes ``client``'s socket; returns the client's resume count before it. An
    ``away`` client does not reconnect by itself: it is away until the test brings it back."""
    if away:
        client.auto_reconnect = False
    resumes = client.resumes
    await bridge.app[EDGE].server.disconnect(client.sid)
    return resumes


def received_seqs(client: BridgeClient) -> list[int]:
    """The seq of every ``message`` event the client has had, in order."""
    return [event["seq"] for name, event in client.received if name == "message"]


async def test_messages_sent_during_a_drop_arrive_once_after_resume(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    cid = victim.conversation_id
    first = await victim.send("Ben je er?")
    await counsellor.next_event("message", where=lambda e: e["seq"] == first)
    victim.reconnect_delay = 0.5  # room for the counsellor's messages to go out meanwhile
    before = await drop(bridge, victim)
    missed = [await counsellor.send(cid, f"Tijdens de onderbreking {n}.") for n in range(3)]
    await victim.resumed(before + 1)
    after = await counsellor.send(cid, "Na de onderbreking.")
    await victim.next_event("message", where=lambda e: e["seq"] == after)

    assert received_seqs(victim) == [first, *missed, after]
    assert [victim.messages[seq].text for seq in missed] == [
        f"Tijdens de onderbreking {n}." for n in range(3)
    ]
    assert all(m.verified for m in victim.messages.values())
    assert [m.seq for m in await victim.history()] == [first, *missed, after]


async def test_a_send_made_while_the_server_is_down_is_delivered_once(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    before = victim.resumes
    await bridge.stop()
    sending = asyncio.create_task(victim.send("Geschreven zonder verbinding."))
    await bridge.start()
    seq = await sending
    await victim.resumed(before + 1)
    message = await counsellor.next_event("message", where=lambda e: e["seq"] == seq)
    assert message["text"] == "Geschreven zonder verbinding."
    later = await victim.send("En nog een.")
    assert later == seq + 1
    assert [e["seq"] for e in counsellor.drain("message")] == [later]
    assert [m.seq for m in await counsellor.history(victim.conversation_id)] == [seq, later]


async def test_a_resend_after_a_lost_ack_yields_one_seq(bridge: Bridge) -> None:
    """The server stored the message but the client never saw the ack: the resume's resend,
    with the same client_msg_id and bytes, gets the original seq and no second delivery."""
    victim, counsellor = await picked_up(bridge)
    envelope = victim.build("Kwam dit aan?", audience=["care"])
    stored = (await victim.call("message.send", {"envelope": envelope}))["seq"]
    await bridge.stop()
    resending = asyncio.create_task(victim.post(envelope))  # waits for the resume
    await bridge.start()
    assert await resending == stored
    assert await victim.post(envelope) == stored  # and once more by hand: still no conflict
    await counsellor.next_event("message", where=lambda e: e["seq"] == stored)
    assert counsellor.drain("message") == []
    assert [m.seq for m in await victim.history()] == [stored]


async def test_victim_counsellor_and_officer_resume_after_a_restart(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    devices = (counsellor.device_id, officer.device_id)
    counts = [party.resumes for party in (victim, counsellor, officer)]
    for party in (victim, counsellor, officer):
        party.drain("bridge.state")
        party.drain("message")
    await bridge.restart()
    care = asyncio.create_task(
        counsellor.send(cid, "Alleen voor jou, tijdens de herstart.", care_only=True)
    )
    for party, count in zip((victim, counsellor, officer), counts, strict=True):
        await party.resumed(count + 1)
    care_seq = await care
    assert (counsellor.device_id, officer.device_id) == devices

    # Back where it was: the counsellor's return lifts the pause the restart made.
    joined = await officer.next_event("bridge.state", where=state_is("joined"))
    assert joined["epoch"]["epoch_id"] == officer.conversations[cid].epoch["epoch_id"]
    await victim.next_event("message", where=lambda e: e["seq"] == care_seq)
    from_officer = await officer.send(cid, "Ik ben er weer.")
    to_all = await victim.send("Ik ook.")
    await counsellor.next_event("message", where=lambda e: e["seq"] == to_all)
    await victim.next_event("message", where=lambda e: e["seq"] == to_all)
    for party in (victim, counsellor):
        seqs = received_seqs(party)
        assert len(seqs) == len(set(seqs)) and {care_seq, from_officer, to_all} <= set(seqs)
    assert counsellor.messages[from_officer].text == "Ik ben er weer."
    assert officer.conversations[cid].messages[to_all].text == "Ik ook."
    assert care_seq not in officer.conversations[cid].messages


async def test_victim_back_after_a_long_drop_finds_the_same_conversation(bridge: Bridge) -> None:
    """However long the victim is away, what counts is the state her leaving left: the police
    part paused for ``victim_away``. Her page coming back lifts it, with the same conversation,
    consent and officer."""
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    bridge_before = dict(victim.bridge or {})
    await drop(bridge, victim, away=True)
    await counsellor.next_event("participant", where=lambda e: e["event"] == "left")
    away = await officer.next_event("bridge.state", where=state_is("paused"))
    assert away["reason"] == "victim_away"
    missed = await counsellor.send(cid, "We wachten op je.")
    with pytest.raises(Refused) as refused:
        await counsellor.resume(cid)
    assert refused.value.code == "forbidden"

    victim.auto_reconnect = True
    await victim.reconnect()
    assert victim.conversation_id == cid
    assert victim.bridge is not None
    assert victim.bridge["state"] == "joined" and victim.bridge["reason"] == "victim_back"
    assert victim.bridge["request_id"] == bridge_before["request_id"]
    assert victim.conversation.epoch == {**bridge_before["epoch"]}
    officers = [p for p in victim.conversation.participants.values() if p["role"] == "officer"]
    assert [p["device_id"] for p in officers] == [officer.device_id]
    assert victim.messages[missed].text == "We wachten op je."
    back = await counsellor.next_event("participant", where=lambda e: e["event"] == "joined")
    assert back["participant"]["role"] == "victim"
    await officer.next_event("bridge.state", where=state_is("joined"))
    seq = await victim.send("Ik ben er weer.")
    message = await officer.next_event("message", where=lambda e: e["seq"] == seq)
    assert message["text"] == "Ik ben er weer."

    entries = await bridge_log(bridge, cid)
    assert entries[-2:] == [
        ("bridge.paused", "victim_away", "system"),
        ("bridge.resumed", "victim_back", "system"),
    ]


async def bridge_log(bridge: Bridge, conversation_id: str) -> list[tuple[str, str | None, str]]:
    """``(kind, reason, actor role)`` of the conversation's bridge.* entries, read as the
    auditor reads them."""
    return [
        (e["kind"], e.get("reason"), e["actor"]["role"])
        for e in await audit_entries(bridge)
        if e.get("conversation") == conversation_id and e["kind"].startswith("bridge.")
    ]


async def test_a_refused_reconnect_stops_and_says_why(bridge: Bridge) -> None:
    victim, _ = await picked_up(bridge)
    victim.token = "not-a-token"
    before = await drop(bridge, victim)
    with pytest.raises(Refused) as refused:
        await victim.resumed(before + 1)
    assert refused.value.code == "unauthenticated"
    assert victim.failure is refused.value
    with pytest.raises(Refused):
        await victim.send("Niet meer.")


async def test_an_explicit_disconnect_is_not_followed_by_a_reconnect(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    await victim.disconnect()
    await counsellor.next_event("participant", where=lambda e: e["event"] == "left")
    with pytest.raises(ConnectionLost):
        await victim.resumed()
    with pytest.raises(ConnectionLost):
        await victim.send("Weg.")
    assert victim.sid is None and victim.resumes == 0


async def test_victim_back_while_the_counsellor_is_away_waits_for_the_counsellor(
    bridge: Bridge,
) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await drop(bridge, victim, away=True)
    await officer.next_event("bridge.state", where=lambda e: e.get("reason") == "victim_away")
    await counsellor.disconnect()
    await victim.reconnect()
    assert victim.bridge is not None
    assert (victim.bridge["state"], victim.bridge["reason"]) == ("paused", "counsellor_away")
    await counsellor.reconnect()
    await officer.next_event("bridge.state", where=state_is("joined"))
    assert (await bridge_log(bridge, cid))[-3:] == [
        ("bridge.resumed", "victim_back", "system"),
        ("bridge.paused", "counsellor_away", "system"),
        ("bridge.resumed", None, "system"),
    ]


async def test_an_officer_removed_while_away_resumes_without_its_conversation(
    bridge: Bridge,
) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await drop(bridge, officer, away=True)
    await victim.withdraw()
    await counsellor.next_event("participant", where=lambda e: e["event"] == "removed")
    await officer.reconnect()  # the re-join is refused (no_consent); the rest of resuming goes on
    assert officer.resumes == 1
    later = await counsellor.send(cid, "Na het intrekken.")
    await victim.next_event("message", where=lambda e: e["seq"] == later)
    assert later not in officer.conversations[cid].messages


async def test_a_victim_back_on_a_new_socket_while_the_old_one_goes_keeps_the_officer(
    bridge: Bridge,
) -> None:
    # A phone that switches networks: the new socket joins while the server is still letting
    # the old one go. Whatever the interleaving, the victim is there, so nothing pauses.
    victim, counsellor, _officer = await driegesprek(bridge)
    cid = victim.conversation_id
    victim.auto_reconnect = False

    async def victim_socket() -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(bridge.url, auth={"token": victim.token}, transports=["websocket"])
        return sio

    async def join(sio: socketio.AsyncClient) -> None:
        ack = await sio.call("conversation.join", {"conversation_id": cid}, timeout=10)
        assert ack["ok"] is True

    old: socketio.AsyncClient | None = None
    for _ in range(15):
        new = await victim_socket()
        leaving = victim.disconnect() if old is None else old.disconnect()
        await asyncio.gather(leaving, join(new))
        old = new
    assert old is not None
    await join(old)  # the answer reflects every departure handled by now
    state = (await counsellor.join(cid))["conversation"]["bridge"]
    assert state["state"] == "joined"
    await old.disconnect()
