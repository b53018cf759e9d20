"""The database engine, sessions and migrations.

SQLite (aiosqlite, WAL) is the embedded default; any SQLAlchemy async URL works. On SQLite every
session that may write goes through one connection, so transactions are serialised in the process
and never fail with "database is locked"; sessions that only read (:meth:`Database.reading`) have
connections of their own, as WAL lets readers work beside the writer on the last committed state
without taking its lock. PostgreSQL uses a normal pool for both.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bridge.store import sqlite_inline

__all__ = ["Database", "downgrade", "migrated", "upgrade"]

READERS = 4  # SQLite connections for reading sessions, each with aiosqlite's thread


class Database:
    """An engine and its session factory; callers own ``async with session.begin()``."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if not self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(url)
            self.read_engine = self.engine
        else:
            path = url.split("///", 1)[1] if "///" in url else ""
            one = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
            if not path or path == ":memory:":
                # A database private to its one connection: readers share it.
                self.engine = self.read_engine = create_async_engine(url, **one)
            else:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                connect = partial(sqlite_inline.connect, path)
                self.engine = create_async_engine(url, async_creator=connect, **one)
                self.read_engine = create_async_engine(
                    url, async_creator=connect, **(one | {"pool_size": READERS})
                )
                _configure_sqlite(self.read_engine, sqlite_synchronous, writer=False)
            _configure_sqlite(self.engine, sqlite_synchronous, writer=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    def session(self) -> AsyncSession:
        return self.sessions()

    def reading(self) -> AsyncSession:
        """A session for reads only, seeing one committed state (on SQLite a write raises)."""
        return self.read_sessions()

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """The writers' engine, and the readers' where it is another."""
        if self.read_engine is self.engine:
            return (self.engine,)
        return (self.engine, self.read_engine)

    async def ping(self) -> None:
        """One round trip to the database; raises if it cannot be reached."""
        async with self.session() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()


def _configure_sqlite(engine: AsyncEngine, synchronous: str, *, writer: bool) -> None:
    if synchronous not in ("NORMAL", "FULL", "EXTRA"):
        raise ValueError("sqlite_synchronous must be NORMAL, FULL or EXTRA")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is switched off so that SQLAlchemy's BEGIN is the
        # real start of a transaction (the SQLAlchemy "serializable isolation" recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not writer:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    # The writer takes the write lock at BEGIN, so a transaction never fails on upgrading its
    # read lock; a reader's deferred BEGIN takes a snapshot at its first read and no lock.
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("bridge.store") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate the database to the newest schema (or ``revision``), on the running loop."""
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), revision))


async def downgrade(db: Database, revision: str) -> None:
    """Migrate the database back to ``revision`` (``base``: no tables), on the running loop."""
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(_alembic_config(c), revision))


@contextlib.asynccontextmanager
async def migrated(url: str, *, sqlite_synchronous: str = "FULL") -> AsyncIterator[Database]:
    """The database at ``url``, migrated to the newest schema, for one command; disposed after."""
    db = Database(url, sqlite_synchronous=sqlite_synchronous)
    try:
        await upgrade(db)
        yield db
    finally:
        await db.dispose()
