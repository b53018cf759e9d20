"""``bridge keys rotate-log`` against the data directory and database of a running bridge: the
bridge signs with the new key from then on without a restart, a receipt given out before still
proves under the old key, the key history is served, and an export verifies from the old key
only along the logged hand-over."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nacl.signing import SigningKey

from bridge import crypto
from bridge.client import BridgeClient, VictimClient
from bridge.log import merkle
from bridge.log.signed_note import key_hash
from bridge.log.verify import verify_export
from harness import Bridge, audit_entries, bridge_cli, picked_up


async def grant_receipt(bridge: Bridge) -> tuple[VictimClient, dict[str, Any]]:
    victim, counsellor = await picked_up(bridge)
    await counsellor.propose(victim.conversation_id)
    await victim.next_event("consent.prompt")
    ack = await victim.grant()
    return victim, ack["receipt"]


async def proves(bridge: Bridge, token: str, receipt: dict[str, Any], ed25519: str) -> None:
    """The receipt's checkpoint is signed by ``ed25519`` and the grant is in it (RFC 9162)."""
    checkpoint, index = receipt["checkpoint"], receipt["index"]
    crypto.verify_object(checkpoint, checkpoint["sig"], ed25519)
    entry = (await audit_entries(bridge, token))[index]
    assert entry["kind"] == "consent.granted"
    client = BridgeClient(bridge.url)
    bridge.clients.append(client)
    path = f"/api/v1/audit/proof/inclusion?index={index}&size={checkpoint['size']}"
    proof = await client.request("GET", path, token=token)
    merkle.verify_inclusion(
        index,
        checkpoint["size"],
        merkle.leaf_hash(crypto.jcs(entry)),
        [crypto.b64u_decode(node) for node in proof["path"]],
        crypto.b64u_decode(checkpoint["root"]),
    )


