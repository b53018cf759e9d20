"""A conversation's version (migration 0005) moves with every change the message path checks
against, in the changing transaction itself, and not with the messages themselves; on the
database the run uses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store import message_batch
from bridge.store.db import Database, upgrade
from bridge.store.models import (
    Account,
    BridgeRequest,
    Conversation,
    Device,
    Epoch,
    Participant,
)
from harness import database_url

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CID = "c-1"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(database_url(tmp_path))
    await upgrade(db)
    async with db.session() as session, session.begin():
        session.add(
            Device(id="d-1", account_id=None, ed25519="e" * 43, x25519="x" * 43, created_at=NOW)
        )
        session.add(
            Account(
                id="a-1",
                username="c",
                password_hash="-",
                role="counsellor",
                org="fier",
                region=None,
                gender=None,
                created_at=NOW,
            )
        )
        await session.flush()
        session.add(
            Conversation(
                id=CID,
                lang="nl",
                state="waiting",
                victim_device_id="d-1",
                care_public="p" * 43,
                care_sealed_private=None,
                counsellor_account_id=None,
                last_seq=0,
                created_at=NOW,
                closed_at=None,
            )
        )
    yield db
    await db.dispose()


async def _version(db: Database) -> int:
    async with message_batch.transaction(db) as statements:
        found = await statements.standing(CID, lock=False)
    assert found is not None
    return found.version


def _request(state: str) -> BridgeRequest:
    return BridgeRequest(
        id="r-1",
        conversation_id=CID,
        purpose="report",
        preferences={},
        state=state,
        reason=None,
        proposed_by="a-1",
        prompt_lang="nl",
        prompt_expires_at=NOW,
        choices=None,
        epoch_id=None,
        officer_account_id=None,
        created_at=NOW,
        updated_at=NOW,
    )


Change = Callable[[AsyncSession], Awaitable[object]]

CHANGES: list[tuple[str, Change]] = [
    (
        "the counsellor picks it up",
        lambda s: s.execute(
            update(Conversation)
            .where(Conversation.id == CID)
            .values(state="open", counsellor_account_id="a-1")
        ),
    ),
    ("a bridge is proposed", lambda s: _add(s, _request("proposed"))),
    (
        "the bridge moves on",
        lambda s: s.execute(update(BridgeRequest).values(state="granted")),
    ),
    (
        "a participant joins",
        lambda s: _add(
            s,
            Participant(
                conversation_id=CID,
                device_id="d-1",
                account_id=None,
                role="victim",
                epoch_id=None,
                joined_at=NOW,
                ended_at=None,
                end_reason=None,
            ),
        ),
    ),
    ("a participant leaves", lambda s: s.execute(update(Participant).values(ended_at=NOW))),
    ("a participant is removed", lambda s: s.execute(delete(Participant))),
    ("a request is removed", lambda s: s.execute(delete(BridgeRequest))),
    (
        "the conversation closes",
        lambda s: s.execute(
            update(Conversation).where(Conversation.id == CID).values(state="closed", closed_at=NOW)
        ),
    ),
]


async def _version_in(session: AsyncSession) -> int:
    version = await session.scalar(select(Conversation.version).where(Conversation.id == CID))
    assert version is not None
    return version


async def _add(session: AsyncSession, row: object) -> None:
    session.add(row)
    await session.flush()


async def test_every_change_the_checks_read_moves_the_version(db: Database) -> None:
    for what, change in CHANGES:
        before = await _version(db)
        async with db.session() as session, session.begin():
            await change(session)
            assert await _version_in(session) > before, what  # in the same transaction
        assert await _version(db) > before, what


async def test_a_change_rolled_back_leaves_the_version(db: Database) -> None:
    before = await _version(db)
    with pytest.raises(RuntimeError):
        async with db.session() as session, session.begin():
            await _add(session, _request("proposed"))
            raise RuntimeError("rolled back")
    assert await _version(db) == before


async def test_messages_do_not_move_the_version(db: Database) -> None:
    before = await _version(db)
    async with message_batch.transaction(db) as statements:
        assert await statements.take_seqs(3, CID) == 3
        assert await statements.take_seqs_if_unchanged({CID: (2, before)}) == {CID: 5}
    assert await _version(db) == before
    async with message_batch.transaction(db) as statements:
        # At another version nothing is taken.
        assert await statements.take_seqs_if_unchanged({CID: (1, before + 1)}) == {}
    async with db.session() as session:
        assert await session.scalar(select(Conversation.last_seq)) == 5


async def test_a_standing_names_the_bridge_in_force_and_each_officers_latest_part(
    db: Database,
) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(Conversation).values(state="open", counsellor_account_id="a-1")
        )
        request = _request("joined")
        request.epoch_id, request.choices = "e-2", {"share_needs_note": True}
        await _add(session, request)
        for epoch in ("e-1", "e-2"):
            await _add(
                session,
                Epoch(
                    id=epoch,
                    conversation_id=CID,
                    request_id="r-1",
                    public="p" * 43,
                    sealed_private=None,
                    key_id=None,
                    created_at=NOW,
                    ended_at=None,
                ),
            )
        for epoch, ended in [("e-1", NOW), ("e-2", None)]:
            await _add(
                session,
                Participant(
                    conversation_id=CID,
                    device_id="d-1",
                    account_id="a-1",
                    role="officer",
                    epoch_id=epoch,
                    joined_at=NOW,
                    ended_at=ended,
                    end_reason=None,
                ),
            )
    async with message_batch.transaction(db) as statements:
        found = await statements.standing(CID, lock=True)
        assert await statements.standing("no-such", lock=True) is None
    assert found is not None
    assert (found.state, found.counsellor_account_id) == ("open", "a-1")
    assert (found.bridge_state, found.epoch_id) == ("joined", "e-2")
    assert found.choices == {"share_needs_note": True}
    assert found.officers == {"a-1": ("e-2", False)}
