"""An online copy of the SQLite database, for ``bridge db backup``.

SQLite's backup API copies the database page by page inside one read transaction, so the copy is
the database as it stood at one commit, WAL included, while ``bridge serve`` keeps writing (in WAL
mode a reader does not block the writer). PostgreSQL is backed up with ``pg_dump -Fc`` instead
(docs/operations.md). The log key is not in the database: it is carried separately.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bridge.errors import BridgeError

__all__ = ["backup_sqlite"]


def _sqlite_path(url: str) -> Path:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BridgeError("the database URL cannot be read") from None
    if parsed.get_backend_name() != "sqlite":
        raise BridgeError(
            "bridge db backup copies a SQLite database only; back up PostgreSQL with "
            "pg_dump --format=custom and restore it with pg_restore (docs/operations.md)"
        )
    if not parsed.database or parsed.database == ":memory:":
        raise BridgeError("the SQLite database URL names no file")
    return Path(parsed.database)


def backup_sqlite(url: str, target: Path) -> str:
    """Copy the SQLite database of ``url`` to the new file ``target`` (mode 600) while it may be
    in use; returns the schema revision of the copy. Nothing is written unless it succeeds."""
    source = _sqlite_path(url)
    if not source.is_file():
        raise BridgeError(f"there is no database at {source}")
    if target.exists():
        raise BridgeError(f"{target} exists already; a backup never overwrites a file")
    if not target.parent.is_dir():
        raise BridgeError(f"there is no directory {target.parent}")
    # mode=rw: a file that vanished meanwhile is an error, never a new empty database.
    with contextlib.closing(
        sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=10)
    ) as db:
        # Written beside the target under a temporary name (mkstemp makes it mode 600) and
        # renamed only when complete, so a failed backup leaves no file that looks like one.
        fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        try:
            with contextlib.closing(sqlite3.connect(partial)) as copy:
                db.backup(copy)  # all pages in one step: one read transaction, one commit's state
                revision = _revision(copy, source)
            with open(partial, "rb") as written:
                os.fsync(written.fileno())
            os.replace(partial, target)
        except (sqlite3.Error, OSError) as exc:
            raise BridgeError(f"the backup failed, nothing was kept: {exc}") from None
        finally:
            Path(partial).unlink(missing_ok=True)  # gone already once renamed into place
    return revision


def _revision(copy: sqlite3.Connection, source: Path) -> str:
    """The copy's schema revision; a database the bridge never migrated has none."""
    try:
        [(revision,)] = copy.execute("SELECT version_num FROM alembic_version").fetchall()
    except (sqlite3.DatabaseError, ValueError):
        raise BridgeError(f"{source} is not a bridge database") from None
    return str(revision)
