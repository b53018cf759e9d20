"""The statements of the message path, on the database driver's own connection.

A group commit of messages (bridge/domain/message_writer.py) is a handful of statements however
many messages it holds. Through SQLAlchemy's async adaptation each statement costs some 150 us
of CPU beyond the driver's own work (a cursor, the statement and its rows are each a hop to
aiosqlite's thread, every hop through a greenlet), several times what the statement costs; so
this path, and only this one, takes the driver connection out of SQLAlchemy's pool and speaks
to aiosqlite or asyncpg directly, one round trip a statement. The SQL is the same on both
databases but for the placeholders and PostgreSQL's row lock; values are stored exactly as the
models' column types store them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.domain.machine import ACTIVE
from bridge.domain.roles import Role
from bridge.store.db import Database

__all__ = ["MessageRow", "Standing", "Statements", "transaction"]

_ACTIVE = ", ".join(f"'{state.value}'" for state in sorted(ACTIVE))
_OFFICER = Role.OFFICER.value


@dataclass(frozen=True, slots=True)
class Standing:
    """A conversation as of ``version`` (migration 0005): its state and counsellor, the bridge in
    force ("none" without one), and each officer's latest participation as ``(epoch_id,
    ended)``."""

    conversation_id: str
    version: int
    state: str
    counsellor_account_id: str | None
    bridge_state: str
    epoch_id: str | None
    choices: Mapping[str, object]
    officers: Mapping[str, tuple[str | None, bool]]


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A message to store: the columns of ``models.Message`` but its id."""

    conversation_id: str
    seq: int
    client_msg_id: str
    sender_device_id: str
    sender_role: str
    kind: str
    investigation: bool
    epoch_id: str | None
    envelope: str
    envelope_sha256: str
    server_time: datetime


class Statements:
    """The message path's statements inside one transaction (``transaction``)."""

    def __init__(self, connection: Any, postgres: bool) -> None:
        self._connection = connection
        self._postgres = postgres

    async def previous(self, client_msg_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
        """``client_msg_id -> (envelope_sha256, seq)`` of those already stored."""
        ids = list(client_msg_ids)
        rows = await self._rows(
            "SELECT client_msg_id, envelope_sha256, seq FROM messages "
            f"WHERE client_msg_id IN ({', '.join('?' * len(ids))})",
            ids,
        )
        return {client_msg_id: (digest, seq) for client_msg_id, digest, seq in rows}

    async def take_seqs_if_unchanged(self, wanted: Mapping[str, tuple[int, int]]) -> dict[str, int]:
        """Take ``count`` message numbers of each conversation, ``conversation_id -> (count,
        version)``, only where it is still at that version (migration 0005), in one statement;
        returns ``conversation_id -> the last seq taken`` of those that were.

        On PostgreSQL a row another transaction is changing is read again once that one
        commits, so a version moved in the meantime is seen."""
        values, params = [], []
        for conversation_id, (count, version) in wanted.items():
            values.append("(?, CAST(? AS INTEGER), CAST(? AS INTEGER))")
            params += [conversation_id, count, version]
        rows = await self._rows(
            f"WITH wanted(id, n, version) AS (VALUES {', '.join(values)}) "
            "UPDATE conversations SET last_seq = conversations.last_seq + wanted.n FROM wanted "
            "WHERE conversations.id = wanted.id AND conversations.version = wanted.version "
            "RETURNING conversations.id, conversations.last_seq",
            params,
        )
        return {conversation_id: seq for conversation_id, seq in rows}

    async def take_seqs(self, count: int, conversation_id: str) -> int:
        """Take the conversation's next ``count`` numbers and return the last; gap-free, since
        a rolled-back transaction gives its numbers back."""
        [(seq,)] = await self._rows(
            "UPDATE conversations SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq",
            [count, conversation_id],
        )
        return int(seq)

    async def standing(self, conversation_id: str, *, lock: bool) -> Standing | None:
        """The conversation's standing now (``lock``: its row locked until the transaction
        ends, as ``conversations.locked`` takes it), or None if there is no such conversation."""
        lock_row = " FOR UPDATE" if lock and self._postgres else ""
        found = await self._rows(
            "SELECT version, state, counsellor_account_id FROM conversations "
            f"WHERE id = ?{lock_row}",
            [conversation_id],
        )
        if not found:
            return None
        [(version, state, counsellor)] = found
        request = await self._rows(
            "SELECT state, epoch_id, choices FROM bridge_requests "
            f"WHERE conversation_id = ? AND state IN ({_ACTIVE})",
            [conversation_id],
        )
        officers: dict[str, tuple[str | None, bool]] = {}
        for account_id, epoch_id, ended_at in await self._rows(
            "SELECT account_id, epoch_id, ended_at FROM participants "
            f"WHERE conversation_id = ? AND role = '{_OFFICER}' ORDER BY id",
            [conversation_id],
        ):
            if account_id is not None:
                officers[account_id] = (epoch_id, ended_at is not None)  # the latest wins
        bridge_state, epoch_id, choices = request[0] if request else ("none", None, None)
        if isinstance(choices, str):  # SQLite keeps JSON as text
            choices = json.loads(choices)
        return Standing(
            conversation_id,
            int(version),
            state,
            counsellor,
            bridge_state,
            epoch_id,
            choices or {},
            officers,
        )

    async def insert(self, rows: Sequence[MessageRow]) -> None:
        """Store the messages in one statement."""
        await self._many(
            "INSERT INTO messages (conversation_id, seq, client_msg_id, sender_device_id, "
            "sender_role, kind, investigation, epoch_id, envelope, envelope_sha256, server_time) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    row.conversation_id,
                    row.seq,
                    row.client_msg_id,
                    row.sender_device_id,
                    row.sender_role,
                    row.kind,
                    row.investigation,
                    row.epoch_id,
                    row.envelope,
                    row.envelope_sha256,
                    self._time(row.server_time),
                )
                for row in rows
            ],
        )

    def _time(self, at: datetime) -> object:
        # As models.UTCDateTime stores it: naive UTC; SQLite's text form as SQLAlchemy writes it.
        naive = at.astimezone(UTC).replace(tzinfo=None)
        return naive if self._postgres else naive.strftime("%Y-%m-%d %H:%M:%S.%f")

    async def _rows(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        if self._postgres:
            return [tuple(row) for row in await self._connection.fetch(_numbered(sql), *params)]
        return [tuple(row) for row in await self._connection.execute_fetchall(sql, params)]

    async def _many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if self._postgres:
            await self._connection.executemany(_numbered(sql), rows)
        else:
            await self._connection.executemany(sql, rows)


def _numbered(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1, $2, ...`` (none of these statements holds a ``?``
    otherwise)."""
    parts = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


@contextlib.asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[Statements]:
    """One transaction on a connection of ``db``'s pool, committed when the block ends and
    rolled back if it raises. On SQLite that is the one connection every session uses, so it
    is serialised with them as any transaction is."""
    async with db.engine.connect() as pooled:
        connection = (await pooled.get_raw_connection()).driver_connection
        assert connection is not None
        if db.is_sqlite:
            await connection.execute("BEGIN IMMEDIATE")
            try:
                yield Statements(connection, postgres=False)
            except BaseException:
                await connection.rollback()
                raise
            await connection.commit()
        else:
            async with connection.transaction():
                yield Statements(connection, postgres=True)
