"""The limits within one process: the in-memory limiters of ``bridge.limits``, under a key made
at start and never written anywhere. Each step runs without a pause, so it is atomic."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from bridge.config import Settings
from bridge.limits import CONVERSATION_WINDOW, Backoff, Keyed, WindowLimit

__all__ = ["LocalLimits"]


class LocalLimits:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._keyed = Keyed()
        self.conversations = WindowLimit(
            settings.conversations_per_minute, CONVERSATION_WINDOW, clock
        )
        lockout = (settings.login_lockout_seconds, settings.login_lockout_max_seconds)
        self.users = Backoff(settings.login_failures_per_account, *lockout, clock)
        self.addresses = Backoff(settings.login_failures_per_address, *lockout, clock)
        self.owners: Counter[str] = Counter()
        self._owner: dict[str, str] = {}  # sid -> the owner it counts against

    async def keyed(self, kind: str, value: str) -> bytes:
        return self._keyed(kind, value)

    async def new_conversation(self, address: bytes) -> bool:
        return self.conversations.take(address)

    async def login_allowed(self, user: bytes, address: bytes) -> bool:
        return not self.addresses.locked(address) and self.users.attempt(user)

    async def login_failed(self, user: bytes, address: bytes) -> None:
        self.addresses.fail(address)

    async def login_not_judged(self, user: bytes, address: bytes) -> None:
        self.users.forgive(user)

    async def login_succeeded(self, user: bytes, address: bytes) -> None:
        self.users.reset(user)

    async def socket_opened(self, sid: str, owner: str, limit: int, lasts: float) -> bool:
        if self.owners[owner] >= limit:
            return False
        self.owners[owner] += 1
        self._owner[sid] = owner
        return True

    async def socket_closed(self, sid: str) -> None:
        owner = self._owner.pop(sid, None)
        if owner is not None:
            self.owners[owner] -= 1
            if self.owners[owner] <= 0:
                del self.owners[owner]
