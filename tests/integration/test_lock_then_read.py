"""A change that waits for a conversation's lock acts on what the transaction it waited for left:
the rows it decides on are read once it holds the lock (another node, or the expiry loop, may
have moved them meanwhile). Here another writer holds the lock and moves the question on while the
victim's answer waits."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg

from harness import Bridge, backend, error_code, grant_payload, proposed, query


@contextlib.contextmanager
def another_writer(bridge: Bridge, conversation_id: str) -> Iterator[Any]:
    """A transaction of another writer holding the conversation's lock (on SQLite, the one write
    lock); committed when the block ends."""
    if backend.POSTGRES:
        with psycopg.connect(backend.libpq_url(bridge.data_dir), autocommit=True) as connection:
            connection.execute("BEGIN")
            sql = "SELECT id FROM conversations WHERE id = %s FOR UPDATE"
            connection.execute(sql, (conversation_id,))
            yield connection
            connection.execute("COMMIT")
        return
    path = bridge.data_dir / "bridge.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("BEGIN IMMEDIATE")
        yield connection
        connection.execute("COMMIT")


async def test_an_answer_that_waited_for_the_lock_sees_the_question_expired(
    bridge: Bridge,
) -> None:
    world = await proposed(bridge)
    payload = await grant_payload(world.victim)
    request_id = payload["request_id"]
    with another_writer(bridge, world.cid) as writer:
        answer = asyncio.create_task(world.victim.call_raw("consent.grant", payload))
        await asyncio.sleep(0.5)
        assert not answer.done()  # it waits for the lock
        update = "UPDATE bridge_requests SET state = 'expired' WHERE id = ?"
        writer.execute(update.replace("?", "%s") if backend.POSTGRES else update, (request_id,))
    assert error_code(await answer) == "wrong_state"
    rows = query(bridge.data_dir, "SELECT state FROM bridge_requests WHERE id = ?", request_id)
    assert rows == [("expired",)]
    granted = "SELECT count(*) FROM log_entries WHERE kind = 'consent.granted'"
    assert query(bridge.data_dir, granted) == [(0,)]
