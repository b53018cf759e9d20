"""``unauthenticated``: a socket or HTTP request without a valid token; nothing changes.

PROTOCOL.md: a refused connect is ``ConnectionRefusedError("unauthenticated", ...)``; HTTP answers
401, and a failed login looks the same whether the account exists or not.
"""

from __future__ import annotations

import secrets

import pytest

from bridge.client import Refused, VictimClient
from harness import (
    ON_SHARED_WORLD,
    World,
    http,
    http_error,
)


@ON_SHARED_WORLD
@pytest.mark.parametrize(
    "token",
    [None, "", "not-a-token", secrets.token_urlsafe(32)],
    ids=["none", "empty", "garbage", "unknown"],
)
async def test_socket_connect_without_a_valid_token_is_unauthenticated_and_changes_nothing(
    chatting_world: World, token: str | None
) -> None:
    world = chatting_world
    bridge = world.bridge
    stranger = VictimClient(bridge.url)
    bridge.clients.append(stranger)
    stranger.token = token

    async def connect() -> str:
        with pytest.raises(Refused) as refusal:
            await stranger.connect()
        return refusal.value.code

    assert await world.unchanged(connect) == "unauthenticated"


@ON_SHARED_WORLD
@pytest.mark.parametrize("token", [None, "", "not-a-token"], ids=["none", "empty", "garbage"])
@pytest.mark.parametrize("org", ["fier", "avim"])
async def test_sealed_key_without_a_valid_token_is_401_and_changes_nothing(
    chatting_world: World, org: str, token: str | None
) -> None:
    world = chatting_world
    bridge = world.bridge
    path = f"/api/v1/orgs/{org}/sealed-key"
    answer = await world.unchanged(lambda: http(bridge, "GET", path, token=token))
    http_error(answer, 401, "unauthenticated")


@ON_SHARED_WORLD
async def test_login_failures_look_the_same_and_change_nothing(chatting_world: World) -> None:
    world = chatting_world
    bridge = world.bridge
    unknown = await world.unchanged(
        lambda: http(
            bridge, "POST", "/api/v1/session", body={"username": "nobody", "password": "x" * 12}
        ),
    )
    wrong = await world.unchanged(
        lambda: http(
            bridge,
            "POST",
            "/api/v1/session",
            body={"username": "counsellor", "password": "x" * 12},
        ),
    )
    http_error(unknown, 401, "unauthenticated")
    assert wrong == unknown
