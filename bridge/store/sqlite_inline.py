"""aiosqlite connections whose quick calls run on the event loop, not on the connection's thread.

aiosqlite hands every call (a cursor, a statement, its rows, the commit) to the connection's own
thread and wakes the event loop when it is done. On a busy loop each hand-over waits for the
loop's next turn, several milliseconds when it has hundreds of sockets to serve, so a
transaction held SQLite's one write lock for a few turns while its statements took microseconds
on pages SQLite already had in memory: the writer's connection was busy all the time doing
little, and setting conversations up queued behind it.

Here the calls that do not wait run in place: statements and their rows, ``BEGIN`` and
rollback. What may wait goes to the thread, so the loop is never stopped for long: a call that
finds another connection's lock (a command-line tool, a backup) waits for it there, up to
``BUSY_WAIT_MS``; the commit with its fsync goes there (and while it runs the loop takes the
messages that the next group commit will hold, bridge/domain/group_commit.py); and so does
anything else aiosqlite does (connecting, closing, a backup, checkpoints).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite

__all__ = ["BUSY_WAIT_MS", "InlineConnection", "connect"]

BUSY_WAIT_MS = 10_000  # how long a call waits, on the thread, for another connection's lock

# sqlite3's own methods that only run SQL or read rows, and aiosqlite's helper made of two.
_STATEMENTS = frozenset(
    {
        (aiosqlite.Connection, "_execute_fetchall"),
        (sqlite3.Connection, "cursor"),
        (sqlite3.Connection, "execute"),
        (sqlite3.Connection, "executemany"),
        (sqlite3.Connection, "rollback"),
        (sqlite3.Cursor, "execute"),
        (sqlite3.Cursor, "executemany"),
        (sqlite3.Cursor, "fetchone"),
        (sqlite3.Cursor, "fetchmany"),
        (sqlite3.Cursor, "fetchall"),
        (sqlite3.Cursor, "close"),
    }
)
# Statements that wait on the disk however quick the lock: a commit's fsync, a checkpoint.
_SLOW = ("COMMIT", "END", "PRAGMA WAL_CHECKPOINT", "VACUUM")


def _in_place(fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
    owner = getattr(fn, "__self__", None)
    kind = aiosqlite.Connection if isinstance(owner, aiosqlite.Connection) else type(owner)
    if (kind, getattr(fn, "__name__", "")) not in _STATEMENTS:
        return False
    sql = args[0] if args and isinstance(args[0], str) else ""
    # The head alone: a batch's multi-row statement is long, and this runs for every call.
    return not sql[:32].lstrip().upper().startswith(_SLOW)


def _busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs its quick calls in place (see the module). Its own
    busy timeout is 0: a call in place never waits for a lock, it is retried on the thread."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if not _in_place(fn, args):
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
        # Nothing was done (SQLite's "busy" undoes the statement): wait for the lock there.
        return await super()._execute(self._waiting, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    def _waiting(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_WAIT_MS}")
        try:
            return fn(*args, **kwargs)
        finally:
            self._conn.execute("PRAGMA busy_timeout=0")


async def connect(path: str) -> InlineConnection:
    """An open connection to the SQLite file at ``path``. Its statements run on the loop's
    thread and the rest on the connection's, hence ``check_same_thread=False`` (sqlite3 is
    built serialised, and a connection is used by one session at a time)."""
    connection = InlineConnection(
        partial(sqlite3.connect, path, timeout=0, check_same_thread=False), iter_chunk_size=64
    )
    connection._thread.daemon = True  # as SQLAlchemy's dialect does: no hang at exit
    await connection
    return connection
