"""``bridge keys rotate-org`` on a running bridge: a new version of an org's key, logged and
announced; conversations and consent epochs from before it still open with the old version, new
ones are sealed to the new, and staff clients open every version they have a passphrase for."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from bridge import crypto
from bridge.client import CounsellorClient, OfficerClient, Refused, VictimClient, writing
from harness import (
    Bridge,
    audit_entries,
    bridge_cli,
    granted,
    http,
    http_error,
    picked_up,
    query,
    state_is,
)


async def texts(client: CounsellorClient | OfficerClient, conversation_id: str) -> list[Any]:
    return [m.text for m in await client.history(conversation_id)]


async def logged_in(bridge: Bridge, cls: type[Any], username: str) -> Any:
    client = await cls.login(bridge.url, username, bridge.passwords[username])
    bridge.clients.append(client)
    return client


async def test_counsellors_read_conversations_from_before_and_after_the_rotation(
    bridge: Bridge,
) -> None:
    counsellor = await bridge.counsellor()  # unlocked fier-1 before the rotation
    before = await bridge.victim()
    await counsellor.join(before.conversation_id)
    await before.send("Van voor de nieuwe sleutel.")

    new_passphrase = secrets.token_urlsafe(16)
    rotated = await bridge.rotate_org("fier", new_passphrase)
    assert (rotated["org"], rotated["old_key_id"], rotated["key_id"]) == (
        "fier",
        "fier-1",
        "fier-2",
    )
    assert new_passphrase not in json.dumps(rotated)
    entry = [e for e in await audit_entries(bridge) if e["kind"] == "org_key.rotated"]
    assert [
        {k: e[k] for k in ("actor", "org", "old_key_id", "new_key_id", "x25519")} for e in entry
    ] == [
        {
            "actor": {"role": "admin", "via": "cli"},
            "org": "fier",
            "old_key_id": "fier-1",
            "new_key_id": "fier-2",
            "x25519": rotated["x25519"],
        }
    ]
    status, key = await http(bridge, "GET", "/api/v1/orgs/fier/key")
    assert status == 200 and (key["key_id"], key["x25519"]) == ("fier-2", rotated["x25519"])
    assert [v["key_id"] for v in key["versions"]] == ["fier-1", "fier-2"]

    # A new conversation is sealed to the newest key, and the server records which.
    after = await bridge.victim()
    await after.send("Na de nieuwe sleutel.")
    rows = query(
        bridge.data_dir,
        "SELECT id, care_key_id FROM conversations WHERE id IN (?, ?)",
        before.conversation_id,
        after.conversation_id,
    )
    assert dict(rows) == {before.conversation_id: "fier-1", after.conversation_id: "fier-2"}

    # The counsellor logged in before has only fier-1: the new conversation stays shut...
    joined = await counsellor.join(after.conversation_id)
    assert joined["conversation"]["care_scope"]["key_id"] == "fier-2"
    assert await texts(counsellor, after.conversation_id) == [None]
    # ...until it unlocks the version it was told of; the old one still opens the old scope.
    assert await counsellor.unlock(new_passphrase) == []
    assert await texts(counsellor, after.conversation_id) == ["Na de nieuwe sleutel."]
    assert await texts(counsellor, before.conversation_id) == ["Van voor de nieuwe sleutel."]

    # A counsellor logging in now gives one passphrase per version, each once.
    other = await logged_in(bridge, CounsellorClient, "counsellor2")
    assert await other.unlock(bridge.passphrases["fier"]) == ["fier-2"]
    assert await other.unlock(new_passphrase) == []
    assert set(other.org_keys) == {"fier-1", "fier-2"}
    with pytest.raises(crypto.DecryptionError):
        await (await logged_in(bridge, CounsellorClient, "counsellor2")).unlock("niet de wachtzin")


async def test_consent_epochs_from_before_and_after_an_avim_rotation(bridge: Bridge) -> None:
    """The same passphrase for both versions: one unlock opens both."""
    officer = await bridge.officer()
    victim, counsellor, _ = await granted(bridge)
    invite = await officer.next_event("invite")
    accepted = await officer.accept(invite["invite_id"])
    assert accepted["epoch"]["key_id"] == "avim-1"
    await victim.next_event("bridge.state", where=state_is("joined"))
    cid = victim.conversation_id
    await victim.send("Onder de eerste sleutel.")
    await victim.withdraw()

    rotated = await bridge.rotate_org("avim", bridge.passphrases["avim"])
    assert rotated["key_id"] == "avim-2"
    late = await logged_in(bridge, OfficerClient, "officer")
    assert await late.unlock(bridge.passphrases["avim"]) == []
    assert set(late.org_keys) == {"avim-1", "avim-2"}
    await late.connect()
    await late.register_device()

    await counsellor.propose(cid)
    await victim.next_event("consent.prompt")
    await victim.grant()
    invite = await late.next_event("invite")
    second = await late.accept(invite["invite_id"])
    assert second["epoch"]["key_id"] == "avim-2"
    epochs = query(bridge.data_dir, "SELECT key_id FROM epochs WHERE conversation_id = ?", cid)
    assert sorted(key_id for (key_id,) in epochs) == ["avim-1", "avim-2"]
    await victim.next_event("bridge.state", where=state_is("joined"))
    await victim.send("Onder de tweede sleutel.")
    message = await late.next_event("message", where=lambda m: m["text"] is not None)
    assert message["text"] == "Onder de tweede sleutel."
    # The first epoch's scope key opens with the old version the officer holds too.
    first = crypto.open_scope_key(accepted["epoch"]["sealed_private"], late.org_keys["avim-1"])
    assert crypto.b64u_encode(bytes(first.public_key)) == accepted["epoch"]["public"]


async def test_a_scope_sealed_to_an_old_version_is_refused(bridge: Bridge) -> None:
    old = await http(bridge, "GET", "/api/v1/orgs/fier/key")
    await bridge.rotate_org("fier", secrets.token_urlsafe(16))
    new = await http(bridge, "GET", "/api/v1/orgs/fier/key")
    client = VictimClient(bridge.url)
    bridge.clients.append(client)

    def body(key: dict[str, Any], key_id: str | None) -> dict[str, Any]:
        scope = crypto.ScopeKey.generate().as_payload(key["x25519"], key_id)
        device = crypto.DeviceKeys.generate()
        return {
            "lang": "nl",
            "device": {"ed25519": device.ed25519, "x25519": device.x25519},
            "care_scope": scope,
        }

    count = query(bridge.data_dir, "SELECT COUNT(*) FROM conversations")
    # A page that fetched the key before the rotation names fier-1: refused, nothing stored.
    answer = await http(bridge, "POST", "/api/v1/conversations", body=body(old[1], "fier-1"))
    http_error(answer, 400, "invalid")
    assert "fier-2" in answer[1]["error"]["message"]
    assert query(bridge.data_dir, "SELECT COUNT(*) FROM conversations") == count
    for key_id in ("fier-2", None):  # named, or left to the server: the newest
        status, made = await http(
            bridge, "POST", "/api/v1/conversations", body=body(new[1], key_id)
        )
        assert status == 201, made
        rows = query(
            bridge.data_dir,
            "SELECT care_key_id FROM conversations WHERE id = ?",
            made["conversation_id"],
        )
        assert rows == [("fier-2",)]


async def test_a_grant_sealed_to_an_old_avim_version_is_invalid(bridge: Bridge) -> None:
    victim = await _proposed(bridge)
    old = await victim.org_key("avim")
    await bridge.rotate_org("avim", secrets.token_urlsafe(16))
    with pytest.raises(Refused) as refused:
        await victim.call("consent.grant", _grant(victim, old))
    assert refused.value.code == "invalid"
    assert query(bridge.data_dir, "SELECT COUNT(*) FROM epochs") == [(0,)]
    ack = await victim.grant()
    assert query(bridge.data_dir, "SELECT key_id FROM epochs") == [("avim-2",)]
    assert ack["epoch_id"]


async def _proposed(bridge: Bridge) -> VictimClient:
    """A victim asked for consent."""
    victim, counsellor = await picked_up(bridge)
    await counsellor.propose(victim.conversation_id)
    await victim.next_event("consent.prompt")
    return victim


def _grant(victim: VictimClient, avim: dict[str, Any]) -> dict[str, Any]:
    choices = {"retain_for_case_file": False, "share_needs_note": True}
    payload, _ = writing.grant(victim.prompt(), victim.keys, avim, choices)
    return payload


async def test_sealed_versions_are_fetched_by_key_id_and_logged(bridge: Bridge) -> None:
    await bridge.rotate_org("fier", secrets.token_urlsafe(16))
    token = await bridge.token("counsellor")
    for key_id, path in (
        ("fier-2", "/api/v1/orgs/fier/sealed-key"),
        ("fier-1", "/api/v1/orgs/fier/sealed-key?key_id=fier-1"),
    ):
        status, sealed = await http(bridge, "GET", path, token=token)
        assert status == 200 and sealed["key_id"] == key_id
    fetched = [e for e in await audit_entries(bridge) if e["kind"] == "org_key.fetched"]
    assert [e["key_id"] for e in fetched][-2:] == ["fier-2", "fier-1"]
    answer = await http(bridge, "GET", "/api/v1/orgs/fier/sealed-key?key_id=fier-9", token=token)
    http_error(answer, 404, "not_found")
    officer = await bridge.token("officer")
    answer = await http(bridge, "GET", "/api/v1/orgs/fier/sealed-key?key_id=fier-1", token=officer)
    http_error(answer, 403, "forbidden")


async def test_rotate_org_refuses_what_it_cannot_do(bridge: Bridge, tmp_path: Path) -> None:
    args = ("keys", "rotate-org", "fier", "--passphrase-stdin")
    status, out, err = await bridge_cli(bridge.data_dir, *args, stdin="kort\n")
    assert status == 1 and "at least 12 characters" in err, out + err
    empty = tmp_path / "empty"
    empty.mkdir()
    status, out, err = await bridge_cli(empty, *args, stdin="een lange wachtzin\n")
    assert status == 1 and "the fier key has not been made yet" in err, out + err
    status, key = await http(bridge, "GET", "/api/v1/orgs/fier/key")
    assert [v["key_id"] for v in key["versions"]] == ["fier-1"]


async def test_migration_0004_names_version_1_and_goes_back_only_before_a_rotation(
    bridge: Bridge,
) -> None:
    """Back to 0003 and up again, the key ids of the scopes are found again (every scope of
    that schema was sealed to version 1); once a key was rotated, going back is refused."""
    victim, _, _ = await granted(bridge)
    cid = victim.conversation_id
    await bridge.stop()
    for step in (("downgrade", "0003"), ("upgrade",)):
        status, out, err = await bridge_cli(bridge.data_dir, "db", *step)
        assert status == 0, out + err
    assert query(bridge.data_dir, "SELECT care_key_id FROM conversations WHERE id = ?", cid) == [
        ("fier-1",)
    ]
    assert query(bridge.data_dir, "SELECT key_id FROM epochs") == [("avim-1",)]
    await bridge.rotate_org("fier", secrets.token_urlsafe(16))
    status, out, err = await bridge_cli(bridge.data_dir, "db", "downgrade", "0003")
    assert status != 0 and "org keys were rotated" in out + err
    # Refused as a whole: the database is still at the newest schema.
    assert query(bridge.data_dir, "SELECT version_num FROM alembic_version") == [("0007",)]
