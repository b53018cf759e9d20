"""The Merkle log on a real database: incremental tree head, checkpoints, the log key file."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from sqlalchemy import select

from bridge import crypto
from bridge.log import merkle
from bridge.log.logkey import LogKey, create_log_key, load_or_create_log_key
from bridge.log.writer import Log, run_checkpoints
from bridge.store.db import Database, upgrade
from bridge.store.models import LogEntry, LogState, StoredCheckpoint
from harness import database_url

NOW = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
KEY = LogKey(SigningKey(bytes(range(32))), "test/log")


async def database(tmp_path: Path) -> Database:
    db = Database(database_url(tmp_path))
    await upgrade(db)
    return db


async def append(db: Database, log: Log, count: int) -> None:
    for n in range(count):
        async with db.session() as session, session.begin():
            await log.append(session, "transcript.read", at=NOW, first_seq=n, last_seq=n)


async def test_tree_head_is_kept_incrementally_and_right(tmp_path: Path) -> None:
    db = await database(tmp_path)
    log = Log(KEY, checkpoint_every=100)
    await append(db, log, 250)
    async with db.session() as session:
        leaves = [
            crypto.b64u_decode(h)
            for h in await session.scalars(select(LogEntry.leaf_hash).order_by(LogEntry.idx))
        ]
        entries = [
            json.loads(e)
            for e in await session.scalars(select(LogEntry.entry).order_by(LogEntry.idx))
        ]
        state = await session.get_one(LogState, 1)
        checkpoints = (
            await session.scalars(select(StoredCheckpoint).order_by(StoredCheckpoint.id))
        ).all()
    await db.dispose()
    assert state.size == 250 == len(leaves)
    frontier = [crypto.b64u_decode(node) for node in state.frontier]
    assert merkle.frontier_root(frontier) == merkle.root(leaves)
    assert leaves == [merkle.leaf_hash(crypto.jcs(entry)) for entry in entries]
    # A checkpoint every 100 entries, each the signed root of the entries before it.
    assert [c.size for c in checkpoints] == [100, 200]
    for checkpoint in checkpoints:
        view = {
            "size": checkpoint.size,
            "root": checkpoint.root,
            "time": checkpoint.time,
            "key_id": checkpoint.key_id,
        }
        crypto.verify_object(view, checkpoint.sig, KEY.ed25519)
        assert crypto.b64u_decode(checkpoint.root) == merkle.root(leaves[: checkpoint.size])
    # Every entry names the latest checkpoint before it.
    for index, entry in enumerate(entries):
        before = [c for c in checkpoints if c.size <= index]
        named = None if not before else {"size": before[-1].size, "root": before[-1].root}
        assert entry["prev_checkpoint"] == named


async def test_checkpoint_on_demand_signs_only_when_behind(tmp_path: Path) -> None:
    db = await database(tmp_path)
    log = Log(KEY)
    await append(db, log, 3)
    async with db.session() as session, session.begin():
        first = await log.checkpoint(session, NOW)
    async with db.session() as session, session.begin():
        again = await log.checkpoint(session, NOW)
        count = len((await session.scalars(select(StoredCheckpoint))).all())
    await db.dispose()
    assert first == again and first["size"] == 3 and count == 1


async def test_a_checkpoint_is_signed_in_time_while_entries_arrive(tmp_path: Path) -> None:
    db = await database(tmp_path)
    log = Log(KEY)
    await append(db, log, 2)
    task = asyncio.create_task(run_checkpoints(db, log, lambda: NOW, period=0.05))
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            async with db.session() as session:
                if (await session.get_one(LogState, 1)).checkpoint_size == 2:
                    break
    finally:
        task.cancel()
    async with db.session() as session:
        sizes = [c.size for c in await session.scalars(select(StoredCheckpoint))]
    await db.dispose()
    assert sizes == [2]


async def test_two_nodes_checkpointing_at_once_sign_one_checkpoint(tmp_path: Path) -> None:
    """Every node's checkpoint loop runs; the tree head's lock lets one of them sign."""
    nodes = [await database(tmp_path), Database(database_url(tmp_path))]
    log = Log(KEY)
    await append(nodes[0], log, 5)

    async def behind(db: Database) -> bool:
        async with db.session() as session, session.begin():
            return await log.checkpoint_if_behind(session, NOW)

    for round in range(10):
        await append(nodes[round % 2], log, 1)
        signed = await asyncio.gather(*(behind(db) for db in nodes for _ in range(4)))
        assert signed.count(True) == 1
    async with nodes[1].session() as session:
        sizes = [c.size for c in await session.scalars(select(StoredCheckpoint))]
    for db in nodes:
        await db.dispose()
    assert sizes == list(range(6, 16))


@pytest.mark.parametrize(
    "fields",
    [
        {"n": 2**53 - 1, "m": -(2**53 - 1), "flag": False, "none": None, "seqs": (1, 2)},
        {"nested": {"b": [1, {"a": "x", "A": []}], "a": {}}},
        {"reason": 'caf\u00e9 \u2028 "quoted" \\ \n\t\x01'},  # non-ASCII, escapes
        {"keys": {"\u00e9": 1, "z": 2, "\U0001f600": 3, "\ufb01": 4}},  # UTF-16 order
    ],
)
async def test_an_entry_is_the_jcs_of_what_was_appended(
    tmp_path: Path, fields: dict[str, object]
) -> None:
    db = await database(tmp_path)
    async with db.session() as session, session.begin():
        await Log(KEY).append(session, "transcript.read", at=NOW, **fields)
    async with db.session() as session:
        stored = await session.get_one(LogEntry, 0)
    await db.dispose()
    expected = crypto.jcs(
        {"kind": "transcript.read", "at": "2026-11-22T14:00:00Z", "prev_checkpoint": None, **fields}
    )
    assert stored.entry.encode() == expected
    assert crypto.b64u_decode(stored.leaf_hash) == merkle.leaf_hash(expected)


@pytest.mark.parametrize("value", [0.5, 2**53, -(2**53), {1: "a"}, {"a": [1.0]}])
async def test_what_jcs_cannot_encode_is_refused_and_appends_nothing(
    tmp_path: Path, value: object
) -> None:
    db = await database(tmp_path)
    log = Log(KEY)
    async with db.session() as session, session.begin():
        with pytest.raises(crypto.EncodingError):
            await log.append(session, "transcript.read", at=NOW, value=value)
        assert await log.append(session, "transcript.read", at=NOW) == 0
    async with db.session() as session:
        assert (await session.get_one(LogState, 1)).size == 1
    await db.dispose()


def test_log_key_file_is_private_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "log-key"
    key = create_log_key(path, "test/log")
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_log_key(path, "test/log").ed25519 == key.ed25519
    with pytest.raises(FileExistsError):
        create_log_key(path, "test/log")
    path.chmod(0o644)
    with pytest.raises(PermissionError):
        load_or_create_log_key(path, "test/log")
