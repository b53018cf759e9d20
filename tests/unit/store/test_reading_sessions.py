"""Sessions that only read (bridge/store/db.py, ``Database.reading``): on SQLite they have
connections of their own, see the last committed state while the writer holds its transaction,
and cannot write; and a login checks its password holding no connection, then confirms the
account under the writer's lock (bridge/domain/auth.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nacl import pwhash
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from bridge.domain.auth import check_password, hash_password, still_valid
from bridge.errors import Unauthenticated
from bridge.store.db import Database, migrated
from bridge.store.models import Account
from harness import backend, database_url

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
COST = {"opslimit": pwhash.argon2id.OPSLIMIT_MIN, "memlimit": pwhash.argon2id.MEMLIMIT_MIN}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated(database_url(tmp_path)) as db:
        async with db.session() as session, session.begin():
            session.add(
                Account(
                    id="a-1",
                    username="c",
                    password_hash=await hash_password("right horse", **COST),
                    role="counsellor",
                    org="fier",
                    region=None,
                    gender=None,
                    created_at=NOW,
                )
            )
        yield db


async def test_a_reader_sees_the_last_commit_while_the_writer_holds_its_transaction(
    db: Database,
) -> None:
    async with db.session() as writer, writer.begin():
        await writer.execute(update(Account).where(Account.id == "a-1").values(region="r9"))
        await writer.flush()
        # The writer's transaction is open and holds its lock; a reader neither waits for it
        # nor sees what it has not committed.
        async with db.reading() as reader:
            seen = await asyncio.wait_for(
                reader.scalar(select(Account.region).where(Account.id == "a-1")), timeout=5
            )
        assert seen is None
    async with db.reading() as reader:
        assert await reader.scalar(select(Account.region).where(Account.id == "a-1")) == "r9"


async def test_a_reading_session_cannot_write_on_sqlite(db: Database) -> None:
    if backend.POSTGRES:
        # PostgreSQL needs no readers of their own: its readers and writers share one pool.
        assert db.engines == (db.engine,)
        return
    assert db.engines == (db.engine, db.read_engine)
    async with db.reading() as reader:
        with pytest.raises(OperationalError, match="readonly"):
            await reader.execute(update(Account).values(region="r1"))
    async with db.reading() as reader:
        assert await reader.scalar(select(Account.region)) is None


@pytest.mark.parametrize("change", ["disabled", "password"])
async def test_a_login_refused_when_the_account_changes_during_its_password_check(
    db: Database, change: str
) -> None:
    account = await check_password(db, "c", "right horse", **COST)
    changed = (
        {"disabled": True}
        if change == "disabled"
        else {"password_hash": await hash_password("another horse", **COST)}
    )
    async with db.session() as session, session.begin():
        await session.execute(update(Account).values(**changed))
    async with db.session() as session, session.begin():
        with pytest.raises(Unauthenticated):
            await still_valid(session, account)


async def test_a_login_confirmed_when_nothing_changed(db: Database) -> None:
    account = await check_password(db, "c", "right horse", **COST)
    async with db.session() as session, session.begin():
        await still_valid(session, account)
    with pytest.raises(Unauthenticated):
        await check_password(db, "c", "wrong horse", **COST)
