"""The database engine, sessions and migrations.

SQLite (aiosqlite, WAL) is the embedded default; any SQLAlchemy async URL works. On SQLite every
session goes through one connection, so transactions are serialised in the process and never
fail with "database is locked"; PostgreSQL uses a normal pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
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

__all__ = ["Database", "downgrade", "migrated", "upgrade"]


class Database:
    """An engine and its session factory; callers own ``async with session.begin()``."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {}
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine, sqlite_synchronous)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def ping(self) -> None:
        """One round trip to the database; raises if it cannot be reached."""
        async with self.session() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine, synchronous: str) -> None:
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
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


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
