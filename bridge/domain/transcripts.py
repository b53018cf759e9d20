"""Reading a conversation back: ``history.fetch`` and the transcript export, each an access.

What a reader gets is decided here, strictest first: the victim and the counsellor read the
whole conversation (every message has care in its audience); an officer reads only the
messages of its own epoch, and earlier ones only where the victim shared their content keys.
Every staff read that returns messages is a log entry (``transcript.read``,
``transcript.exported``) in the same transaction.
"""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.clock import iso
from bridge.domain.access import Caller, ConversationContext, load_context
from bridge.domain.core import Core
from bridge.domain.roles import Role
from bridge.errors import Forbidden
from bridge.store import messages

__all__ = ["Transcripts"]

Ack = dict[str, object]
# A whole transcript is exported in one answer; conversations are chats, not archives.
EXPORT_LIMIT = 100_000


class Transcripts:
    def __init__(self, core: Core) -> None:
        self.db = core.db
        self.log = core.log
        self.clock = core.clock

    async def _readable(
        self,
        session: AsyncSession,
        caller: Caller,
        ctx: ConversationContext,
        after: int,
        limit: int,
    ) -> list[dict[str, object]]:
        conversation_id = ctx.conversation.id
        shared: dict[int, str] = {}
        epoch_id: str | None = None
        if caller.role == Role.OFFICER:
            assert ctx.officer is not None and ctx.officer.epoch_id is not None
            epoch_id = ctx.officer.epoch_id
            shared = await messages.shared_keys(session, conversation_id, epoch_id)
        found = await messages.readable(
            session, conversation_id, after, limit, epoch_id=epoch_id, shared=list(shared)
        )
        readable: list[dict[str, object]] = []
        for row in found:
            item: dict[str, object] = {
                "seq": row.seq,
                "envelope": json.loads(row.envelope),
                "server_time": iso(row.server_time),
            }
            # A message of the officer's own epoch opens with its key; an earlier one only
            # through the content key the victim shared.
            if row.seq in shared and not (row.investigation and row.epoch_id == epoch_id):
                item["shared_keys"] = shared[row.seq]
            readable.append(item)
        return readable

    async def history(self, caller: Caller, conversation_id: str, after: int, limit: int) -> Ack:
        """``history.fetch``: what the caller's scope may read after ``after``."""
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id, allow_closed=True)
            read = await self._readable(session, caller, ctx, after, limit)
            if (access := _access(caller, read)) is not None:
                at = self.clock()
                await self.log.append(
                    session,
                    "transcript.read",
                    at=at,
                    conversation_id=conversation_id,
                    actor=caller.actor,
                    **access,
                )
        return {"messages": read}

    async def export(self, caller: Caller, conversation_id: str) -> Ack:
        """The whole transcript of the caller's scope, for a file outside the bridge.

        The officer may export only what the victim allowed to be kept for a case file
        (``retain_for_case_file`` in the grant of its epoch).
        """
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id, allow_closed=True)
            if caller.role == Role.OFFICER:
                choices = (ctx.request.choices if ctx.request is not None else None) or {}
                if not choices.get("retain_for_case_file"):
                    raise Forbidden("the victim did not allow keeping this chat for a case file")
            elif caller.role != Role.COUNSELLOR:
                raise Forbidden("only staff export a transcript")
            read = await self._readable(session, caller, ctx, 0, EXPORT_LIMIT)
            if (access := _access(caller, read)) is not None:
                at = self.clock()
                await self.log.append(
                    session,
                    "transcript.exported",
                    at=at,
                    conversation_id=conversation_id,
                    actor=caller.actor,
                    **access,
                )
        return {"conversation_id": conversation_id, "messages": read}


def _access(caller: Caller, read: list[dict[str, object]]) -> dict[str, object] | None:
    """What the access entry of a staff read that returned messages records, else None: the
    victim reads her own conversation, and an empty read shows nothing."""
    if not read or caller.role == Role.VICTIM:
        return None
    return {
        "scope": "investigation" if caller.role == Role.OFFICER else "care",
        "first_seq": read[0]["seq"],
        "last_seq": read[-1]["seq"],
    }
