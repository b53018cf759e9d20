"""``bad_signature``: an envelope, grant, device registration or history share whose signature
does not verify; nothing changes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from nacl.signing import SigningKey

from bridge import crypto
from bridge.client import BridgeClient, CounsellorClient
from harness import (
    BOTH,
    JSON,
    ON_SHARED_WORLD,
    Bridge,
    World,
    chatting,
    flip_ciphertext_byte,
    grant_payload,
    joined,
    policy_text,
    unregistered,
)

SIGNATURES: dict[str, Callable[[BridgeClient, JSON], JSON]] = {
    "signed by another key": lambda c, e: {
        **e,
        "sig": crypto.sign_object(e, SigningKey.generate()),
    },
    "ciphertext byte changed after signing": lambda c, e: flip_ciphertext_byte(e),
    "client_msg_id changed after signing": lambda c, e: {**e, "client_msg_id": str(uuid.uuid4())},
    "nonce changed after signing": lambda c, e: {
        **e,
        "nonce": crypto.b64u_encode(bytes(24)),
    },
    "signature of another envelope": lambda c, e: {
        **e,
        "sig": c.build("y", audience=e["audience"], conversation_id=e["conversation_id"])["sig"],
    },
}


@ON_SHARED_WORLD
@pytest.mark.parametrize("case", list(SIGNATURES))
@pytest.mark.parametrize("sender", ["victim", "counsellor", "officer"])
async def test_envelope_with_a_bad_signature_is_bad_signature_and_changes_nothing(
    joined_world: World, case: str, sender: str
) -> None:
    world = joined_world
    client: BridgeClient = getattr(world, sender)
    envelope = SIGNATURES[case](client, client.build("x", audience=BOTH, conversation_id=world.cid))
    assert await world.refused_send(client, envelope) == "bad_signature"


@ON_SHARED_WORLD
async def test_grant_signed_by_another_key_is_bad_signature_and_changes_nothing(
    proposed_world: World,
) -> None:
    world = proposed_world
    payload = await grant_payload(world.victim, signing_key=SigningKey.generate())
    assert await world.refused(world.victim, "consent.grant", payload) == "bad_signature"


@ON_SHARED_WORLD
async def test_grant_whose_choices_differ_from_the_signed_ones_is_bad_signature_and_changes_nothing(
    proposed_world: World,
) -> None:
    world = proposed_world
    payload = await grant_payload(world.victim)
    payload["choices"] = {**payload["choices"], "retain_for_case_file": True}
    assert await world.refused(world.victim, "consent.grant", payload) == "bad_signature"


async def test_device_register_with_a_bad_signature_is_bad_signature_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await chatting(bridge)
    client = await unregistered(bridge, CounsellorClient, "counsellor2")
    other = crypto.DeviceKeys.generate()
    payload = {**client.keys.registration(), "sig": other.registration()["sig"]}
    assert await world.refused(client, "device.register", payload) == "bad_signature"
    # Still unregistered: a staff event is refused as before.
    assert await world.refused(client, "queue.list", {}) == "wrong_state"


@pytest.mark.policy(policy_text(victim_may_share=True))
async def test_history_share_signed_by_another_key_is_bad_signature_and_changes_nothing(
    bridge: Bridge,
) -> None:
    world = await joined(bridge)
    victim, conv = world.victim, world.victim.conversation
    assert conv.epoch is not None
    await victim.history()
    content_key = crypto.envelope_content_key(conv.messages[1].envelope, "victim", victim.keys.box)
    payload: JSON = {
        "conversation_id": world.cid,
        "epoch_id": world.epoch_id,
        "items": [{"seq": 1, "key": crypto.seal(content_key, conv.epoch["public"])}],
    }
    payload["sig"] = crypto.sign_object(payload, SigningKey.generate())
    assert await world.refused(victim, "history.share", payload) == "bad_signature"
