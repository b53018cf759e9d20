"""``forbidden`` (role or ownership), over a real socket and HTTP; every refusal changes nothing.

PROTOCOL.md, "Error codes" and "Details every client relies on": an event of another role, a party
on a conversation that is not theirs, an envelope from another device than the socket's, a
``needs_note`` the grant or the role does not allow, a token on a route of another org.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bridge.client import BridgeClient, StaffClient
from harness import (
    BOTH,
    CARE,
    JSON,
    ON_SHARED_WORLD,
    Bridge,
    World,
    chatting,
    forged,
    granted_world,
    http,
    http_error,
    joined,
    outsider,
    resigned,
)

WRONG_ROLE: list[tuple[str, str, JSON]] = [
    ("victim", "bridge.propose", {"purpose": "report"}),
    ("victim", "bridge.end", {}),
    ("victim", "queue.list", {}),
    ("officer", "queue.list", {}),
    ("officer", "bridge.propose", {"purpose": "report"}),
    ("officer", "bridge.pause", {}),
    ("officer", "conversation.close", {}),
    ("counsellor", "invite.list", {}),
    ("counsellor", "consent.withdraw", {}),
    ("counsellor", "consent.decline", {"request_id": "x"}),
]


@ON_SHARED_WORLD
@pytest.mark.parametrize(("who", "event", "payload"), WRONG_ROLE)
async def test_event_of_another_role_is_forbidden_and_changes_nothing(
    joined_world: World, who: str, event: str, payload: JSON
) -> None:
    world = joined_world
    client: BridgeClient = getattr(world, who)
    if event not in ("queue.list", "invite.list", "consent.decline"):
        payload = {"conversation_id": world.cid, **payload}
    assert await world.refused(client, event, payload) == "forbidden"


@ON_SHARED_WORLD
async def test_device_register_by_the_victim_is_forbidden_and_changes_nothing(
    chatting_world: World,
) -> None:
    world = chatting_world
    registration = world.victim.keys.registration()
    assert await world.refused(world.victim, "device.register", registration) == "forbidden"


async def refused_to_outsider(bridge: Bridge, role: str, event: str, payload: JSON) -> str:
    """``event`` about the driegesprek's conversation, sent by an ``outsider`` of ``role``."""
    world = await joined(bridge)
    client = await outsider(world, role)
    return await world.refused(client, event, {"conversation_id": world.cid, **payload})


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("conversation.join", {}),
        ("history.fetch", {"after_seq": 0}),
        ("bridge.pause", {}),
        ("consent.withdraw", {}),
        ("conversation.close", {}),
    ],
)
async def test_victim_on_another_conversation_is_forbidden_and_changes_nothing(
    bridge: Bridge, event: str, payload: JSON
) -> None:
    assert await refused_to_outsider(bridge, "victim", event, payload) == "forbidden"


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("conversation.join", {}),
        ("history.fetch", {"after_seq": 0}),
        ("bridge.propose", {"purpose": "report"}),
        ("bridge.pause", {}),
        ("bridge.end", {}),
        ("conversation.close", {}),
    ],
)
async def test_second_counsellor_on_a_held_conversation_is_forbidden_and_changes_nothing(
    bridge: Bridge, event: str, payload: JSON
) -> None:
    assert await refused_to_outsider(bridge, "counsellor", event, payload) == "forbidden"


@pytest.mark.parametrize(
    ("event", "payload"),
    [("conversation.join", {}), ("history.fetch", {"after_seq": 0}), ("bridge.end", {})],
)
async def test_officer_on_a_conversation_it_never_joined_is_forbidden_and_changes_nothing(
    bridge: Bridge, event: str, payload: JSON
) -> None:
    assert await refused_to_outsider(bridge, "officer", event, payload) == "forbidden"


@pytest.mark.parametrize(
    ("role", "scenario", "audience"),
    [
        ("victim", chatting, CARE),
        ("counsellor", chatting, CARE),
        ("officer", joined, BOTH),
    ],
    ids=["victim", "second counsellor", "officer that never joined"],
)
async def test_outsider_sending_into_the_conversation_is_forbidden_and_changes_nothing(
    bridge: Bridge,
    role: str,
    scenario: Callable[[Bridge], Awaitable[World]],
    audience: list[str],
) -> None:
    world = await scenario(bridge)
    client = await outsider(world, role)
    envelope = forged(client, world.victim, audience)
    assert await world.refused_send(client, envelope) == "forbidden"


def posing(
    client: BridgeClient | None, w: World, audience: list[str], role: str, device: BridgeClient
) -> tuple[BridgeClient, JSON]:
    """An envelope by ``client``, signed with its own key, that names ``role`` and ``device``'s
    device as its sender."""
    assert client is not None
    envelope = client.build("x", audience=audience, conversation_id=w.cid)
    sender = {"role": role, "device_id": device.device_id}
    return client, resigned(client, envelope, sender=sender)


