"""Device keys belong to one device (PROTOCOL.md: the same keys on the same account give the same
``device_id``): a conversation started with keys in use, or a staff device registered with another
account's, is ``conflict`` and stores nothing."""

from __future__ import annotations

from bridge import crypto
from bridge.client import CounsellorClient
from harness import Bridge, db_rows, error_code, http, http_error, unregistered


async def test_a_conversation_started_with_device_keys_in_use_is_a_conflict(
    bridge: Bridge,
) -> None:
    victim = await bridge.victim()
    status, fier = await http(bridge, "GET", "/api/v1/orgs/fier/key")
    assert status == 200
    body = {
        "lang": "nl",
        "device": {"ed25519": victim.keys.ed25519, "x25519": victim.keys.x25519},
        "care_scope": crypto.ScopeKey.generate().as_payload(fier["x25519"], fier["key_id"]),
    }
    before = db_rows(bridge)
    http_error(await http(bridge, "POST", "/api/v1/conversations", body=body), 409, "conflict")
    assert db_rows(bridge) == before


async def test_a_staff_device_with_another_accounts_keys_is_a_conflict(bridge: Bridge) -> None:
    owner = await bridge.counsellor()
    assert await owner.register_device() == owner.device_id  # the same keys: the same device
    other = await unregistered(bridge, CounsellorClient, "counsellor2")
    before = db_rows(bridge)
    answer = await other.call_raw("device.register", owner.keys.registration())
    assert error_code(answer) == "conflict"
    assert db_rows(bridge) == before
