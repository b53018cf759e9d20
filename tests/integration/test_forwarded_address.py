"""The address the per-address limits count: X-Forwarded-For's last address when the peer is a
trusted proxy (``trusted_proxies``), the peer's own otherwise, and the peer's when the header
names no address. The tests reach the bridge from 127.0.0.1, so trusting 127.0.0.1 makes the
test a proxy; a lock-out per address after one failed login shows which address was counted.
"""

from __future__ import annotations

import aiohttp
import pytest

from harness import Bridge

ONE_FAILURE_PER_ADDRESS = {
    "login_failures_per_address": 1,
    "login_failures_per_account": 100,
    "login_lockout_seconds": 600.0,
    "login_lockout_max_seconds": 3600.0,
}


async def _login(bridge: Bridge, username: str, password: str, forwarded: str | None) -> int:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    body = {"username": username, "password": password}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{bridge.url}/api/v1/session", json=body, headers=headers) as response,
    ):
        return response.status


async def _fail(bridge: Bridge, forwarded: str | None) -> None:
    assert await _login(bridge, "nobody", "wrong", forwarded) == 401


async def _right(bridge: Bridge, forwarded: str | None) -> int:
    """A right password: 200, or 429 while the address it counts under is locked out."""
    return await _login(bridge, "counsellor", bridge.passwords["counsellor"], forwarded)


@pytest.mark.settings(trusted_proxies="10.0.0.0/8, 127.0.0.1", **ONE_FAILURE_PER_ADDRESS)
async def test_behind_a_trusted_proxy_each_forwarded_address_counts_alone(
    bridge: Bridge,
) -> None:
    await _fail(bridge, "192.0.2.1")
    assert await _right(bridge, "192.0.2.1") == 429
    assert await _right(bridge, "192.0.2.2") == 200
    # The last address is the one the proxy set; what the client put before it is not counted.
    assert await _right(bridge, "192.0.2.1, 192.0.2.3") == 200
    assert await _right(bridge, "192.0.2.3, 192.0.2.1") == 429
    # One address however it is written; the proxy itself is not locked out.
    await _fail(bridge, "2001:db8::1")
    assert await _right(bridge, "2001:DB8:0:0::1") == 429
    assert await _right(bridge, None) == 200


@pytest.mark.settings(trusted_proxies="10.0.0.0/8", **ONE_FAILURE_PER_ADDRESS)
async def test_from_a_peer_not_trusted_the_header_is_ignored(bridge: Bridge) -> None:
    await _fail(bridge, "192.0.2.1")
    # Another forwarded address, or none: the same peer, locked out.
    assert await _right(bridge, "192.0.2.2") == 429
    assert await _right(bridge, None) == 429


@pytest.mark.settings(trusted_proxies="127.0.0.1", **ONE_FAILURE_PER_ADDRESS)
async def test_a_header_naming_no_address_counts_the_peer(bridge: Bridge) -> None:
    await _fail(bridge, "not an address")
    assert await _right(bridge, "192.0.2.1:443") == 429
    assert await _right(bridge, "") == 429
    assert await _right(bridge, None) == 429
    assert await _right(bridge, "192.0.2.1") == 200
