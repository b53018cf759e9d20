"""Accepted messages numbered and stored in group commits (``group_commit``): one transaction,
and a handful of statements, for every message that arrived while the one before committed.

A batch's transaction: the ``client_msg_id``s looked up at once (an identical resend gets its
seq again, another envelope under a used id is a conflict); each conversation's numbers taken
in one statement, only where the conversation is still at the version its messages were
admitted against; a conversation that moved on has its standing read again, its row locked, and
its messages checked once more; then every message inserted in one statement. Nothing is
acknowledged before that transaction has committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bridge.domain.access import Caller
from bridge.domain.group_commit import GroupCommit
from bridge.domain.standings import Standings
from bridge.errors import BridgeError, Conflict
from bridge.protocol import Envelope, SignedEnvelope
from bridge.store import message_batch
from bridge.store.db import Database
from bridge.store.message_batch import MessageRow, Standing, Statements

__all__ = ["Accepted", "MessageWriter", "Written"]


class Rules(Protocol):
    """The checks of a message against a standing, each raising the protocol error that
    refuses it: who may act on the conversation at all (also asked of a resend), and the whole
    of them."""

    def check_sender(self, caller: Caller, standing: Standing, envelope: Envelope) -> None: ...

    def admit(self, caller: Caller, standing: Standing, envelope: Envelope) -> None: ...


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message whose checks passed against ``standing``, its signature verified."""

    caller: Caller
    signed: SignedEnvelope
    standing: Standing
    at: datetime


@dataclass(frozen=True, slots=True)
class Written:
    seq: int
    new: bool  # False: an identical resend of a message stored before


class MessageWriter:
    def __init__(self, db: Database, standings: Standings, rules: Rules) -> None:
        self.db = db
        self.standings = standings
        self.rules = rules
        self.commits: GroupCommit[Accepted, Written] = GroupCommit(self._commit)

    async def write(self, message: Accepted) -> Written:
        return await self.commits.submit(message)

    async def _commit(self, batch: Sequence[Accepted]) -> list[Written | Exception]:
        answers: list[Written | Exception | None] = [None] * len(batch)
        async with message_batch.transaction(self.db) as statements:
            stored = await statements.previous({m.signed.fields.client_msg_id for m in batch})
            kinds, twins = _sort(batch, stored)
            for i, kind in enumerate(kinds):
                if kind == _RESEND:
                    answers[i] = Written(stored[batch[i].signed.fields.client_msg_id][1], False)
                elif kind == _CONFLICT:
                    answers[i] = Conflict("this client_msg_id was used for another envelope")
            seqs = await self._number(statements, batch, kinds, answers)
            rows = []
            for i, seq in seqs.items():
                answers[i] = Written(seq, True)
                rows.append(_row(batch[i], seq))
            if rows:
                await statements.insert(rows)
        for i, twin in twins.items():
            original = answers[twin]
            answers[i] = Written(original.seq, False) if isinstance(original, Written) else original
        done = [answer for answer in answers if answer is not None]
        assert len(done) == len(batch)
        return done

    async def _number(
        self,
        statements: Statements,
        batch: Sequence[Accepted],
        kinds: list[str],
        answers: list[Written | Exception | None],
    ) -> dict[int, int]:
        """Each new message's seq, in arrival order per conversation. Where the conversation
        moved on since its messages were admitted, they are checked again against it as it is
        now, and a refusal replaces the answer (of a resend or a conflict too)."""
        by_conversation: dict[str, list[int]] = {}
        for i, kind in enumerate(kinds):
            if kind != _TWIN:
                by_conversation.setdefault(batch[i].standing.conversation_id, []).append(i)
        wanted = {
            conversation_id: (
                sum(kinds[i] == _NEW for i in indices),
                batch[indices[0]].standing.version,
            )
            for conversation_id, indices in by_conversation.items()
        }
        last = await statements.take_seqs_if_unchanged(wanted) if wanted else {}
        numbered: dict[str, list[int]] = {}
        for conversation_id, indices in by_conversation.items():
            if conversation_id in last:
                numbered[conversation_id] = [i for i in indices if kinds[i] == _NEW]
                continue
            now = await self.standings.fresh(statements, conversation_id)
            admitted = []
            for i in indices:
                caller, envelope = batch[i].caller, batch[i].signed.fields
                try:
                    if kinds[i] == _RESEND:
                        self.rules.check_sender(caller, now, envelope)
                    else:
                        self.rules.admit(caller, now, envelope)
                except BridgeError as refused:
                    answers[i] = refused
                else:
                    if kinds[i] == _NEW:
                        admitted.append(i)
            numbered[conversation_id] = admitted
            if admitted:
                last[conversation_id] = await statements.take_seqs(len(admitted), conversation_id)
        seqs: dict[int, int] = {}
        for conversation_id, indices in numbered.items():
            for n, i in enumerate(indices):
                seqs[i] = last[conversation_id] - len(indices) + 1 + n
        return seqs


# What a message of a batch is: new, an identical resend of one stored before, another
# envelope under a stored message's id, or a repeat of a message earlier in the same batch.
_NEW, _RESEND, _CONFLICT, _TWIN = "new", "resend", "conflict", "twin"


def _sort(
    batch: Sequence[Accepted], stored: dict[str, tuple[str, int]]
) -> tuple[list[str], dict[int, int]]:
    """Each message's kind, and each twin's index -> the index of the message it repeats (a
    different envelope under the id of one earlier in the batch is a conflict)."""
    kinds: list[str] = []
    twins: dict[int, int] = {}
    first: dict[str, int] = {}
    for i, message in enumerate(batch):
        client_msg_id, digest = message.signed.fields.client_msg_id, message.signed.digest
        if client_msg_id in stored:
            kinds.append(_RESEND if stored[client_msg_id][0] == digest else _CONFLICT)
        elif client_msg_id in first:
            same = batch[first[client_msg_id]].signed.digest == digest
            kinds.append(_TWIN if same else _CONFLICT)
            if same:
                twins[i] = first[client_msg_id]
        else:
            first[client_msg_id] = i
            kinds.append(_NEW)
    return kinds, twins


def _row(message: Accepted, seq: int) -> MessageRow:
    envelope = message.signed.fields
    assert message.caller.device_id is not None  # no unregistered socket sends (the event table)
    return MessageRow(
        conversation_id=envelope.conversation_id,
        seq=seq,
        client_msg_id=envelope.client_msg_id,
        sender_device_id=message.caller.device_id,
        sender_role=message.caller.role,
        kind=envelope.kind,
        investigation=envelope.investigation,
        epoch_id=envelope.epoch_id,
        envelope=message.signed.canonical.decode(),
        envelope_sha256=message.signed.digest,
        server_time=message.at,
    )
