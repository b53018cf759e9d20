"""Reading a conversation back: ``history.fetch`` and the transcript export, each an access.

What a reader gets is decided here, strictest first: the victim and the counsellor read the
whole conversation (every message has care in its audience); an officer reads only the
messages of its own epoch, and earlier ones only where the victim shared their content keys.
Every staff read that returns messages is a log entry (``transcript.read``,
``transcript.exported``) in the same transaction.
"""

from __future__ import annotations

import json

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.clock import iso
from bridge.domain.access import Caller, ConversationContext, load_context
from bridge.domain.core import Core
from bridge.errors import Forbidden
from bridge.store.models import Message, SharedKey

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
        conditions = [Message.conversation_id == conversation_id, Message.seq > after]
        shared: dict[int, str] = {}
        epoch_id: str | None = None
        if caller.role == "officer":
            assert ctx.officer is not None and ctx.officer.epoch_id is not None
            epoch_id = ctx.officer.epoch_id
            rows = await session.execute(
                select(SharedKey.seq, SharedKey.key).where(
                    SharedKey.conversation_id == conversation_id, SharedKey.epoch_id == epoch_id
                )
            )
            shared = {seq: key for seq, key in rows.all()}
            conditions.append(
                or_(
                    and_(Message.investigation.is_(True), Message.epoch_id == epoch_id),
                    Message.seq.in_(list(shared)),
                )
            )
        found = await session.scalars(
            select(Message).where(*conditions).order_by(Message.seq).limit(limit)
        )
        messages: list[dict[str, object]] = []
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
            messages.append(item)
        return messages

    async def _record(
        self,
        session: AsyncSession,
        kind: str,
        caller: Caller,
        conversation_id: str,
        messages: list[dict[str, object]],
    ) -> None:
        if not messages or caller.role == "victim":
            return
        await self.log.append(
            session,
            kind,
            at=self.clock(),
            conversation_id=conversation_id,
            actor={"role": caller.role, "user_id": caller.principal.account_id},
            scope="investigation" if caller.role == "officer" else "care",
            first_seq=messages[0]["seq"],
            last_seq=messages[-1]["seq"],
        )

    async def history(self, caller: Caller, conversation_id: str, after: int, limit: int) -> Ack:
        """``history.fetch``: what the caller's scope may read after ``after``."""
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id, allow_closed=True)
            messages = await self._readable(session, caller, ctx, after, limit)
            await self._record(session, "transcript.read", caller, conversation_id, messages)
        return {"messages": messages}

    async def export(self, caller: Caller, conversation_id: str) -> Ack:
        """The whole transcript of the caller's scope, for a file outside the bridge.

        The officer may export only what the victim allowed to be kept for a case file
        (``retain_for_case_file`` in the grant of its epoch).
        """
        async with self.db.session() as session, session.begin():
            ctx = await load_context(session, caller, conversation_id, allow_closed=True)
            if caller.role == "officer":
                choices = (ctx.request.choices if ctx.request is not None else None) or {}
                if not choices.get("retain_for_case_file"):
                    raise Forbidden("the victim did not allow keeping this chat for a case file")
            elif caller.role != "counsellor":
                raise Forbidden("only staff export a transcript")
            messages = await self._readable(session, caller, ctx, 0, EXPORT_LIMIT)
            await self._record(session, "transcript.exported", caller, conversation_id, messages)
        return {"conversation_id": conversation_id, "messages": messages}
