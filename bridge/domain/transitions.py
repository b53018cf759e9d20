"""The one way a bridge request, an invite, a conversation or a break-glass request changes state.

A move of its table (:mod:`bridge.domain.machine`) and the log entry that records it, in the
caller's transaction, so both commit or neither (DESIGN.md, "Consent": "each one database
transaction that changes the state *and* appends the log entry, or neither"). An illegal move
raises ``WrongState`` before anything is written. The log kinds of state changes are written
here and nowhere else (``tests/unit/domain/test_transitions.py`` holds the code to that).

A :class:`Watcher` set on the database (:func:`watch`) is told the kind of every move once its
transaction has committed, so a move rolled back is never reported; the edges count them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from bridge.domain.machine import (
    BREAKGLASS,
    BRIDGE,
    CONVERSATION,
    INVITE,
    ConversationState,
    Machine,
)
from bridge.domain.roles import Role
from bridge.log.writer import Log
from bridge.store.db import Database
from bridge.store.models import BreakglassRequest, BridgeRequest, Conversation, Invite

__all__ = ["SYSTEM", "Row", "Watcher", "start", "transition", "watch"]

Row = BridgeRequest | Invite | Conversation | BreakglassRequest

# The bridge itself as the actor: an expiry, a pause for someone's absence.
SYSTEM: Final[Mapping[str, object]] = {"role": Role.SYSTEM.value}

# Keys of ``Session.info``: the watcher every session of the database starts with, and the kinds
# of this session's moves that wait for the commit.
_WATCHER: Final = "bridge.transitions.watcher"
_MOVED: Final = "bridge.transitions.moved"


class Watcher(Protocol):
    """Told the log kind of each move once the transaction that made it has committed; it must
    not raise, since the commit is done and its caller still has effects to deliver."""

    def moved(self, kind: str) -> None: ...


def watch(db: Database, watcher: Watcher) -> None:
    """Report the committed moves of every session ``db`` opens from now on to ``watcher``."""
    db.sessions.configure(info={_WATCHER: watcher})


def _report(session: Session) -> None:
    # A savepoint's commit is not the transaction's: the moves wait for the outermost one.
    if session.in_nested_transaction():
        return
    watcher: Watcher = session.info[_WATCHER]
    for kind in session.info[_MOVED]:
        watcher.moved(kind)


def _forget(session: Session, transaction: SessionTransaction) -> None:
    """The transaction is over, committed (and reported) or rolled back."""
    if transaction.parent is None:
        session.info[_MOVED].clear()


def _moved(session: AsyncSession, kind: str) -> None:
    """Hold ``kind`` for the session's watcher until the transaction ends."""
    if _WATCHER not in session.info:
        return
    if _MOVED not in session.info:
        session.info[_MOVED] = []
        orm_event.listen(session.sync_session, "after_commit", _report)
        orm_event.listen(session.sync_session, "after_transaction_end", _forget)
    session.info[_MOVED].append(kind)


def _machine(row: Row) -> Machine[Any, Any]:
    if isinstance(row, BridgeRequest):
        return BRIDGE
    if isinstance(row, Invite):
        return INVITE
    if isinstance(row, BreakglassRequest):
        return BREAKGLASS
    return CONVERSATION


def _names(row: Row) -> tuple[str, dict[str, object]]:
    """What every entry about ``row`` names: its conversation, and the request or invite."""
    if isinstance(row, BridgeRequest):
        return row.conversation_id, {"request_id": row.id}
    if isinstance(row, Invite):
        return row.conversation_id, {"invite_id": row.id}
    if isinstance(row, BreakglassRequest):
        return row.conversation_id, {"breakglass_id": row.id}
    return row.id, {}


async def start(
    session: AsyncSession,
    log: Log,
    row: Row,
    *,
    now: datetime,
    actor: Mapping[str, object] | None = None,
    **fields: object,
) -> int:
    """Add a new row in its table's first state, with the entry that records it; its index."""
    machine = _machine(row)
    row.state = machine.start.value
    session.add(row)
    conversation_id, names = _names(row)
    index = await log.append(
        session,
        machine.start_kind,
        at=now,
        conversation_id=conversation_id,
        actor=actor,
        **names,
        **fields,
    )
    _moved(session, machine.start_kind)
    return index


async def transition(
    session: AsyncSession,
    log: Log,
    row: Row,
    event: Any,
    *,
    now: datetime,
    actor: Mapping[str, object] | None = None,
    reason: str | None = None,
    **fields: object,
) -> int | None:
    """Move ``row`` by ``event`` and log it; the entry's index, or None for a move the table
    logs no entry of. ``reason`` is kept on a bridge request (it decides who may resume a
    pause) and written into the entry."""
    machine = _machine(row)
    row.state = machine.next(type(machine.start)(row.state), event).value
    if isinstance(row, BridgeRequest):
        row.reason = reason
        row.updated_at = now
    elif isinstance(row, Conversation) and row.state == ConversationState.CLOSED:
        row.closed_at = now
    kind = machine.kinds[event]
    if kind is None:
        return None
    if reason is not None:
        fields["reason"] = reason
    conversation_id, names = _names(row)
    index = await log.append(
        session, kind, at=now, conversation_id=conversation_id, actor=actor, **names, **fields
    )
    _moved(session, kind)
    return index
