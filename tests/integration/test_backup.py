"""A backup taken while the bridge serves, restored into a new installation that serves it.

On SQLite the backup is ``bridge db backup`` and the restore puts the file in place as the new
data directory's ``bridge.db``; on PostgreSQL it is ``pg_dump --format=custom`` and
``pg_restore`` into an empty database, with the flags docs/operations.md gives. Either way the
new data directory gets a copy of the log key and nothing else: the key is not in the database.
The restored bridge must hold the conversation as it stood at the backup (the victim resumes it
and her next message takes the next seq), sign with the same key, verify, and have the tree head
the original had when the backup was taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bridge.client import CounsellorClient, VictimClient
from harness import (
    Bridge,
    Node,
    audit_verify,
    backend,
    bridge_cli,
    driegesprek,
    http,
    staffed,
    state_is,
)


async def _run(*command: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()


async def _back_up(data_dir: Path, backup: Path) -> None:
    """Back up the installation in ``data_dir`` as an operator does, while it serves."""
    if backend.POSTGRES:
        url = backend.libpq_url(data_dir)
        await _run("pg_dump", "--format=custom", f"--file={backup}", f"--dbname={url}")
        return
    status, out, err = await bridge_cli(data_dir, "db", "backup", "--to", str(backup))
    assert status == 0, err
    assert "copied to" in out and "log key" in out
    assert _owner_only(backup)  # as readable as the database, no more


def _owner_only(path: Path) -> bool:
    return path.stat().st_mode & 0o777 == 0o600


async def _restore(backup: Path, data_dir: Path) -> None:
    """Restore ``backup`` as the database of the new installation in ``data_dir``."""
    if backend.POSTGRES:
        url = backend.libpq_url(data_dir, empty=True)
        flags = ("--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges")
        await _run("pg_restore", *flags, f"--dbname={url}", str(backup))
        return
    shutil.copyfile(backup, data_dir / "bridge.db")


async def _history(victim: VictimClient) -> list[tuple[int, str, str | None, Any]]:
    """``(seq, sender role, text, envelope)`` of every message of the victim's conversation."""
    found: list[tuple[int, str, str | None, Any]] = []
    while page := await victim.history(after_seq=found[-1][0] if found else 0, limit=500):
        found += [(m.seq, m.sender_role, m.text, m.envelope) for m in page]
    return found


async def _reloaded(bridge: Bridge, victim: VictimClient) -> VictimClient:
    """The victim's page loaded again at ``bridge``: her token and device key, from its storage,
    in a new client that connects and joins her conversation."""
    page = VictimClient(bridge.url)
    bridge.clients.append(page)
    page.keys, page.token, page.device_id = victim.keys, victim.token, victim.device_id
    page.conversation_id = victim.conversation_id
    await page.connect()
    await page.join()
    return page


async def _head(bridge: Bridge, token: str) -> dict[str, Any]:
    """The log's signed checkpoint of its whole tree, as the auditor reads it."""
    status, checkpoint = await http(bridge, "GET", "/api/v1/audit/checkpoint", token=token)
    assert status == 200, checkpoint
    return dict(checkpoint)


async def _log_key(bridge: Bridge) -> str:
    """The log's public key, which auditors hold from the start."""
    status, key = await http(bridge, "GET", "/api/v1/audit/log-key")
    assert status == 200, key
    return str(key["ed25519"])


async def _keep_writing(counsellor: CounsellorClient, cid: str, stop: asyncio.Event) -> list[int]:
    seqs: list[int] = []
    while not stop.is_set():
        seqs.append(await counsellor.send(cid, f"Tijdens de back-up {len(seqs)}.", care_only=True))
        await asyncio.sleep(0.01)  # leaves the shared cores to the backup itself
    return seqs


