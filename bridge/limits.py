"""Rate limits: a token bucket per socket, counters per address and account, and the interface
(:class:`Limits`) through which the edges count addresses, accounts and sockets per owner, in
one process (``bridge.adapters.local_limits``) or shared by every node
(``bridge.adapters.redis_limits``).

Addresses and user names are never kept as such: a limiter holds an HMAC of them under a key
never written to disk, so nothing here can be turned back into an address. Every structure is
bounded and forgets a key once its window has passed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["CONVERSATION_WINDOW", "Backoff", "Keyed", "Limits", "TokenBucket", "WindowLimit"]

# Keys a limiter holds at most; past it the oldest are forgotten first.
MAX_KEYS = 100_000
# conversations_per_minute counts new conversations in windows of this many seconds.
CONVERSATION_WINDOW = 60.0


class Limits(Protocol):
    """The per-address and per-account limits as the edges count them. Addresses and user names
    arrive as :meth:`keyed` hashes; an owner is what a socket counts against (a staff account or
    a victim token)."""

    async def keyed(self, kind: str, value: str) -> bytes:
        """``value`` (an address, a user name) as a hash that names nobody."""
        ...

    async def new_conversation(self, address: bytes) -> bool:
        """Count a new conversation from ``address``; False past ``conversations_per_minute``."""
        ...

    async def login_allowed(self, user: bytes, address: bytes) -> bool:
        """False while the user name or the address is locked out; else the attempt counts as
        failed against the user name until it is judged."""
        ...

    async def login_failed(self, user: bytes, address: bytes) -> None:
        """A wrong password: held against the address too."""
        ...

    async def login_not_judged(self, user: bytes, address: bytes) -> None:
        """Neither right nor wrong (the database failed, say): held against nobody."""
        ...

    async def login_succeeded(self, user: bytes, address: bytes) -> None:
        """The user name's failures are forgotten."""
        ...

    async def socket_opened(self, sid: str, owner: str, limit: int, lasts: float) -> bool:
        """Count socket ``sid`` against ``owner``; False if it already holds ``limit``. The
        socket lives ``lasts`` seconds at most (its token's remaining lifetime)."""
        ...

    async def socket_closed(self, sid: str) -> None:
        """Socket ``sid`` no longer counts against its owner."""
        ...


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; each message takes one."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Keyed:
    """HMAC-SHA256 under a secret key (random per process unless given): a counter key that
    names nobody."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def __call__(self, kind: str, value: str) -> bytes:
        return hmac.new(self._secret, f"{kind}\0{value}".encode(), hashlib.sha256).digest()[:16]


class WindowLimit:
    """At most ``limit`` events per key in each window of ``window`` seconds (a fixed window)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._counts: dict[bytes, tuple[float, int]] = {}

    def take(self, key: bytes) -> bool:
        now = self.clock()
        start, count = self._counts.get(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if count >= self.limit:
            return False
        self._counts.pop(key, None)  # re-inserted last: the dict stays ordered by start
        self._counts[key] = (start, count + 1)
        self._forget(now)
        return True

    def _forget(self, now: float) -> None:
        while self._counts:
            oldest, (start, _) = next(iter(self._counts.items()))
            if now - start < self.window and len(self._counts) <= MAX_KEYS:
                break
            del self._counts[oldest]


@dataclass
class _Failures:
    count: int
    last: float


class Backoff:
    """Failed attempts per key; after ``allowed`` of them the key is locked out, ``base`` seconds
    at first and twice as long after each further failure, up to ``cap``.

    :meth:`attempt` counts an attempt as a failure from the moment it starts, so attempts made
    in parallel cannot all slip in before the first has failed; :meth:`forgive` takes back one
    that did not fail and :meth:`reset` forgets the key. :meth:`fail` counts a failure after
    the fact. A key is forgotten once it has been quiet
    for ``cap`` seconds after its lock-out ended.
    """

    def __init__(
        self,
        allowed: int,
        base: float,
        cap: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowed = allowed
        self.base = base
        self.cap = cap
        self.clock = clock
        self._failures: dict[bytes, _Failures] = {}

    def _lockout(self, count: int) -> float:
        if count < self.allowed:
            return 0.0
        return float(min(self.cap, self.base * 2 ** min(count - self.allowed, 32)))

    def _current(self, key: bytes, now: float) -> _Failures | None:
        failures = self._failures.get(key)
        if failures is not None and now >= failures.last + self._lockout(failures.count) + self.cap:
            del self._failures[key]
            return None
        return failures

    def locked(self, key: bytes) -> bool:
        now = self.clock()
        failures = self._current(key, now)
        return failures is not None and now < failures.last + self._lockout(failures.count)

    def attempt(self, key: bytes) -> bool:
        """False while ``key`` is locked out; else the attempt is counted as a failure."""
        if self.locked(key):
            return False
        self.fail(key)
        return True

    def fail(self, key: bytes) -> None:
        now = self.clock()
        failures = self._failures.pop(key, None) or _Failures(0, now)
        failures.count += 1
        failures.last = now
        self._failures[key] = failures  # last in order: the oldest are forgotten first
        while len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]

    def forgive(self, key: bytes) -> None:
        failures = self._failures.get(key)
        if failures is not None:
            failures.count -= 1
            if failures.count <= 0:
                del self._failures[key]

    def reset(self, key: bytes) -> None:
        self._failures.pop(key, None)
