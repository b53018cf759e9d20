"""The moves a watcher is told of (bridge/domain/transitions.py, ``watch``): those of committed
transactions only, once each, after the commit; a move rolled back is never reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from bridge.domain.machine import ConversationEvent
from bridge.domain.transitions import start, transition, watch
from bridge.log.logkey import LogKey
from bridge.log.writer import Log
from bridge.store.db import Database, upgrade
from bridge.store.models import Conversation, Device
from harness import database_url

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class Seen:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def moved(self, kind: str) -> None:
        self.kinds.append(kind)


def _conversation(n: int) -> Conversation:
    return Conversation(
        id=f"c-{n}",
        lang="nl",
        victim_device_id="dev-1",
        care_public="p" * 43,
        care_sealed_private=None,
        counsellor_account_id=None,
        last_seq=0,
        created_at=NOW,
        closed_at=None,
    )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Database, Log]]:
    db = Database(database_url(tmp_path))
    await upgrade(db)
    async with db.session() as session, session.begin():
        session.add(
            Device(id="dev-1", account_id=None, ed25519="e" * 43, x25519="x" * 43, created_at=NOW)
        )
    yield db, Log(LogKey(SigningKey(bytes(range(32))), "test/log"))
    await db.dispose()


async def test_moves_are_reported_once_their_transaction_commits(
    world: tuple[Database, Log],
) -> None:
    db, log = world
    seen = Seen()
    watch(db, seen)
    async with db.session() as session:
        async with session.begin():
            conversation = _conversation(1)
            await start(session, log, conversation, now=NOW)
            await transition(session, log, conversation, ConversationEvent.CLOSE, now=NOW)
            assert seen.kinds == []
        assert seen.kinds == ["conversation.started", "conversation.closed"]
        # The same session's next transaction reports its own moves, and only once.
        async with session.begin():
            await start(session, log, _conversation(2), now=NOW)
    assert seen.kinds == ["conversation.started", "conversation.closed", "conversation.started"]


async def test_a_move_rolled_back_is_never_reported(world: tuple[Database, Log]) -> None:
    db, log = world
    seen = Seen()
    watch(db, seen)
    async with db.session() as session:
        with pytest.raises(RuntimeError):
            async with session.begin():
                await start(session, log, _conversation(1), now=NOW)
                raise RuntimeError("after the move, before the commit")
        async with session.begin():
            await start(session, log, _conversation(2), now=NOW)
    assert seen.kinds == ["conversation.started"]


async def test_a_savepoint_commit_is_not_the_transactions(world: tuple[Database, Log]) -> None:
    db, log = world
    seen = Seen()
    watch(db, seen)
    with pytest.raises(RuntimeError):
        async with db.session() as session, session.begin():
            async with session.begin_nested():
                await start(session, log, _conversation(1), now=NOW)
            raise RuntimeError("the outer transaction fails after the savepoint")
    assert seen.kinds == []
    async with db.session() as session, session.begin(), session.begin_nested():
        await start(session, log, _conversation(2), now=NOW)
    assert seen.kinds == ["conversation.started"]


async def test_a_database_nobody_watches_commits_its_moves_alone(
    world: tuple[Database, Log],
) -> None:
    db, log = world
    async with db.session() as session, session.begin():
        await start(session, log, _conversation(1), now=NOW)
    async with db.session() as session:
        stored = await session.get_one(Conversation, "c-1")
    assert stored.state == "waiting"
    assert "bridge.transitions.moved" not in session.info
