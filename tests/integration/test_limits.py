"""Limits: frame size, new conversations per address, logins, sockets per owner, slow readers.

Each limit is answered with its protocol code and changes nothing. (The 16 KiB envelope limit
is in test_errors.py, the message rate in test_messages.py.)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from raw_socket import RawSocket, login
from sqlalchemy import func, select

from bridge.client import Refused
from bridge.edges.app import DB
from bridge.store.models import Conversation
from harness import Bridge, picked_up

# Practically no refill and no lock-out ending within a test, however slow the machine.
SLOW_WINDOW = {"login_lockout_seconds": 600.0, "login_lockout_max_seconds": 3600.0}


# --- frames ------------------------------------------------------------------------------------


async def test_a_frame_over_the_limit_closes_only_that_connection(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    raw = await RawSocket.open(bridge.url, str(victim.token))
    try:
        huge = ["history.fetch", {"conversation_id": victim.conversation_id, "pad": "x" * 70_000}]
        await raw.ws.send_str("421" + json.dumps(huge))
        assert await raw.ended()
    finally:
        await raw.close()
    seq = await victim.send("Ben je er nog?")
    seen = await counsellor.next_event("message", where=lambda e: e["seq"] == seq)
    assert seen["text"] == "Ben je er nog?"


# --- new conversations per address -------------------------------------------------------------


async def _conversations(bridge: Bridge) -> int:
    async with bridge.app[DB].session() as session:
        return int(await session.scalar(select(func.count()).select_from(Conversation)) or 0)


@pytest.mark.settings(conversations_per_minute=2)
async def test_conversation_creation_is_limited_per_address_and_nothing_is_stored(
    bridge: Bridge,
) -> None:
    await bridge.victim()
    await bridge.victim()
    before = await _conversations(bridge)
    with pytest.raises(Refused) as info:
        await bridge.victim()
    assert (info.value.code, info.value.status) == ("rate_limited", 429)
    assert await _conversations(bridge) == before
    # The address is counted in memory only: no file of the bridge holds it.
    for path in bridge.data_dir.iterdir():
        assert b"127.0.0.1" not in path.read_bytes(), path


# --- logins ------------------------------------------------------------------------------------


async def _login(bridge: Bridge, username: str, password: str) -> dict[str, Any]:
    return await login(bridge.url, username, password)


def _code(answer: dict[str, Any]) -> tuple[int, str | None]:
    return answer["status"], answer.get("error", {}).get("code")


@pytest.mark.settings(login_failures_per_account=3, **SLOW_WINDOW)
async def test_failed_logins_back_off_per_account(
    bridge: Bridge,
) -> None:
    for _ in range(3):
        assert _code(await _login(bridge, "counsellor", "wrong password")) == (
            401,
            "unauthenticated",
        )
    # Locked: even the right password is refused, unchecked.
    right = bridge.passwords["counsellor"]
    assert _code(await _login(bridge, "counsellor", right)) == (429, "rate_limited")
    # Another account from the same address is not locked.
    assert _code(await _login(bridge, "counsellor2", bridge.passwords["counsellor2"])) == (
        200,
        None,
    )


@pytest.mark.settings(login_failures_per_account=3, **SLOW_WINDOW)
async def test_unknown_users_lock_out_as_known_ones_do(bridge: Bridge) -> None:
    for _ in range(3):
        assert _code(await _login(bridge, "nobody", "wrong password")) == (401, "unauthenticated")
    assert _code(await _login(bridge, "nobody", "wrong password")) == (429, "rate_limited")


@pytest.mark.settings(login_failures_per_account=3, **SLOW_WINDOW)
async def test_a_successful_login_resets_the_account(bridge: Bridge) -> None:
    right = bridge.passwords["counsellor"]
    for _ in range(2):
        for _ in range(2):
            assert _code(await _login(bridge, "counsellor", "wrong"))[0] == 401
        assert _code(await _login(bridge, "counsellor", right)) == (200, None)


@pytest.mark.settings(login_failures_per_account=3, login_lockout_seconds=0.5)
async def test_a_lock_out_ends(bridge: Bridge) -> None:
    for _ in range(3):
        assert _code(await _login(bridge, "counsellor", "wrong"))[0] == 401
    assert _code(await _login(bridge, "counsellor", "wrong")) == (429, "rate_limited")
    await asyncio.sleep(0.6)
    assert _code(await _login(bridge, "counsellor", bridge.passwords["counsellor"])) == (200, None)


@pytest.mark.settings(login_failures_per_account=100, login_failures_per_address=4, **SLOW_WINDOW)
async def test_failed_logins_back_off_per_address(bridge: Bridge) -> None:
    for name in ("a", "b", "c", "d"):
        assert _code(await _login(bridge, name, "wrong"))[0] == 401
    right = bridge.passwords["counsellor"]
    assert _code(await _login(bridge, "counsellor", right)) == (429, "rate_limited")


@pytest.mark.settings(login_failures_per_account=3, **SLOW_WINDOW)
async def test_parallel_guesses_cannot_pass_the_limit(bridge: Bridge) -> None:
    answers = await asyncio.gather(*(_login(bridge, "officer", f"guess {n}") for n in range(10)))
    codes = sorted(_code(a) for a in answers)
    assert codes == [(401, "unauthenticated")] * 3 + [(429, "rate_limited")] * 7


@pytest.mark.settings(login_failures_per_address=2, **SLOW_WINDOW)
async def test_many_staff_behind_one_address_log_in_at_once(bridge: Bridge) -> None:
    names = ["counsellor", "counsellor2", "officer", "officer2", "auditor"]
    answers = await asyncio.gather(*(_login(bridge, n, bridge.passwords[n]) for n in names))
    assert [a["status"] for a in answers] == [200] * len(names)


# --- sockets per owner -------------------------------------------------------------------------


@pytest.mark.settings(sockets_per_account=2)
async def test_sockets_per_staff_account_are_limited(bridge: Bridge) -> None:
    token = await bridge.token("counsellor")
    first = await RawSocket.open(bridge.url, token)
    second = await RawSocket.open(bridge.url, await bridge.token("counsellor"))
    try:
        with pytest.raises(Refused) as info:
            await RawSocket.open(bridge.url, token)
        assert info.value.code == "rate_limited"
        # Another account is not affected, and a closed socket frees its place.
        other = await RawSocket.open(bridge.url, await bridge.token("counsellor2"))
        await other.close()
        await first.close()
        third = await _open_eventually(bridge.url, token)
        await third.close()
    finally:
        await first.close()
        await second.close()


async def _open_eventually(url: str, token: str) -> RawSocket:
    # The server notices a closed socket a moment after the client closed it.
    for _ in range(100):
        try:
            return await RawSocket.open(url, token)
        except Refused as exc:
            assert exc.code == "rate_limited"
            await asyncio.sleep(0.05)
    raise AssertionError("the closed socket never freed its place")


@pytest.mark.settings(sockets_per_victim=2)
async def test_sockets_per_victim_token_are_limited(bridge: Bridge) -> None:
    victim = await bridge.victim()  # its own socket is the first
    extra = await RawSocket.open(bridge.url, str(victim.token))
    try:
        with pytest.raises(Refused) as info:
            await RawSocket.open(bridge.url, str(victim.token))
        assert info.value.code == "rate_limited"
        other = await bridge.victim()
        assert other.conversation_id != victim.conversation_id
    finally:
        await extra.close()


# --- slow consumers ----------------------------------------------------------------------------


@pytest.mark.settings(socket_queue_limit=20, message_rate=10_000.0, message_burst=10_000)
async def test_a_socket_that_does_not_read_is_cut_off_and_everyone_else_goes_on(
    bridge: Bridge,
) -> None:
    victim, counsellor = await picked_up(bridge)
    cid = victim.conversation_id

    def victim_left(event: dict[str, Any]) -> bool:
        return event["event"] == "left" and event["participant"]["role"] == "victim"

    text = "Dit bericht is lang. " * 400
    sent = [await counsellor.send(cid, text) for _ in range(40)]
    await victim.disconnect()
    await counsellor.next_event("participant", where=victim_left)
    slow = await RawSocket.open(bridge.url, str(victim.token), small_buffer=True)
    assert (await slow.call("conversation.join", {"conversation_id": cid}))["ok"] is True
    # From here on the slow socket reads nothing. It asks for the history over and over (each
    # answer is half a megabyte), so the TCP buffers between it and the server fill up ...
    for _ in range(12):
        await slow.emit("history.fetch", {"conversation_id": cid, "after_seq": 0, "limit": 500})
    # ... and what the counsellor sends now waits in the server's queue for that socket.
    cut_off = asyncio.create_task(counsellor.next_event("participant", 60, victim_left))
    while not cut_off.done() and len(sent) < 2000:
        sent.append(await counsellor.send(cid, text))
    assert cut_off.done(), "the slow socket was never cut off"
    await cut_off
    assert await slow.ended()
    await slow.close()
    # Everyone else goes on: the counsellor still sends, and another conversation is untouched.
    other_victim = await bridge.victim()
    other_counsellor = await bridge.counsellor("counsellor2")
    await other_counsellor.join(other_victim.conversation_id)
    seq = await other_victim.send("Hallo?")
    seen = await other_counsellor.next_event("message", where=lambda e: e["seq"] == seq)
    assert seen["text"] == "Hallo?"
    sent.append(await counsellor.send(cid, "Nog eentje."))
    # The victim comes back and catches up from history.
    back = await RawSocket.open(bridge.url, str(victim.token))
    try:
        await back.call("conversation.join", {"conversation_id": cid})
        seqs: list[int] = []
        while True:
            after = seqs[-1] if seqs else 0
            page = await back.call(
                "history.fetch", {"conversation_id": cid, "after_seq": after, "limit": 100}
            )
            assert page["ok"] is True
            if not page["messages"]:
                break
            seqs += [m["seq"] for m in page["messages"]]
        assert set(sent) <= set(seqs)
    finally:
        await back.close()
