"""Socket.IO's own transports: a client may hold its whole part over HTTP long-polling (a
network that blocks WebSockets), or start with long-polling and upgrade, as Socket.IO's clients
do by default; the same answers, the same limits of who reads what."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from raw_socket import Output

from bridge.client import CounsellorClient, Refused, VictimClient
from harness import Bridge, error_code, picked_up, state_is


class PollingVictim(VictimClient):
    transports = ("polling",)


class UpgradingCounsellor(CounsellorClient):
    transports = ("polling", "websocket")


def transport_of(client: Any) -> str:
    """The Engine.IO transport the client's connection uses now."""
    return str(client._sio.transport())


async def test_a_victim_on_long_polling_holds_a_whole_driegesprek(bridge: Bridge) -> None:
    victim = await PollingVictim.create(bridge.url)
    bridge.clients.append(victim)
    cid = victim.conversation_id
    officer = await bridge.officer()
    counsellor = await bridge.counsellor()
    await counsellor.join(cid)
    await counsellor.propose(cid, "informational")
    await victim.next_event("consent.prompt")
    await victim.grant(share_needs_note=False)
    invite = await officer.next_event("invite")
    await officer.accept(invite["invite_id"])
    await victim.next_event("bridge.state", where=state_is("joined"))

    to_both = await victim.send("Ik wil praten.")
    care_only = await victim.send("Alleen voor jou.", care_only=True)
    from_officer = await officer.send(cid, "Hallo, ik ben van AVIM.")
    for reader, seq in [(counsellor, to_both), (officer, to_both), (counsellor, care_only)]:
        event = await reader.next_event("message", where=lambda e, s=seq: e["seq"] == s)
        assert event["verified"] is True
    heard = await victim.next_event("message", where=lambda e: e["seq"] == from_officer)
    assert heard["text"] == "Hallo, ik ben van AVIM."
    assert care_only not in officer.conversations[cid].messages

    await victim.withdraw()
    await officer.next_event("bridge.state", where=state_is("ended", "withdrawn"))
    try:
        await officer.send(cid, "Ben je er nog?")
    except Refused as refused:
        assert refused.code == "no_consent"
    else:
        raise AssertionError("the officer could still send after the withdrawal")
    assert transport_of(victim) == "polling"  # never upgraded: only polling was offered


async def test_bad_input_over_long_polling_gets_its_code_and_the_socket_stays(
    bridge: Bridge,
) -> None:
    victim = await PollingVictim.create(bridge.url)
    bridge.clients.append(victim)
    nested: Any = victim.conversation_id
    for _ in range(100):  # past the 16 levels the bridge reads; what this client can encode
        nested = [nested]
    answers = [
        await victim.call_raw("conversation.join", {"conversation_id": nested}),
        await victim.call_raw("conversation.join", {}),
        await victim.call_raw("conversation.join", {"conversation_id": "x" * 4_000}),
        await victim.call_raw("bridge.propose", {"conversation_id": victim.conversation_id}),
    ]
    assert [error_code(answer) for answer in answers] == ["invalid"] * 4
    # Still connected, still answered.
    assert (await victim.call("conversation.join", {"conversation_id": victim.conversation_id}))[
        "ok"
    ]
    assert transport_of(victim) == "polling"


async def test_a_client_that_starts_with_polling_upgrades_to_a_websocket(bridge: Bridge) -> None:
    victim = await bridge.victim()
    counsellor = await UpgradingCounsellor.login(
        bridge.url, "counsellor", bridge.passwords["counsellor"]
    )
    bridge.clients.append(counsellor)
    await counsellor.unlock(bridge.passphrases["fier"])
    await counsellor.connect()
    await counsellor.register_device()
    await counsellor.join(victim.conversation_id)
    seq = await victim.send("Hallo?")
    await counsellor.next_event("message", where=lambda e: e["seq"] == seq)
    # The upgrade runs beside the first polls; a few more round trips see it done.
    for _ in range(200):
        if transport_of(counsellor) == "websocket":
            break
        await counsellor.call("queue.list", {})
    assert transport_of(counsellor) == "websocket"
    answer = await counsellor.send(victim.conversation_id, "Ik ben er.")
    await victim.next_event("message", where=lambda e: e["seq"] == answer)


