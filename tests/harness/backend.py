"""The database the tests run the bridge on: SQLite (the embedded default) or PostgreSQL.

``BRIDGE_TEST_DATABASE=postgresql`` runs the suite on a real PostgreSQL (:mod:`harness.postgres`),
started once for the run; unset, on SQLite. An installation is named by its data directory: the
same directory gives the same database, to the bridge in the test's loop, to ``bridge serve``
and ``bridge`` commands started as processes, and to the reads of :func:`query` and
:func:`db_rows`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from harness.postgres import Cluster

__all__ = [
    "POSTGRES",
    "database_url",
    "db_rows",
    "execute",
    "libpq_url",
    "query",
    "release",
    "start_backend",
    "stop_backend",
]

POSTGRES = os.environ.get("BRIDGE_TEST_DATABASE", "sqlite") == "postgresql"
_cluster: Cluster | None = None


def start_backend() -> None:
    """Start the run's PostgreSQL if the run asks for it (once, before the first test)."""
    global _cluster
    if POSTGRES and _cluster is None:
        _cluster = Cluster()
        _cluster.start()


def stop_backend() -> None:
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


def release(data_dir: Path) -> None:
    """The installation in ``data_dir`` is done with: drop its PostgreSQL database. (A SQLite
    file goes with the test's temporary directory; the cluster, with all it holds, at the end.)"""
    if _cluster is not None:
        _cluster.drop(data_dir)


def _pg() -> Cluster:
    assert _cluster is not None, "PostgreSQL was not started for this run"
    return _cluster


def database_url(data_dir: Path, *, empty: bool = False, sync: bool = False) -> str:
    """The SQLAlchemy URL of the installation in ``data_dir``: migrated already on PostgreSQL
    unless ``empty`` (a SQLite file starts empty); with ``sync``, for a synchronous engine."""
    if POSTGRES:
        name = _pg().database_for(data_dir, empty=empty)
        return _pg().url(name, "postgresql+psycopg" if sync else "postgresql+asyncpg")
    driver = "sqlite" if sync else "sqlite+aiosqlite"
    return f"{driver}:///{(data_dir / 'bridge.db').resolve()}"


def libpq_url(data_dir: Path, *, empty: bool = False) -> str:
    """The installation's PostgreSQL database as libpq takes it (``pg_dump``, ``pg_restore``);
    made as :func:`database_url` makes it, ``empty`` for a restore."""
    return _pg().url(_pg().database_for(data_dir, empty=empty), "postgresql")


@contextlib.contextmanager
def _connect(data_dir: Path, *, read_only: bool) -> Iterator[Any]:
    if POSTGRES:
        with psycopg.connect(libpq_url(data_dir), autocommit=True) as connection:
            yield connection
        return
    path = (data_dir / "bridge.db").resolve()
    target = path.as_uri() + "?mode=ro" if read_only else str(path)
    with contextlib.closing(
        sqlite3.connect(target, uri=read_only, timeout=10, isolation_level=None)
    ) as connection:
        yield connection


def _sql(sql: str) -> str:
    # The tests write SQLite's ``?``; psycopg takes ``%s``.
    return sql.replace("?", "%s") if POSTGRES else sql


def query(data_dir: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """The rows of one SQL query on the bridge's database in ``data_dir``, read only."""
    with _connect(data_dir, read_only=True) as db:
        return [tuple(row) for row in db.execute(_sql(sql), params).fetchall()]


def execute(data_dir: Path, sql: str) -> None:
    """One statement on the bridge's database, committed at once (to break it on purpose)."""
    with _connect(data_dir, read_only=False) as db:
        db.execute(sql)


def db_rows(data_dir: Path, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (read in one transaction); ``tables`` must be among them."""
    with _connect(data_dir, read_only=True) as db:
        if POSTGRES:
            db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            listed = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        else:
            db.execute("BEGIN")
            listed = "SELECT name FROM sqlite_master WHERE type = 'table'"
            listed += " AND name NOT LIKE 'sqlite_%'"
        names = [row[0] for row in db.execute(listed).fetchall()]
        assert set(tables) <= set(names), names
        # PostgreSQL keeps no insertion order: rows are compared as a sorted list.
        rows = {
            name: sorted(
                (tuple(row) for row in db.execute(f'SELECT * FROM "{name}"').fetchall()), key=repr
            )
            for name in names
        }
        db.execute("COMMIT")
    return rows
