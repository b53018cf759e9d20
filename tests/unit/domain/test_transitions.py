"""The one transition function (bridge/domain/transitions.py): every state change of a bridge
request, an invite or a conversation goes through it, with its log entry, or not at all.

The code is read with ``ast``: a state-change log kind (one the tables of
bridge/domain/machine.py name) may be spelled nowhere but in those tables, and every other
append names its kind as a literal, so that no state-change entry can be written around the
transition function. On a real database, a move commits with its entry and an illegal one
changes nothing (DESIGN.md principle 10).
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from sqlalchemy import func, select

from bridge.domain.machine import (
    BREAKGLASS,
    BRIDGE,
    CONVERSATION,
    INVITE,
    ConversationEvent,
    ConversationState,
    Event,
    InviteEvent,
    Machine,
)
from bridge.domain.transitions import start, transition
from bridge.errors import WrongState
from bridge.log.logkey import LogKey
from bridge.log.writer import Log
from bridge.store.db import Database, upgrade
from bridge.store.models import Conversation, Device, LogEntry
from harness import database_url

ROOT = Path(__file__).parents[3]
PACKAGE = ROOT / "bridge"
TABLES = PACKAGE / "domain" / "machine.py"
FUNCTION = PACKAGE / "domain" / "transitions.py"
MACHINES: tuple[Machine[Any, Any], ...] = (BRIDGE, INVITE, CONVERSATION, BREAKGLASS)
STATE_KINDS = frozenset(
    {m.start_kind for m in MACHINES} | {k for m in MACHINES for k in m.kinds.values() if k}
)
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _appends(tree: ast.AST) -> list[ast.Call]:
    """Calls shaped like ``log.append(session, kind, ...)`` (a list's append takes one)."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "append"
        and len(node.args) >= 2
    ]


def test_the_tables_name_the_log_kinds_of_every_state_change() -> None:
    assert {
        "consent.requested",
        "consent.granted",
        "consent.declined",
        "consent.withdrawn",
        "consent.expired",
        "officer.joined",
        "bridge.paused",
        "bridge.resumed",
        "bridge.ended",
        "invite.created",
        "invite.accepted",
        "invite.expired",
        "conversation.started",
        "conversation.closed",
        "breakglass.requested",
        "breakglass.approved",
        "breakglass.refused",
    } == STATE_KINDS


def _kinds_named(call: ast.Call) -> list[ast.expr]:
    """The kind argument of an append, or both branches of ``"a" if c else "b"``."""
    kind = call.args[1]
    return [kind.body, kind.orelse] if isinstance(kind, ast.IfExp) else [kind]


def _wrong_appends(source: str) -> list[int]:
    """Lines that append a state-change kind, or a kind that is not a literal (which could be
    anything, so it is refused too)."""
    return [
        call.lineno
        for call in _appends(ast.parse(source))
        for kind in _kinds_named(call)
        if not isinstance(kind, ast.Constant) or kind.value in STATE_KINDS
    ]


@pytest.mark.parametrize(
    "source",
    [
        'await log.append(session, "consent.granted", at=now)',
        "await self.log.append(session, kind, at=now)",
        'await log.append(session, "history.shared" if a else "bridge.ended", at=now)',
    ],
)
def test_the_check_catches_an_append_around_the_transition_function(source: str) -> None:
    assert _wrong_appends(f"async def f():\n    {source}\n") == [2]


def test_the_check_lets_other_kinds_and_lists_through() -> None:
    source = (
        'async def f():\n    await log.append(session, "history.shared", at=now)\n    x.append(1)\n'
    )
    assert _wrong_appends(source) == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_log_append_but_the_transition_function_writes_a_state_change(path: Path) -> None:
    if path == FUNCTION:
        return
    wrong = _wrong_appends(path.read_text(encoding="utf-8"))
    assert not wrong, f"{path.relative_to(ROOT)}: state-change or computed kind at lines {wrong}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_log_writer_makes_log_entries(path: Path) -> None:
    """Log.append is the one way into the log, so the append check above sees every entry."""
    if path == PACKAGE / "log" / "writer.py":
        return
    made = [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "LogEntry"
    ]
    assert not made, f"{path.relative_to(ROOT)} makes LogEntry rows at lines {made}"


def test_the_checks_see_the_transition_function_append() -> None:
    """The scan is not blind: the one function does append, with a kind from the tables."""
    assert len(_appends(ast.parse(FUNCTION.read_text(encoding="utf-8")))) == 2


# --- on a real database -----------------------------------------------------------------------


async def _world(tmp_path: Path) -> tuple[Database, Log]:
    db = Database(database_url(tmp_path))
    await upgrade(db)
    return db, Log(LogKey(SigningKey(bytes(range(32))), "test/log"))


async def _conversation(db: Database, log: Log) -> str:
    async with db.session() as session, session.begin():
        session.add(
            Device(id="dev-1", account_id=None, ed25519="e" * 43, x25519="x" * 43, created_at=NOW)
        )
        await session.flush()
        conversation = Conversation(
            id="c-1",
            lang="nl",
            victim_device_id="dev-1",
            care_public="p" * 43,
            care_sealed_private=None,
            counsellor_account_id=None,
            last_seq=0,
            created_at=NOW,
            closed_at=None,
        )
        await start(session, log, conversation, now=NOW, victim_device={"ed25519": "e" * 43})
    return conversation.id


async def _kinds(db: Database) -> list[str]:
    async with db.session() as session:
        return list(await session.scalars(select(LogEntry.kind).order_by(LogEntry.idx)))


async def test_a_move_commits_with_its_log_entry(tmp_path: Path) -> None:
    db, log = await _world(tmp_path)
    conversation_id = await _conversation(db, log)
    async with db.session() as session, session.begin():
        conversation = await session.get_one(Conversation, conversation_id)
        await transition(session, log, conversation, ConversationEvent.PICK_UP, now=NOW)
        later = NOW + timedelta(minutes=5)
        await transition(
            session, log, conversation, ConversationEvent.CLOSE, now=later, actor={"role": "victim"}
        )
    async with db.session() as session:
        stored = await session.get_one(Conversation, conversation_id)
    kinds = await _kinds(db)
    await db.dispose()
    assert stored.state == ConversationState.CLOSED
    assert stored.closed_at == NOW + timedelta(minutes=5)
    # Picking up is no entry of its own (PROTOCOL.md lists none); closing is.
    assert kinds == ["conversation.started", "conversation.closed"]


async def test_an_illegal_move_raises_and_changes_nothing(tmp_path: Path) -> None:
    db, log = await _world(tmp_path)
    conversation_id = await _conversation(db, log)
    with pytest.raises(WrongState, match="cannot pick_up a conversation that is closed"):
        async with db.session() as session, session.begin():
            conversation = await session.get_one(Conversation, conversation_id)
            await transition(session, log, conversation, ConversationEvent.CLOSE, now=NOW)
            await transition(session, log, conversation, ConversationEvent.PICK_UP, now=NOW)
    async with db.session() as session:
        stored = await session.get_one(Conversation, conversation_id)
        entries = await session.scalar(select(func.count()).select_from(LogEntry))
    await db.dispose()
    # The whole transaction rolled back: the close before the refused move did not stick either.
    assert stored.state == ConversationState.WAITING
    assert stored.closed_at is None
    assert entries == 1


def test_every_event_of_every_table_has_a_log_rule() -> None:
    """A move the tables forget to give a kind (or an explicit None) would escape the log."""
    assert set(BRIDGE.kinds) == set(Event)
    assert set(INVITE.kinds) == set(InviteEvent)
    assert set(CONVERSATION.kinds) == set(ConversationEvent)
