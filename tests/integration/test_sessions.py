"""Sessions: logout, expiry and disabled accounts take effect on open sockets too."""

from __future__ import annotations

import asyncio
import json

import pytest
from raw_socket import RawSocket, login
from sqlalchemy import select

from bridge.client import Refused
from bridge.edges.app import DB, EDGE
from bridge.store.models import LogEntry
from harness import Bridge, bridge_cli, http


async def _status(
    bridge: Bridge, method: str, path: str, token: str | None
) -> tuple[int, str | None]:
    status, body = await http(bridge, method, path, token=token or None)
    return status, body["error"]["code"] if status >= 400 else None


async def test_logout_revokes_the_token_and_ends_its_sockets_at_once(bridge: Bridge) -> None:
    token = await bridge.token("counsellor")
    other = await bridge.token("counsellor")  # the same account, another session
    sock = await RawSocket.open(bridge.url, token)
    kept = await RawSocket.open(bridge.url, other)
    try:
        assert await _status(bridge, "DELETE", "/api/v1/session", token) == (204, None)
        assert await sock.ended()
        with pytest.raises(Refused) as info:
            await RawSocket.open(bridge.url, token)
        assert info.value.code == "unauthenticated"
        assert await _status(bridge, "GET", "/api/v1/orgs/fier/sealed-key", token) == (
            401,
            "unauthenticated",
        )
        assert await _status(bridge, "DELETE", "/api/v1/session", token) == (
            401,
            "unauthenticated",
        )
        # The other session of the same account goes on.
        assert (await kept.call("queue.list", {}))["error"]["code"] == "wrong_state"
    finally:
        await sock.close()
        await kept.close()


async def test_logout_without_a_valid_token_is_unauthenticated(bridge: Bridge) -> None:
    for token in (None, "x" * 43):
        assert await _status(bridge, "DELETE", "/api/v1/session", token) == (
            401,
            "unauthenticated",
        )


# The sweep is off: only the event itself can notice the expiry.
@pytest.mark.settings(staff_token_seconds=2, session_check_seconds=3600.0)
async def test_an_event_after_the_token_expired_is_unauthenticated_and_disconnects(
    bridge: Bridge,
) -> None:
    token = await bridge.token("counsellor")
    sock = await RawSocket.open(bridge.url, token)
    try:
        await asyncio.sleep(2.1)
        ack = await sock.call("queue.list", {})
        assert ack["error"]["code"] == "unauthenticated"
        assert await sock.ended()
    finally:
        await sock.close()


@pytest.mark.settings(victim_token_seconds=2, session_check_seconds=0.1)
async def test_an_idle_socket_whose_token_expired_is_disconnected(bridge: Bridge) -> None:
    victim = await bridge.victim()
    sock = await RawSocket.open(bridge.url, str(victim.token))
    try:
        assert await sock.ended()  # nothing sent: the periodic check ends it
    finally:
        await sock.close()
    with pytest.raises(Refused) as info:
        await RawSocket.open(bridge.url, str(victim.token))
    assert info.value.code == "unauthenticated"


async def _bridge_cli(bridge: Bridge, *args: str) -> tuple[int, str, str]:
    return await bridge_cli(bridge.data_dir, *args, "--db", bridge.settings.db_url)


async def _log_kinds(bridge: Bridge) -> list[str]:
    async with bridge.app[DB].session() as session:
        return list(await session.scalars(select(LogEntry.kind).order_by(LogEntry.idx)))


async def test_a_disabled_officer_is_disconnected_and_off_duty_until_enabled(
    bridge: Bridge,
) -> None:
    officer = await bridge.officer()
    edge = bridge.app[EDGE]
    assert len(await edge.connections.board.officers_on_duty()) == 1
    sock = await RawSocket.open(bridge.url, str(officer.token))
    try:
        status, out, _ = await _bridge_cli(bridge, "user", "disable", "officer")
        assert status == 0
        assert json.loads(out)["disabled"] is True
        # The server is another process: it notices within session_check_seconds.
        assert await sock.ended()
    finally:
        await sock.close()
    assert await edge.connections.board.officers_on_duty() == []
    with pytest.raises(Refused) as info:
        await RawSocket.open(bridge.url, str(officer.token))
    assert info.value.code == "unauthenticated"
    refused = await login(bridge.url, "officer", bridge.passwords["officer"])
    assert (refused["status"], refused["error"]["code"]) == (401, "unauthenticated")

    status, _, _ = await _bridge_cli(bridge, "user", "enable", "officer")
    assert status == 0
    # Enabled again, the officer logs in anew; the old token stays revoked.
    assert (await login(bridge.url, "officer", bridge.passwords["officer"]))["status"] == 200
    with pytest.raises(Refused):
        await RawSocket.open(bridge.url, str(officer.token))
    kinds = await _log_kinds(bridge)
    assert kinds[-2:] == ["account.disabled", "account.enabled"]


async def test_disabling_an_unknown_user_fails_and_logs_nothing(bridge: Bridge) -> None:
    before = await _log_kinds(bridge)
    status, _, err = await _bridge_cli(bridge, "user", "disable", "nobody")
    assert status == 1
    assert "no user 'nobody'" in err
    assert await _log_kinds(bridge) == before
