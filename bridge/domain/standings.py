"""The standing of the conversations messages arrive in, kept in memory between messages.

A kept standing may be behind the database (another transaction, on this node or another, moved
the conversation on): the message path uses it to admit a message, and takes the message's
number only if the conversation's version is still the one it was admitted against; otherwise
it reads the standing again and checks once more (``message_writer``). Refusals are decided on
a standing read afresh (``Messages.send``).
"""

from __future__ import annotations

from collections import OrderedDict

from bridge.errors import NotFound
from bridge.store import message_batch
from bridge.store.db import Database
from bridge.store.message_batch import Standing, Statements

__all__ = ["Standings"]

# Enough for every conversation a node serves at once; the least recently used go first.
KEPT = 20_000


class Standings:
    def __init__(self, db: Database, *, kept: int = KEPT) -> None:
        self.db = db
        self._kept = kept
        self._known: OrderedDict[str, Standing] = OrderedDict()

    async def get(self, conversation_id: str) -> Standing:
        """The kept standing, or the one read now; ``NotFound`` if there is no such
        conversation."""
        found = self._known.get(conversation_id)
        if found is not None:
            self._known.move_to_end(conversation_id)
            return found
        async with message_batch.transaction(self.db) as statements:
            return await self.fresh(statements, conversation_id, lock=False)

    async def fresh(
        self, statements: Statements, conversation_id: str, *, lock: bool = True
    ) -> Standing:
        """The standing read in ``statements``' transaction (``lock``: with the conversation's
        row locked until it ends), kept from now on."""
        found = await statements.standing(conversation_id, lock=lock)
        if found is None:
            raise NotFound("no such conversation")
        self._known[conversation_id] = found
        self._known.move_to_end(conversation_id)
        while len(self._known) > self._kept:
            self._known.popitem(last=False)
        return found