async def get(bridge: Bridge, path: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(bridge.url + path, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        if response.content_type == "application/json":
            return await response.json()
        return await response.text()


async def rotate(bridge: Bridge) -> dict[str, Any]:
    status, out, err = await bridge_cli(bridge.data_dir, "keys", "rotate-log")
    assert status == 0, out + err
    rotated: dict[str, Any] = json.loads(out)
    return rotated


async def test_rotation_on_a_running_bridge(bridge: Bridge, tmp_path: Path) -> None:
    token = await bridge.token("auditor")
    old = await get(bridge, "/api/v1/audit/log-key")
    _, old_receipt = await grant_receipt(bridge)

    rotated = await rotate(bridge)

    assert rotated["old"] == {"key_id": old["key_id"], "ed25519": old["ed25519"]}
    new = rotated["new"]
    handover = rotated["handover"]
    assert handover["key_id"] == old["key_id"] and handover["size"] == rotated["index"] + 1
    crypto.verify_object(handover, handover["sig"], old["ed25519"])
    data = bridge.data_dir
    retired = data / "log-keys" / old["key_id"]
    assert rotated["retired"] == str(retired) and retired.stat().st_mode & 0o777 == 0o600
    assert (data / "log-key").stat().st_mode & 0o777 == 0o600
    assert not (data / "log-key.new").exists()
    entry = (await audit_entries(bridge, token))[rotated["index"]]
    assert entry["kind"] == "log_key.rotated" and entry["actor"] == {"role": "admin", "via": "cli"}
    assert (entry["old_key_id"], entry["new_key_id"]) == (old["key_id"], new["key_id"])
    assert entry["new_ed25519"] == new["ed25519"]

    # The running bridge, not restarted, names the new key and signs with it.
    assert await get(bridge, "/api/v1/audit/log-key") == {**new, "origin": old["origin"]}
    _, new_receipt = await grant_receipt(bridge)
    assert new_receipt["checkpoint"]["key_id"] == new["key_id"]
    await proves(bridge, token, new_receipt, new["ed25519"])
    # The receipt given out before still proves, under the old key.
    await proves(bridge, token, old_receipt, old["ed25519"])

    history = await get(bridge, "/api/v1/audit/log-keys")
    first, second = history["keys"]
    assert history["origin"] == old["origin"]
    assert (first["key_id"], first["ed25519"], first["rotation_index"]) == (
        old["key_id"],
        old["ed25519"],
        None,
    )
    assert (
        first["last_size"] == handover["size"]
        and first["first_size"] <= old_receipt["checkpoint"]["size"]
    )
    assert (second["key_id"], second["ed25519"], second["rotation_index"]) == (
        new["key_id"],
        new["ed25519"],
        rotated["index"],
    )
    assert second["first_size"] == second["last_size"] == new_receipt["checkpoint"]["size"]


async def test_the_export_verifies_from_the_old_key_across_the_rotation(
    bridge: Bridge, tmp_path: Path
) -> None:
    token = await bridge.token("auditor")
    old = await get(bridge, "/api/v1/audit/log-key")
    await grant_receipt(bridge)
    saved = await get(bridge, "/api/v1/audit/checkpoint", token)
    rotated = await rotate(bridge)
    await grant_receipt(bridge)
    (tmp_path / "note").write_text(await get(bridge, "/api/v1/audit/checkpoint/note", token))
    (tmp_path / "saved.json").write_text(json.dumps(saved))
    out = tmp_path / "log.jsonl"
    env = {"BRIDGE_AUDIT_TOKEN": token}
    status, text, err = await bridge_cli(
        None, "audit", "export", "--url", bridge.url, "--out", str(out), env=env
    )
    assert status == 0, text + err
    header = json.loads(out.read_bytes().splitlines()[0])
    assert header["log_key"] == {"key_id": old["key_id"], "ed25519": old["ed25519"]}
    assert header["head"]["key_id"] == rotated["new"]["key_id"]

    verify = ("audit", "verify", "--export", str(out))
    status, text, err = await bridge_cli(
        None,
        *verify,
        f"--log-key={old['ed25519']}",
        "--previous",
        str(tmp_path / "saved.json"),
        "--note",
        str(tmp_path / "note"),
    )
    assert status == 0 and text.startswith("intact:"), text + err
    assert "the note of size" in text
    status, text, _ = await bridge_cli(None, *verify, f"--log-key={rotated['new']['ed25519']}")
    assert status == 1 and "the export's log key is not the given log key" in text


def forged_by(key: SigningKey, lines: list[bytes]) -> list[bytes]:
    """``lines`` (an export cut short) ended as the holder of ``key`` would end them: a
    checkpoint of their entries signed by ``key``, also put in the header as the head."""
    entries = [json.loads(line)["entry"] for line in lines if line.startswith(b'{"entry"')]
    checkpoint: dict[str, Any] = {
        "key_id": key_hash(json.loads(lines[0])["origin"], bytes(key.verify_key)).hex(),
        "root": crypto.b64u_encode(merkle.root([merkle.leaf_hash(crypto.jcs(e)) for e in entries])),
        "size": len(entries),
        "time": "2026-12-07T12:00:00Z",
    }
    checkpoint["sig"] = crypto.sign_object(checkpoint, key)
    header = {**json.loads(lines[0]), "head": checkpoint}
    return [crypto.jcs(header) + b"\n", *lines[1:], crypto.jcs({"checkpoint": checkpoint}) + b"\n"]


@pytest.mark.parametrize("forgery", ["no hand-over", "no rotation entry"])
async def test_a_key_change_not_handed_over_by_the_old_key_fails(
    bridge: Bridge, tmp_path: Path, forgery: str
) -> None:
    """Whoever holds the new key (a server taken over after the rotation) cannot make the log
    change key other than where the old key signed over it."""
    token = await bridge.token("auditor")
    old = await get(bridge, "/api/v1/audit/log-key")
    await grant_receipt(bridge)
    rotated = await rotate(bridge)
    out = tmp_path / "log.jsonl"
    env = {"BRIDGE_AUDIT_TOKEN": token}
    status, text, err = await bridge_cli(
        None, "audit", "export", "--url", bridge.url, "--out", str(out), env=env
    )
    assert status == 0, text + err
    lines = out.read_bytes().splitlines(keepends=True)
    at = lines.index(crypto.jcs({"checkpoint": rotated["handover"]}) + b"\n")
    assert json.loads(lines[at - 1])["index"] == rotated["index"]
    new_key = SigningKey((bridge.data_dir / "log-key").read_bytes())
    if forgery == "no hand-over":  # the rotation logged, but no checkpoint of the old key on it
        forged = forged_by(new_key, lines[:at])
        reason = (
            f"checkpoint is signed by the new key {rotated['new']['key_id']} before a checkpoint"
            f" of the old key {old['key_id']} covers its rotation at index {rotated['index']}"
        )
    else:  # no rotation logged at all
        forged = forged_by(new_key, lines[: at - 1])
        reason = f"is not the log's '{old['key_id']}' (the key changes only by a log_key.rotated"
    assert verify_export(lines, log_key=old["ed25519"]).ok
    report = verify_export(forged, log_key=old["ed25519"])
    assert report.failure is not None and reason in report.failure.reason, report


async def test_rotate_log_without_a_log_key_makes_none(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    status, out, err = await bridge_cli(data, "keys", "rotate-log")
    assert status == 1 and out == "", out + err
    assert f"{data / 'log-key'} does not exist: there is no log key to rotate" in err
    assert not (data / "log-key").exists() and not (data / "log-keys").exists()
