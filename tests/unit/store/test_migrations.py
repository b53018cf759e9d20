"""The Alembic migrations build exactly the schema the models describe, and go back and forth
on the database the run uses (SQLite, or PostgreSQL with ``BRIDGE_TEST_DATABASE``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from nacl.signing import SigningKey
from sqlalchemy import create_engine, inspect

from bridge.crypto import b64u_decode, b64u_encode, sha256
from bridge.log.logkey import LogKey
from bridge.log.writer import Log
from bridge.store import log as log_rows
from bridge.store.db import Database, downgrade, upgrade
from bridge.store.models import Base
from harness import database_url, query

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _schema_differences(data_dir: Path) -> list[object]:
    engine = create_engine(database_url(data_dir, sync=True))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences: list[object] = compare_metadata(context, Base.metadata)
    engine.dispose()
    return differences


def _tables(data_dir: Path) -> set[str]:
    engine = create_engine(database_url(data_dir, sync=True))
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


async def test_migrated_database_matches_the_models(tmp_path: Path) -> None:
    db = Database(database_url(tmp_path, empty=True))
    await upgrade(db)
    await db.dispose()
    assert _schema_differences(tmp_path) == []


async def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    db = Database(database_url(tmp_path, empty=True))
    await upgrade(db)
    await downgrade(db, "base")
    assert _tables(tmp_path) <= {"alembic_version"}
    await upgrade(db)
    await db.dispose()
    assert _schema_differences(tmp_path) == []


async def test_log_survives_a_downgrade_and_upgrade(tmp_path: Path) -> None:
    """Back to the first schema the entries keep a hash chain that verifies; up again, the tree
    head is the one before, so a receipt given out still proves."""
    db = Database(database_url(tmp_path, empty=True))
    await upgrade(db)
    log = Log(LogKey(SigningKey(bytes(range(32))), "test/log"), checkpoint_every=3)
    for n in range(7):
        async with db.session() as session, session.begin():
            await log.append(session, "transcript.read", at=NOW, first_seq=n, last_seq=n)
    [(frontier_before,)] = query(tmp_path, "SELECT frontier FROM log_state")

    await downgrade(db, "0001")
    rows = query(tmp_path, "SELECT leaf_hash, chain_hash FROM log_entries ORDER BY idx")
    assert len(rows) == 7
    chain = b64u_encode(sha256(b""))
    for leaf, stored in rows:
        chain = b64u_encode(sha256(chain.encode() + b64u_decode(leaf)))
        assert stored == chain
    assert "checkpoints" not in _tables(tmp_path) and "log_state" not in _tables(tmp_path)

    await upgrade(db)
    [(frontier_after,)] = query(tmp_path, "SELECT frontier FROM log_state")
    assert frontier_after == frontier_before
    async with db.session() as session:
        assert await log_rows.size(session) == 7
    await db.dispose()
    assert _schema_differences(tmp_path) == []