SENDERS: dict[str, Callable[[World], tuple[BridgeClient, JSON]]] = {
    "counsellor as the victim's device": lambda w: posing(
        w.counsellor, w, CARE, "counsellor", w.victim
    ),
    "counsellor as the victim": lambda w: posing(w.counsellor, w, CARE, "victim", w.victim),
    "victim as the counsellor's device": lambda w: posing(
        w.victim, w, CARE, "victim", w.counsellor
    ),
    "officer as the counsellor": lambda w: posing(
        w.officer, w, BOTH, "counsellor", w.parties["officer"]
    ),
}


@ON_SHARED_WORLD
@pytest.mark.parametrize("case", list(SENDERS))
async def test_envelope_from_another_device_than_the_socket_is_forbidden_and_changes_nothing(
    joined_world: World, case: str
) -> None:
    world = joined_world
    client, envelope = SENDERS[case](world)
    assert await world.refused_send(client, envelope) == "forbidden"


async def test_needs_note_the_grant_did_not_allow_is_forbidden_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await granted_world(bridge, share_needs_note=False)
    counsellor = world.counsellor
    envelope = counsellor.build("x", audience=BOTH, conversation_id=world.cid, kind="needs_note")
    assert envelope["epoch_id"] == world.epoch_id
    assert await world.refused_send(counsellor, envelope) == "forbidden"


async def test_needs_note_from_the_victim_is_forbidden_and_changes_nothing(bridge: Bridge) -> None:
    world = await granted_world(bridge)
    envelope = world.victim.build("x", audience=BOTH, kind="needs_note")
    assert await world.refused_send(world.victim, envelope) == "forbidden"
    # The counsellor's needs_note is accepted in the same state: the refusal was the role's.
    assert await world.counsellor.send(world.cid, "Rustig praten.", kind="needs_note") > 0


@ON_SHARED_WORLD
@pytest.mark.parametrize("sender", ["victim", "officer"])
async def test_needs_note_from_anyone_but_the_counsellor_is_forbidden_while_joined(
    joined_world: World, sender: str
) -> None:
    world = joined_world
    client: BridgeClient = getattr(world, sender)
    envelope = client.build("x", audience=BOTH, conversation_id=world.cid, kind="needs_note")
    assert await world.refused_send(client, envelope) == "forbidden"


@ON_SHARED_WORLD
@pytest.mark.parametrize("org", ["fier", "avim"])
async def test_victim_token_on_the_staff_only_sealed_key_route_is_403_and_changes_nothing(
    chatting_world: World, org: str
) -> None:
    world = chatting_world
    bridge = world.bridge
    path = f"/api/v1/orgs/{org}/sealed-key"
    answer = await world.unchanged(lambda: http(bridge, "GET", path, token=world.victim.token))
    http_error(answer, 403, "forbidden")


@ON_SHARED_WORLD
@pytest.mark.parametrize(
    ("user", "org"),
    [("counsellor", "avim"), ("officer", "fier"), ("auditor", "fier"), ("auditor", "avim")],
)
async def test_staff_of_another_org_on_the_sealed_key_route_is_403_and_changes_nothing(
    chatting_world: World, user: str, org: str
) -> None:
    world = chatting_world
    bridge = world.bridge
    token = await bridge.token(user)
    path = f"/api/v1/orgs/{org}/sealed-key"
    answer = await world.unchanged(lambda: http(bridge, "GET", path, token=token))
    http_error(answer, 403, "forbidden")


@ON_SHARED_WORLD
async def test_history_share_under_the_default_policy_is_forbidden_and_changes_nothing(
    joined_world: World,
) -> None:
    world = joined_world
    assert await world.refused_by_client(lambda: world.victim.share_history([1])) == "forbidden"


@ON_SHARED_WORLD
@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("device.register", None),
        ("conversation.join", {}),
        ("history.fetch", {"after_seq": 0}),
        ("queue.list", None),
    ],
)
async def test_auditor_in_a_conversation_is_forbidden_and_changes_nothing(
    chatting_world: World, event: str, payload: JSON | None
) -> None:
    world = chatting_world
    bridge = world.bridge
    auditor = await StaffClient.login(bridge.url, "auditor", bridge.passwords["auditor"])
    bridge.clients.append(auditor)
    await auditor.connect()
    if event == "device.register":
        payload = auditor.keys.registration()
    elif payload is None:
        payload = {}
    else:
        payload = {"conversation_id": world.cid, **payload}
    assert await world.refused(auditor, event, payload) == "forbidden"
