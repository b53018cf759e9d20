"""Who is connected right now, per socket: the presence the domain reads (``Presence``).

Kept in memory only: a victim's connection leaves no trace once it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from bridge.domain.access import Caller
from bridge.domain.auth import Principal
from bridge.domain.delivery import OnDutyOfficer
from bridge.limits import TokenBucket

__all__ = ["Connections", "SocketState"]


@dataclass
class SocketState:
    principal: Principal
    device_id: str | None
    messages: TokenBucket
    # The token the socket connected with: its hash (to find it again) and its expiry.
    token_hash: str
    expires_at: datetime
    # Events of one socket are handled one at a time, in arrival order.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    conversations: set[str] = field(default_factory=set)
    # Set once its token is expired or revoked or its account disabled: it is being disconnected.
    ended: bool = False

    @property
    def owner(self) -> str:
        """What its open sockets are counted against: the staff account, or the victim's token."""
        account = self.principal.account_id
        return f"account:{account}" if account is not None else f"token:{self.token_hash}"

    @property
    def caller(self) -> Caller:
        return Caller(self.principal, self.device_id)


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0


class Connections:
    def __init__(self) -> None:
        self.sockets: dict[str, SocketState] = {}
        self._turns: dict[str, _Turn] = {}

    @contextlib.asynccontextmanager
    async def settling(self, conversation_id: str) -> AsyncIterator[None]:
        """Joins and departures of one conversation, one at a time.

        A departure reads presence and then commits a pause; a join commits and then counts as
        present. Interleaved, a victim or counsellor coming back on a new socket while the old
        one is still being let go would find the bridge paused for their absence.
        """
        turn = self._turns.setdefault(conversation_id, _Turn())
        turn.holders += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.holders -= 1
            if turn.holders == 0:
                del self._turns[conversation_id]

    def _present(self, role: str, conversation_id: str) -> bool:
        return any(
            s.principal.role == role and conversation_id in s.conversations
            for s in self.sockets.values()
        )

    def counsellor_present(self, conversation_id: str) -> bool:
        return self._present("counsellor", conversation_id)

    def victim_present(self, conversation_id: str) -> bool:
        return self._present("victim", conversation_id)

    def officers_on_duty(self) -> list[OnDutyOfficer]:
        """Officers with a connected socket on which a device is registered."""
        seen: dict[str, OnDutyOfficer] = {}
        for s in self.sockets.values():
            p = s.principal
            if (
                p.role == "officer"
                and s.device_id is not None
                and p.account_id is not None
                and not s.ended
            ):
                seen[p.account_id] = OnDutyOfficer(p.account_id, p.region, p.gender)
        return list(seen.values())
