"""SQLite connections that run their quick calls on the event loop (bridge/store/sqlite_inline.py):
statements in place, the commit on the connection's thread, and a lock held by another
connection waited for on that thread while the loop goes on."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from bridge.store import sqlite_inline


class Turns:
    """Counts the event loop's turns while it runs: each one a chance for other work."""

    def __init__(self, pause: float) -> None:
        self.count = 0
        self._task = asyncio.create_task(self._run(pause))

    async def _run(self, pause: float) -> None:
        while True:
            await asyncio.sleep(pause)
            self.count += 1

    def stop(self) -> None:
        self._task.cancel()


async def test_statements_run_in_place_and_the_commit_is_durable(tmp_path: Path) -> None:
    path = str(tmp_path / "t.db")
    connection = await sqlite_inline.connect(path)
    try:
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("CREATE TABLE t (n INTEGER)")
        await connection.execute("BEGIN IMMEDIATE")
        turns = Turns(pause=0)
        await asyncio.sleep(0)
        before = turns.count
        for n in range(50):
            await connection.execute("INSERT INTO t VALUES (?)", (n,))
        rows = await connection.execute_fetchall("SELECT count(*) FROM t", ())
        # Fifty statements and a read, and the loop did not turn once: none left the loop.
        assert turns.count == before
        await connection.commit()
        turns.stop()
    finally:
        await connection.close()
    assert list(rows) == [(50,)]
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (50,)


async def test_a_lock_held_elsewhere_is_waited_for_on_the_thread(tmp_path: Path) -> None:
    path = str(tmp_path / "t.db")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (n INTEGER)")
    other.execute("BEGIN IMMEDIATE")  # another process's transaction, say a command-line tool
    other.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    connection = await sqlite_inline.connect(path)
    try:
        release.start()
        turns = Turns(pause=0.01)
        await connection.execute("BEGIN IMMEDIATE")  # busy in place: waits on the thread
        turns.stop()
        assert turns.count >= 20  # the loop went on meanwhile
        await connection.execute("INSERT INTO t VALUES (2)")
        await connection.commit()
        assert list(await connection.execute_fetchall("SELECT n FROM t ORDER BY n", ())) == [
            (1,),
            (2,),
        ]
    finally:
        release.join()
        await connection.close()
        other.close()
