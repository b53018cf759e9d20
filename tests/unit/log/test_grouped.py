"""Appends grouped per transaction (bridge/log/writer.py): the tree head read once, the entries,
checkpoints and head written together when the session flushes.

A group must write exactly what its appends would have written one transaction each; a
transaction rolled back, or a savepoint, must take its entries back with it and leave the head
as it was; two writers at once must stay contiguous.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge import crypto
from bridge.log import merkle
from bridge.log.export import FORMAT, _lines
from bridge.log.logkey import LogKey, SignedCheckpoint
from bridge.log.tree import Tree
from bridge.log.verify import verify_export
from bridge.log.writer import Log, checkpoint_view
from bridge.store import log as stored
from bridge.store.db import Database, upgrade
from bridge.store.models import LogEntry, LogState, StoredCheckpoint
from harness import database_url

NOW = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
KEY = LogKey(SigningKey(bytes(range(32, 64))), "test/grouped")


async def database(folder: Path) -> Database:
    db = Database(database_url(folder))
    await upgrade(db)
    return db


async def append(session: AsyncSession, log: Log, n: int, **fields: object) -> int:
    return await log.append(session, "transcript.read", at=NOW, first_seq=n, last_seq=n, **fields)


async def contents(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], Any]:
    """Every entry row, every checkpoint row and the tree head, as stored."""
    async with db.session() as session:
        entries = [
            tuple(row)
            for row in await session.execute(
                select(
                    LogEntry.idx,
                    LogEntry.kind,
                    LogEntry.conversation_id,
                    LogEntry.entry,
                    LogEntry.leaf_hash,
                ).order_by(LogEntry.idx)
            )
        ]
        checkpoints = [
            (c.size, c.root, c.time, c.key_id, c.sig)
            for c in await session.scalars(select(StoredCheckpoint).order_by(StoredCheckpoint.id))
        ]
        state = await session.get_one(LogState, 1)
        head = (state.size, state.frontier, state.checkpoint_size, state.checkpoint_root)
    return entries, checkpoints, head


async def exported(db: Database, log: Log) -> list[bytes]:
    """The log as ``bridge audit export`` writes it, read from the database."""
    async with db.session() as session, session.begin():
        head = await log.checkpoint(session, NOW)
        rows = await stored.entries(session, 0, head["size"])
        signed = [checkpoint_view(c) for c in await stored.checkpoints(session, 0, 10_000)]
    header = {
        "format": FORMAT,
        "head": head,
        "origin": KEY.origin,
        "log_key": {"key_id": KEY.key_id, "ed25519": KEY.ed25519},
    }
    entries = [json.loads(text) for _, text in rows]
    before: list[SignedCheckpoint] = [c for c in signed if c != head]
    return [crypto.jcs(line) + b"\n" for line in _lines(header, entries, [*before, head])]


async def test_a_group_writes_what_appends_one_by_one_write(tmp_path: Path) -> None:
    single, grouped = await database(tmp_path / "single"), await database(tmp_path / "grouped")
    log = Log(KEY, checkpoint_every=100)
    for n in range(250):
        async with single.session() as session, session.begin():
            assert await append(session, log, n) == n
    indices: list[int] = []
    n = 0
    # Groups across the checkpoints at 100 and 200, one of them exactly up to 100.
    for size in (1, 7, 92, 150):
        async with grouped.session() as session, session.begin():
            for _ in range(size):
                indices.append(await append(session, log, n))
                n += 1
    assert indices == list(range(250))
    one_by_one, together = await contents(single), await contents(grouped)
    assert together == one_by_one
    entries, checkpoints, _ = together
    assert [size for size, *_ in checkpoints] == [100, 200]

    # The proofs over the grouped log lead to the roots its checkpoints signed.
    leaves = [crypto.b64u_decode(leaf) for *_, leaf in entries]
    tree = Tree(leaves)
    roots = {size: crypto.b64u_decode(root) for size, root, *_ in checkpoints}
    for index in (0, 99, 100, 150, 199):
        proof = tree.inclusion_proof(index, 200)
        merkle.verify_inclusion(index, 200, leaves[index], proof, roots[200])
    merkle.verify_consistency(100, 200, roots[100], roots[200], tree.consistency_proof(100, 200))
    report = verify_export(await exported(grouped, log), log_key=KEY.ed25519)
    assert report.ok and report.size == 250, report.failure
    for db in (single, grouped):
        await db.dispose()


async def test_a_rolled_back_group_leaves_no_entry_and_no_head_change(tmp_path: Path) -> None:
    db = await database(tmp_path)
    log = Log(KEY, checkpoint_every=10)
    async with db.session() as session, session.begin():
        for n in range(5):
            await append(session, log, n)
    before = await contents(db)
    async with db.session() as session:
        with pytest.raises(RuntimeError, match="the state change failed"):
            async with session.begin():
                for n in range(5, 30):  # past two checkpoints
                    await append(session, log, n)
                # A query flushes the group: some of it reached the database before the rollback.
                assert len(await stored.entries(session, 0, 100)) == 30
                raise RuntimeError("the state change failed")
        assert await contents(db) == before
        # The same session's next transaction reads the head again and goes on where it was.
        async with session.begin():
            assert await append(session, log, 5) == 5
    async with db.session() as session, session.begin():
        assert await append(session, log, 6) == 6
    entries, checkpoints, (size, frontier, *_) = await contents(db)
    assert [idx for idx, *_ in entries] == list(range(7)) and size == 7
    assert checkpoints == []
    leaves = [crypto.b64u_decode(leaf) for *_, leaf in entries]
    assert merkle.frontier_root([crypto.b64u_decode(n) for n in frontier]) == merkle.root(leaves)
    await db.dispose()


async def test_a_session_reads_the_head_again_in_each_transaction(tmp_path: Path) -> None:
    """A session kept over several transactions sees what other writers appended between them,
    and a transaction it closed without a commit leaves nothing for the next one to write."""
    db = await database(tmp_path)
    log = Log(KEY)
    async with db.session() as kept:
        async with kept.begin():
            assert await append(kept, log, 0) == 0
            held = await kept.get_one(LogState, 1)  # the session's copy of the head, kept
        async with db.session() as other, other.begin():
            assert await append(other, log, 1) == 1
        async with kept.begin():
            assert await append(kept, log, 2) == 2
        assert held.size == 3  # read again, not left at the 1 this session last saw
        await append(kept, log, 3)  # a transaction begun by the append itself...
        await kept.close()  # ...and closed without a commit
        async with kept.begin():  # a flush of something else
            kept.add(StoredCheckpoint(size=0, root="r", time="t", key_id="k", sig="s"))
    entries, _, head = await contents(db)
    assert [idx for idx, *_ in entries] == [0, 1, 2] and head[0] == 3
    await db.dispose()


async def test_a_transaction_reads_its_own_appends_and_its_receipt_covers_them(
    tmp_path: Path,
) -> None:
    db = await database(tmp_path)
    log = Log(KEY)
    async with db.session() as session, session.begin():
        first = await append(session, log, 0)
        second = await append(session, log, 1, conversation_id="c-1")
        assert [idx for idx, _ in await stored.entries(session, 0, 10)] == [first, second]
        receipt = await log.checkpoint(session, NOW)
        third = await append(session, log, 2)
        assert await stored.size(session) == 3
    assert (first, second, third) == (0, 1, 2) and receipt["size"] == 2
    _, checkpoints, head = await contents(db)
    assert checkpoints == [(2, receipt["root"], receipt["time"], KEY.key_id, receipt["sig"])]
    assert head[0] == 3 and head[2:] == (2, receipt["root"])
    await db.dispose()


async def test_a_savepoint_rolled_back_takes_back_its_appends_only(tmp_path: Path) -> None:
    db = await database(tmp_path)
    log = Log(KEY, checkpoint_every=3)
    async with db.session() as session, session.begin():
        assert await append(session, log, 0) == 0
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await append(session, log, 1)
                await append(session, log, 2)  # a checkpoint of 3, taken back too
                raise RuntimeError("the savepoint's change failed")
        assert await append(session, log, 1) == 1
        async with session.begin_nested():
            assert await append(session, log, 2) == 2
        assert await append(session, log, 3) == 3
    entries, checkpoints, (size, frontier, *_) = await contents(db)
    assert [json.loads(e)["first_seq"] for _, _, _, e, _ in entries] == [0, 1, 2, 3]
    assert size == 4 and [c[0] for c in checkpoints] == [3]
    leaves = [crypto.b64u_decode(leaf) for *_, leaf in entries]
    assert merkle.frontier_root([crypto.b64u_decode(n) for n in frontier]) == merkle.root(leaves)
    assert crypto.b64u_decode(checkpoints[0][1]) == merkle.root(leaves[:3])
    await db.dispose()


async def test_two_writers_appending_groups_at_once_stay_contiguous(tmp_path: Path) -> None:
    """Two nodes on one database (PostgreSQL in its pass), several transactions at once on
    each: the head's lock lets one group at a time through, so no index is taken twice."""
    nodes = [await database(tmp_path), Database(database_url(tmp_path))]
    log = Log(KEY, checkpoint_every=10)
    groups: list[list[int]] = []

    async def writer(db: Database, name: str) -> None:
        for t in range(8):
            async with db.session() as session, session.begin():
                group = [await append(session, log, t, writer=name) for _ in range(1 + t % 7)]
            groups.append(group)

    await asyncio.gather(*(writer(db, f"{i}.{w}") for i, db in enumerate(nodes) for w in range(3)))
    total = sum(len(group) for group in groups)
    for group in groups:  # a group's entries are one run of indices
        assert group == list(range(group[0], group[0] + len(group)))
    entries, checkpoints, (size, frontier, *_) = await contents(nodes[0])
    assert [idx for idx, *_ in entries] == list(range(total)) and size == total
    assert [c[0] for c in checkpoints] == list(range(10, total + 1, 10))
    leaves = [crypto.b64u_decode(leaf) for *_, leaf in entries]
    assert merkle.frontier_root([crypto.b64u_decode(n) for n in frontier]) == merkle.root(leaves)
    report = verify_export(await exported(nodes[1], log), log_key=KEY.ed25519)
    assert report.ok and report.size == total, report.failure
    for db in nodes:
        await db.dispose()