@pytest.fixture
def output(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[Output]:
    caplog.set_level(logging.INFO)
    yield Output(capsys, caplog)


async def _polling_session(http: aiohttp.ClientSession, base: str) -> str:
    """An Engine.IO long-polling handshake, as a client's first request; the session's URL."""
    async with http.get(f"{base}/socket.io/?EIO=4&transport=polling") as response:
        assert response.status == 200
        opened = json.loads((await response.text())[1:])  # "0{...}": the open packet
    return f"{base}/socket.io/?EIO=4&transport=polling&sid={opened['sid']}"


@pytest.mark.parametrize(
    "body",
    [b"\x1e\x1e\x1e", b"zz not engine.io", b"4" + b"x" * (70 * 1024), b"\xff\xfe"],
    ids=["separators", "garbage", "over-64-kib", "not-utf-8"],
)
async def test_a_bad_long_polling_body_is_refused_and_raises_nothing(
    bridge: Bridge, output: Output, body: bytes
) -> None:
    async with aiohttp.ClientSession() as http:
        session = await _polling_session(http, bridge.url)
        async with http.post(session, data=body) as response:
            assert 400 <= response.status < 500
        async with http.get(f"{bridge.url}/healthz") as health:
            assert health.status == 200
    output.assert_clean()


@pytest.mark.settings(socket_queue_limit=5)
async def test_a_long_polling_client_that_does_not_come_back_for_its_packets_is_let_go(
    bridge: Bridge, output: Output
) -> None:
    victim, counsellor = await picked_up(bridge)
    cid = victim.conversation_id

    def victim_left(event: dict[str, Any]) -> bool:
        return event["event"] == "left" and event["participant"]["role"] == "victim"

    await victim.disconnect()
    await counsellor.next_event("participant", where=victim_left)
    async with aiohttp.ClientSession() as http:
        session = await _polling_session(http, bridge.url)
        connect = "40" + json.dumps({"token": victim.token})
        join = "421" + json.dumps(["conversation.join", {"conversation_id": cid}])
        async with http.post(session, data=f"{connect}\x1e{join}") as response:
            assert response.status == 200
        # The victim's page never polls again; what the counsellor sends waits for it ...
        left = asyncio.create_task(counsellor.next_event("participant", 30, victim_left))
        for n in range(10):
            await counsellor.send(cid, f"Bericht {n}")
        # ... until the queue is past its limit and the socket is let go, as if it was lost.
        await left
    assert "socket.too_slow" in output.assert_clean()
    # The counsellor goes on, and the victim catches up when she is back.
    seq = await counsellor.send(cid, "Ben je er weer?")
    await victim.connect()
    await victim.join()
    assert [m.text for m in await victim.history()][-11:] == [
        *(f"Bericht {n}" for n in range(10)),
        "Ben je er weer?",
    ]
    assert seq == (await victim.history())[-1].seq


async def test_a_poll_waiting_when_its_client_closes_is_answered_at_once(
    bridge: Bridge, output: Output
) -> None:
    """A client that leaves sends its close packet beside a poll still waiting for packets:
    the poll is answered then, not held until the ping timeout (about 45 s)."""
    async with aiohttp.ClientSession() as http:
        session = await _polling_session(http, bridge.url)
        waiting = asyncio.create_task(http.get(session))
        await asyncio.sleep(0.2)  # the poll reaches the server and waits there
        assert not waiting.done()
        async with http.post(session, data="1") as response:  # engine.io's close packet
            assert response.status == 200
        # Bounded far below the ping timeout: before the fix this waited it out.
        async with await asyncio.wait_for(waiting, 5) as answer:
            assert answer.status == 200
    output.assert_clean()
