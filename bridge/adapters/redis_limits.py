"""The limits shared by every node over Redis, so that an attacker spread over the nodes meets
the same limits as on one: new conversations per address, failed logins per user name and per
address, open sockets per owner.

Each check-and-count step is one Lua script, so it is atomic as the in-memory step is (parallel
guesses on several nodes cannot all pass), and every key expires by itself once its window or
lock-out has passed. Addresses, user names and owners are keyed hashes: HMAC under a secret
every node must share yet none writes to disk. It is kept in Redis alone, made by the first node
that asks for it and replaced after a day; counters keyed under an old secret simply expire
(so once a day the counts start afresh, and sockets already open count under the old key until
they close). Redis runs without persistence (``bridge.adapters.redis``), so neither the secret
nor a count reaches a disk there.

Open sockets count with the node that holds them: a member ``{node}|{sid}`` per socket, under the
node id of ``bridge.adapters.redis_presence``, whose leases (``nodes``) tell which nodes are
alive. A node that dies closes none of its sockets, so a socket counts only while its node's
lease runs, and members of dead nodes are dropped when the owner next opens one. This costs
nothing per socket while it is open (a socket scored by its node's lease would have to be renewed
every second) and matches presence's view of the nodes exactly.

Keys, under the prefix (times in milliseconds since the epoch):
    limits:secret                  the HMAC secret, hex
    limits:conversations:{hash}    hash: start, count of the address's window
    limits:login:user:{hash}       hash: count, last failure of a user name
    limits:login:address:{hash}    hash: count, last failure of an address
    limits:sockets:{hash}          set: "{node}|{sid}" of the owner's open sockets
    nodes                          presence's node leases, read only
"""

from __future__ import annotations

import binascii
import math
import secrets
import time
from collections.abc import Callable

from redis.asyncio import Redis

from bridge.config import Settings
from bridge.limits import CONVERSATION_WINDOW, Keyed

__all__ = ["RedisLimits"]

SECRET_SECONDS = 24 * 3600
# How long a node uses the secret it read before it reads it again: after a restart of Redis the
# nodes agree on a new one within this time.
SECRET_REREAD_SECONDS = 60.0
# A socket's member outlives its token by this much (sessions end within a check or two).
SOCKET_SLACK_SECONDS = 60.0

# GET, or SET a new secret if there is none; its remaining lifetime either way.
_SECRET = """
local secret = redis.call('GET', KEYS[1])
if not secret then
  secret = ARGV[1]
  redis.call('SET', KEYS[1], secret, 'PX', ARGV[2])
end
return {secret, redis.call('PTTL', KEYS[1])}
"""

# Numbers computed in a script go back to Redis as plain integers (Redis may write a float of
# Lua's in exponent form, which PEXPIRE refuses).
_INT = """
local function int(x) return string.format('%d', math.ceil(x)) end
"""

# KEYS[1] the address's window; ARGV: now, limit, window. A fixed window, as WindowLimit's.
_WINDOW = (
    _INT
    + """
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start, count = unpack(redis.call('HMGET', KEYS[1], 'start', 'count'))
if not start or now - tonumber(start) >= window then
  start, count = now, 0
end
start, count = tonumber(start), tonumber(count)
if count >= limit then return 0 end
redis.call('HSET', KEYS[1], 'start', int(start), 'count', int(count + 1))
redis.call('PEXPIRE', KEYS[1], int(start + window - now))
return 1
"""
)

# Backoff's rules; each script starts with them. ARGV[1..3]: now, base, cap.
_BACKOFF = (
    _INT
    + """
local now, base, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function lockout(count, allowed)
  if count < allowed then return 0 end
  return math.min(cap, base * 2 ^ math.min(count - allowed, 32))
end
local function current(key, allowed)
  local count, last = unpack(redis.call('HMGET', key, 'count', 'last'))
  if not count then return nil end
  count, last = tonumber(count), tonumber(last)
  if now >= last + lockout(count, allowed) + cap then
    redis.call('DEL', key)
    return nil
  end
  return count, last
end
-- Nodes' clocks differ a little, so a step may run with an earlier now than the last failure:
-- a key under its allowance is never locked, and the last failure never moves back.
local function locked(key, allowed)
  local count, last = current(key, allowed)
  local lock = count and lockout(count, allowed) or 0
  return lock > 0 and now < last + lock
end
local function fail(key, allowed)
  local count, last = current(key, allowed)
  count, last = (count or 0) + 1, math.max(last or now, now)
  redis.call('HSET', key, 'count', int(count), 'last', int(last))
  redis.call('PEXPIRE', key, int(last - now + lockout(count, allowed) + cap))
end
"""
)

