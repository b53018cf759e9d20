"""``bridge audit export`` and ``bridge audit verify`` over the log of a real scripted
driegesprek: intact exports verify, and every tampering with one is caught."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from nacl.signing import SigningKey

from bridge.client import BridgeClient
from bridge.log import signed_note as notes
from bridge.log.verify import verify_export
from harness import Bridge, bridge_cli, driegesprek


async def run(*args: str, env_token: str | None = None) -> tuple[int, str]:
    """``bridge ARGS`` with no data directory: its exit status and its output (stdout, then
    stderr)."""
    env = {"BRIDGE_AUDIT_TOKEN": env_token} if env_token is not None else None
    status, out, err = await bridge_cli(None, *args, env=env)
    return status, out + err


async def scripted_log(bridge: Bridge) -> tuple[BridgeClient, str, str]:
    """A whole driegesprek (consent, join, messages, reads, pause, withdrawal, close); returns
    an auditor client, its token and the log key."""
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await counsellor.send(cid, "Rustig tempo, eenvoudige taal.", kind="needs_note")
    await victim.send("Ik wil iets vertellen.")
    await officer.send(cid, "Dank je.")
    await officer.history(cid)
    await victim.pause()
    await victim.resume()
    await counsellor.history(cid)
    await victim.withdraw()
    await victim.close()
    auditor = BridgeClient(bridge.url)
    bridge.clients.append(auditor)
    session = await auditor.request(
        "POST", "/api/v1/session", {"username": "auditor", "password": bridge.passwords["auditor"]}
    )
    key = await auditor.request("GET", "/api/v1/audit/log-key")
    return auditor, str(session["token"]), str(key["ed25519"])


def entry_positions(lines: list[bytes]) -> list[int]:
    return [n for n, line in enumerate(lines) if line.startswith(b'{"entry":')]


async def test_exported_log_of_a_driegesprek_verifies(bridge: Bridge, tmp_path: Path) -> None:
    _, token, log_key = await scripted_log(bridge)
    out = tmp_path / "log.jsonl"
    status, text = await run(
        "audit", "export", "--url", bridge.url, "--out", str(out), env_token=token
    )
    assert status == 0, text
    status, text = await run("audit", "verify", "--export", str(out), f"--log-key={log_key}")
    assert status == 0, text
    assert text.startswith("intact:")
    status, text = await run("audit", "verify", "--url", bridge.url, f"--token={token}")
    assert status == 0, text
    kinds = [
        json.loads(line)["entry"]["kind"]
        for line in out.read_bytes().splitlines()
        if line.startswith(b'{"entry":')
    ]
    for kind in (
        "conversation.started",
        "consent.requested",
        "consent.granted",
        "officer.joined",
        "transcript.read",
        "bridge.paused",
        "consent.withdrawn",
        "officer.removed",
        "conversation.closed",
    ):
        assert kind in kinds


async def test_every_tampering_with_the_export_is_detected(bridge: Bridge, tmp_path: Path) -> None:
    """Every single-byte change of an entry line, every dropped entry, every swap of two
    entries and every truncation fails, with the first bad index named."""
    _, token, log_key = await scripted_log(bridge)
    out = tmp_path / "log.jsonl"
    status, text = await run(
        "audit", "export", "--url", bridge.url, "--out", str(out), env_token=token
    )
    assert status == 0, text
    lines = out.read_bytes().splitlines(keepends=True)
    positions = entry_positions(lines)
    assert len(positions) >= 20

    def failure(changed: list[bytes]):  # type: ignore[no-untyped-def]
        report = verify_export(changed, log_key=log_key)
        assert report.failure is not None
        return report.failure

    assert verify_export(lines, log_key=log_key).ok
    for index, position in enumerate(positions):
        line = lines[position]
        for offset in range(len(line) - 1):  # every byte but the line end
            changed = bytearray(line)
            changed[offset] ^= 0x01
            bad = failure([*lines[:position], bytes(changed), *lines[position + 1 :]])
            assert bad.index is not None and bad.index <= index, (index, offset, bad)
        bad = failure([*lines[:position], *lines[position + 1 :]])
        assert bad.index is not None and bad.index <= index, (index, bad)
    for i, first in enumerate(positions):
        for second in positions[i + 1 :]:
            swapped = list(lines)
            swapped[first], swapped[second] = swapped[second], swapped[first]
            bad = failure(swapped)
            assert bad.index is not None and bad.index <= i, (first, second, bad)
    for kept in range(len(lines)):
        failure(lines[:kept])
    # And the command itself says so, naming the index.
    changed = bytearray(lines[positions[5]])
    changed[20] ^= 0x01
    (tmp_path / "bad.jsonl").write_bytes(
        b"".join([*lines[: positions[5]], bytes(changed), *lines[positions[5] + 1 :]])
    )
    status, text = await run(
        "audit", "verify", "--export", str(tmp_path / "bad.jsonl"), f"--log-key={log_key}"
    )
    assert status == 1
    assert "NOT INTACT at index" in text


async def test_a_saved_checkpoint_must_still_agree(bridge: Bridge, tmp_path: Path) -> None:
    auditor, token, log_key = await scripted_log(bridge)
    saved = await auditor.request("GET", "/api/v1/audit/checkpoint", token=token)
    (tmp_path / "saved.json").write_text(json.dumps(saved))
    await driegesprek(bridge)  # the log grows
    out = tmp_path / "later.jsonl"
    status, text = await run(
        "audit", "export", "--url", bridge.url, "--out", str(out), env_token=token
    )
    assert status == 0, text
    # Keys and tokens are b64u and may start with "-": always give them with "=".
    args = ("audit", "verify", "--export", str(out), f"--log-key={log_key}")
    status, text = await run(*args, "--previous", str(tmp_path / "saved.json"))
    assert status == 0, text
    forged = {**saved, "root": saved["root"][::-1]}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    status, text = await run(*args, "--previous", str(tmp_path / "forged.json"))
    assert status == 1, text
    status, text = await run(*args[:-1], f"--log-key={'A' * 43}")
    assert status == 1 and "NOT INTACT" in text


@pytest.mark.parametrize("witnessed", [True, False])
async def test_witness_cosignatures_are_checked(
    bridge: Bridge, tmp_path: Path, witnessed: bool
) -> None:
    _, token, log_key = await scripted_log(bridge)
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{bridge.url}/api/v1/audit/checkpoint/note",
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 200
        note = await response.text()
    witness = SigningKey.generate()
    other = SigningKey.generate()
    signer = witness if witnessed else other
    cosigned = notes.cosign_note(note, "witness.example/w1", signer, 1_763_800_000)
    (tmp_path / "checkpoint.note").write_text(cosigned)
    witness_vkey = notes.vkey("witness.example/w1", bytes(witness.verify_key), cosignature=True)
    status, text = await run(
        "audit",
        "verify",
        "--url",
        bridge.url,
        f"--token={token}",
        f"--log-key={log_key}",
        "--note",
        str(tmp_path / "checkpoint.note"),
        f"--witness-key={witness_vkey}",
    )
    assert (status == 0) is witnessed, text


async def test_keys_init_log_makes_the_key_once(tmp_path: Path) -> None:
    env_dir = tmp_path / "data"
    for expected in (0, 1):
        status, out, err = await bridge_cli(env_dir, "keys", "init-log")
        assert status == expected, out + err
    key_file = env_dir / "log-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_bytes()) == 32
