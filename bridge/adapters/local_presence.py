"""Presence within one process: the sockets of this node are all there is."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bridge.domain.delivery import OnDutyOfficer
from bridge.domain.presence import Departed
from bridge.domain.roles import Role

__all__ = ["LocalPresence"]


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0


class LocalPresence:
    def __init__(self) -> None:
        self._where: dict[str, set[tuple[str, str]]] = {}  # sid -> {(role, conversation)}
        self._duty: dict[str, OnDutyOfficer] = {}
        self._turns: dict[str, _Turn] = {}
        self._stopping = asyncio.Event()

    @contextlib.asynccontextmanager
    async def settling(self, conversation_id: str) -> AsyncIterator[None]:
        turn = self._turns.setdefault(conversation_id, _Turn())
        turn.holders += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.holders -= 1
            if turn.holders == 0:
                del self._turns[conversation_id]

    async def joined(self, sid: str, role: str, conversation_id: str) -> None:
        self._where.setdefault(sid, set()).add((role, conversation_id))

    async def on_duty(self, sid: str, officer: OnDutyOfficer) -> None:
        self._duty[sid] = officer

    async def off_duty(self, sid: str) -> None:
        self._duty.pop(sid, None)

    async def gone(self, sid: str) -> None:
        self._where.pop(sid, None)
        self._duty.pop(sid, None)

    def _present(self, role: str, conversation_id: str) -> bool:
        return any((role, conversation_id) in where for where in self._where.values())

    async def counsellor_present(self, conversation_id: str) -> bool:
        return self._present(Role.COUNSELLOR, conversation_id)

    async def victim_present(self, conversation_id: str) -> bool:
        return self._present(Role.VICTIM, conversation_id)

    async def officers_on_duty(self) -> list[OnDutyOfficer]:
        return list({o.account_id: o for o in self._duty.values()}.values())

    async def start(self) -> None:
        return None

    async def run(self, departed: Departed) -> None:
        """One node: no other node can die under it."""
        await self._stopping.wait()

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        return None