# KEYS: user, address; ARGV[4], ARGV[5]: failures allowed per user name, per address.
_ALLOWED = (
    _BACKOFF
    + """
local user, address = tonumber(ARGV[4]), tonumber(ARGV[5])
if locked(KEYS[2], address) or locked(KEYS[1], user) then return 0 end
fail(KEYS[1], user)
return 1
"""
)

# KEYS[1]; ARGV[4]: failures allowed.
_FAIL = _BACKOFF + "fail(KEYS[1], tonumber(ARGV[4]))\n"

_FORGIVE = """
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HINCRBY', KEYS[1], 'count', -1) <= 0 then
  redis.call('DEL', KEYS[1])
end
"""

# KEYS: the owner's sockets, the node leases; ARGV: member, limit, now, lifetime.
_OPEN = """
local alive = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[3], '+inf')) do
  alive[node] = true
end
local count = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if alive[string.match(member, '^[^|]*')] then
    count = count + 1
  else
    redis.call('SREM', KEYS[1], member)
  end
end
if count >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
"""


def _ms(seconds: float) -> int:
    return math.ceil(seconds * 1000)


class RedisLimits:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        node: str,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.node = node
        self.settings = settings
        self.clock = clock
        self._secret = redis.register_script(_SECRET)
        self._window = redis.register_script(_WINDOW)
        self._allowed = redis.register_script(_ALLOWED)
        self._fail = redis.register_script(_FAIL)
        self._forgive = redis.register_script(_FORGIVE)
        self._open = redis.register_script(_OPEN)
        self._keyed: Keyed | None = None
        self._reread = 0.0  # time.monotonic() when the secret is read again
        self._sockets: dict[str, tuple[str, str]] = {}  # sid -> (key, member) of this node

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _now(self) -> int:
        return _ms(self.clock())

    def _backoff(self) -> list[int]:
        """The first arguments of every back-off script: now, base, cap."""
        s = self.settings
        return [self._now(), _ms(s.login_lockout_seconds), _ms(s.login_lockout_max_seconds)]

    async def keyed(self, kind: str, value: str) -> bytes:
        if self._keyed is None or time.monotonic() >= self._reread:
            secret, pttl = await self._secret(
                keys=[self._key("limits", "secret")],
                args=[secrets.token_hex(32), SECRET_SECONDS * 1000],
            )
            self._keyed = Keyed(binascii.unhexlify(secret))  # str or bytes alike
            self._reread = time.monotonic() + min(SECRET_REREAD_SECONDS, int(pttl) / 1000)
        return self._keyed(kind, value)

    async def new_conversation(self, address: bytes) -> bool:
        key = self._key("limits", "conversations", address.hex())
        limit, window = self.settings.conversations_per_minute, _ms(CONVERSATION_WINDOW)
        return bool(await self._window(keys=[key], args=[self._now(), limit, window]))

    def _login(self, kind: str, key: bytes) -> str:
        return self._key("limits", "login", kind, key.hex())

    async def login_allowed(self, user: bytes, address: bytes) -> bool:
        s = self.settings
        allowed = await self._allowed(
            keys=[self._login("user", user), self._login("address", address)],
            args=[*self._backoff(), s.login_failures_per_account, s.login_failures_per_address],
        )
        return bool(allowed)

    async def login_failed(self, user: bytes, address: bytes) -> None:
        await self._fail(
            keys=[self._login("address", address)],
            args=[*self._backoff(), self.settings.login_failures_per_address],
        )

    async def login_not_judged(self, user: bytes, address: bytes) -> None:
        await self._forgive(keys=[self._login("user", user)])

    async def login_succeeded(self, user: bytes, address: bytes) -> None:
        await self.redis.delete(self._login("user", user))

    async def socket_opened(self, sid: str, owner: str, limit: int, lasts: float) -> bool:
        key = self._key("limits", "sockets", (await self.keyed("owner", owner)).hex())
        member = f"{self.node}|{sid}"
        lifetime = _ms(max(lasts, 0.0) + SOCKET_SLACK_SECONDS)
        opened = await self._open(
            keys=[key, self._key("nodes")], args=[member, limit, self._now(), lifetime]
        )
        if opened:
            self._sockets[sid] = (key, member)
        return bool(opened)

    async def socket_closed(self, sid: str) -> None:
        held = self._sockets.pop(sid, None)
        if held is not None:
            await self.redis.srem(*held)