@pytest.mark.slow
async def test_a_backup_taken_while_serving_restores_into_a_bridge_that_serves_it(
    tmp_path: Path,
) -> None:
    bridge = await staffed(tmp_path / "data")
    await bridge.stop()
    node = Node(bridge.data_dir)
    bridge.port = node.port
    await node.start()
    fresh = tmp_path / "restored"
    fresh.mkdir()
    restored_node = Node(fresh, name="restored")
    restored = Bridge(
        fresh, port=restored_node.port, passwords=bridge.passwords, passphrases=bridge.passphrases
    )
    try:
        # A driegesprek: messages in both scopes, a grant, the officer, then a withdrawal.
        victim, counsellor, officer = await driegesprek(bridge)
        cid = victim.conversation_id
        await victim.send("Hij houdt mijn paspoort.")
        await counsellor.send(cid, "Dank je, we luisteren allebei.")
        await officer.send(cid, "Ik ben van de politie, je bent veilig hier.")
        await victim.send("Alleen voor Fier.", care_only=True)
        await victim.withdraw()
        await officer.next_event("bridge.state", where=state_is("ended", "withdrawn"))
        last_before = await victim.send("Ik wil nu alleen met Fier praten.")
        log_key = await _log_key(bridge)

        # The backup, while the server serves and the counsellor keeps writing.
        token = await bridge.token("auditor")
        at_backup = await _head(bridge, token)
        (tmp_path / "checkpoint.json").write_text(json.dumps(at_backup))
        stop = asyncio.Event()
        writing = asyncio.create_task(_keep_writing(counsellor, cid, stop))
        backup = tmp_path / "bridge.backup"
        await _back_up(bridge.data_dir, backup)
        stop.set()
        during = await writing
        assert during, "no message was answered while the backup ran"
        after = await _head(bridge, token)
        # Messages are no log entries: the tree head at the backup is the one before and after.
        assert (after["size"], after["root"]) == (at_backup["size"], at_backup["root"])
        # The original goes on; the backup must not have what follows.
        first_after = await victim.send("Na de back-up.")
        # What her page, reloaded with its token and device key, reads there now.
        original = await _history(await _reloaded(bridge, victim))

        # A fresh installation: the restored database and a copy of the log key, nothing else.
        shutil.copy2(bridge.data_dir / "log-key", fresh / "log-key")
        await _restore(backup, fresh)
        assert sorted(p.name for p in fresh.iterdir()) == sorted(
            ["log-key", "restored.toml"] + ([] if backend.POSTGRES else ["bridge.db"])
        )
        await restored_node.start()

        token = await restored.token("auditor")
        head = await _head(restored, token)
        assert (head["size"], head["root"], head["key_id"]) == (
            at_backup["size"],
            at_backup["root"],
            at_backup["key_id"],
        )
        status, report = await audit_verify(restored, restored_node.url)
        assert status == 0, report
        # With the original's log key and its checkpoint of the backup's moment, as an auditor.
        status, out, err = await bridge_cli(
            None,
            "audit",
            "verify",
            "--url",
            restored_node.url,
            f"--log-key={log_key}",
            "--previous",
            str(tmp_path / "checkpoint.json"),
            env={"BRIDGE_AUDIT_TOKEN": token},
        )
        assert status == 0, out + err
        assert f"intact: {at_backup['size']} entries" in out

        # Her page comes back to the restored bridge and reads the same, up to the backup.
        resumed = await _reloaded(restored, victim)
        assert resumed.bridge is not None and resumed.bridge["state"] == "ended"
        history = await _history(resumed)
        count = len(history)
        assert [seq for seq, *_ in history] == list(range(1, count + 1))
        assert history == original[:count]  # the same messages, byte for byte
        assert history[0][2] == "Hij houdt mijn paspoort."
        assert last_before <= count < first_after  # all sent before it began, none after it
        # A reloaded page no longer knows the removed officer's device: only its messages go unread.
        assert all(text is not None for _, role, text, _ in history if role != "officer")
        assert await resumed.send("Ik ben er weer.") == count + 1
    finally:
        await bridge.close_clients()
        await restored.close_clients()
        await asyncio.gather(node.stop(), restored_node.stop())
        backend.release(bridge.data_dir)
        backend.release(fresh)
    for server in (node, restored_node):
        assert "Traceback" not in server.errors(), server.errors()


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``, with the bytes of each file."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in root.rglob("*")
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("missing", "there is no database at"),
        ("postgresql", "back up PostgreSQL with pg_dump --format=custom"),
        ("not the bridge's", "is not a bridge database"),
        ("target exists", "exists already"),
    ],
)
async def test_a_backup_that_cannot_be_made_writes_nothing(
    tmp_path: Path, case: str, says: str
) -> None:
    source = tmp_path / "data" / "bridge.db"
    url = f"sqlite+aiosqlite:///{source}"
    if case == "postgresql":
        url = "postgresql+asyncpg://fier_bridge@127.0.0.1:1/fier_bridge"
    if case in ("not the bridge's", "target exists"):
        source.parent.mkdir()
        with contextlib.closing(sqlite3.connect(source)) as db:
            db.execute("CREATE TABLE notes (body TEXT)")
    target = tmp_path / "backups" / "bridge.backup"
    target.parent.mkdir()
    if case == "target exists":
        target.write_bytes(b"last night's backup")
    before = _tree(tmp_path)

    status, out, err = await bridge_cli(None, "db", "backup", "--to", str(target), "--db", url)
    assert status == 1, out + err
    assert err.startswith("bridge: ") and says in err, err
    assert "Traceback" not in err
    assert _tree(tmp_path) == before
