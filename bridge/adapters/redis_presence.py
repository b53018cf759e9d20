"""Presence shared by the nodes over Redis: who is in which conversation and which officers are
on duty, on any node; and nodes that died let go of, once.

Kept in Redis's memory only, and only what presence needs: a socket's id, its role and its node,
under a conversation's id (never an address, a name or a token). Each node renews its lease in
``nodes`` (a sorted set of node id -> lease end) every second; a node whose lease ran out is
dead: what it held no longer counts, and the first node to remove it from ``nodes`` runs its
departures (``Departed``), so that a bridge whose victim or counsellor is not back pauses.

Keys, under the prefix:
    nodes                   sorted set: node id -> lease end (milliseconds since the epoch)
    presence:{conversation} hash: "{role}|{node}|{sid}" -> 1
    node:{node}             set: the conversations the node has sockets in
    duty                    hash: "{node}|{sid}" -> the officer (account, region, gender)
    settle:{conversation}   the lock of :meth:`settling`
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator

import structlog
from redis.asyncio import Redis

from bridge.adapters.local_presence import LocalPresence
from bridge.domain.delivery import OnDutyOfficer
from bridge.domain.presence import Departed
from bridge.domain.roles import Role

__all__ = ["RedisPresence"]

_log = structlog.get_logger("bridge.presence")

LEASE_SECONDS = 5.0
RENEW_SECONDS = 1.0


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _now_ms() -> int:
    return int(time.time() * 1000)


class RedisPresence:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.node = uuid.uuid4().hex
        # This node's own sockets, to know what to remove when one goes, and to write it all
        # again if the node was taken for dead (a Redis outage longer than a lease).
        self._fields: dict[str, list[tuple[str, str]]] = {}  # sid -> [(key, field)]
        self._duty: dict[str, str] = {}  # duty field -> officer
        self._conversations: set[str] = set()
        # No node is let go of before this (monotonic): after Redis was out of reach every
        # lease has run out, and the others need a lease's time to renew theirs.
        self._reap_from = 0.0
        # One local waiter at a time per conversation before the shared lock.
        self._local = LocalPresence()
        # Set by close: redis-py may swallow a cancellation that lands inside a command, so
        # the loop also ends on this.
        self._stopping = asyncio.Event()

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def start(self) -> None:
        await self._renew()

    async def _renew(self) -> bool:
        """Renew this node's lease; whether it had been let go of (no lease to renew)."""
        added = await self.redis.zadd(
            self._key("nodes"), {self.node: _now_ms() + LEASE_SECONDS * 1000}
        )
        return bool(added)

    async def _write_again(self) -> None:
        """Another node took this one for dead and removed what it held: write it again."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for fields in self._fields.values():
                for key, field in fields:
                    pipe.hset(key, field, 1)
            for conversation_id in self._conversations:
                pipe.sadd(self._key("node", self.node), conversation_id)
            for field, value in self._duty.items():
                pipe.hset(self._key("duty"), field, value)
            await pipe.execute()
        _log.warning("presence.written_again", sockets=len(self._fields))

    async def _alive(self) -> set[str]:
        nodes = await self.redis.zrangebyscore(self._key("nodes"), _now_ms(), "+inf")
        return {_text(n) for n in nodes}

    @contextlib.asynccontextmanager
    async def settling(self, conversation_id: str) -> AsyncIterator[None]:
        async with (
            self._local.settling(conversation_id),
            self.redis.lock(
                self._key("settle", conversation_id), timeout=30.0, blocking_timeout=30.0
            ),
        ):
            yield

    async def joined(self, sid: str, role: str, conversation_id: str) -> None:
        key, field = self._key("presence", conversation_id), f"{role}|{self.node}|{sid}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, field, 1)
            pipe.sadd(self._key("node", self.node), conversation_id)
            await pipe.execute()
        self._fields.setdefault(sid, []).append((key, field))
        self._conversations.add(conversation_id)

    async def on_duty(self, sid: str, officer: OnDutyOfficer) -> None:
        value = json.dumps([officer.account_id, officer.region, officer.gender])
        self._duty[f"{self.node}|{sid}"] = value
        await self.redis.hset(self._key("duty"), f"{self.node}|{sid}", value)

    async def off_duty(self, sid: str) -> None:
        self._duty.pop(f"{self.node}|{sid}", None)
        await self.redis.hdel(self._key("duty"), f"{self.node}|{sid}")

    async def gone(self, sid: str) -> None:
        self._duty.pop(f"{self.node}|{sid}", None)
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, field in self._fields.pop(sid, []):
                pipe.hdel(key, field)
            pipe.hdel(self._key("duty"), f"{self.node}|{sid}")
            await pipe.execute()

    async def _present(self, role: str, conversation_id: str) -> bool:
        fields = await self.redis.hkeys(self._key("presence", conversation_id))
        nodes = {_text(f).split("|")[1] for f in fields if _text(f).startswith(f"{role}|")}
        return bool(nodes) and bool(nodes & await self._alive())

    async def counsellor_present(self, conversation_id: str) -> bool:
        return await self._present(Role.COUNSELLOR, conversation_id)

    async def victim_present(self, conversation_id: str) -> bool:
        return await self._present(Role.VICTIM, conversation_id)

    async def officers_on_duty(self) -> list[OnDutyOfficer]:
        duty = await self.redis.hgetall(self._key("duty"))
        alive = await self._alive()
        found: dict[str, OnDutyOfficer] = {}
        for field, value in duty.items():
            if _text(field).split("|")[0] in alive:
                account_id, region, gender = json.loads(value)
                found[account_id] = OnDutyOfficer(account_id, region, gender)
        return list(found.values())

    async def run(self, departed: Departed) -> None:
        while not self._stopping.is_set():
            try:
                if await self._renew():
                    await self._write_again()
                if time.monotonic() >= self._reap_from:
                    await self._let_go_of_dead_nodes(departed)
            except Exception as exc:
                # Redis out of reach: said once a second, without a trace (/readyz says so too).
                _log.warning("presence.renew_failed", error=type(exc).__name__)
                self._reap_from = time.monotonic() + LEASE_SECONDS + RENEW_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RENEW_SECONDS)

    async def _let_go_of_dead_nodes(self, departed: Departed) -> None:
        for dead in await self.redis.zrangebyscore(self._key("nodes"), "-inf", _now_ms()):
            # Whoever removes a dead node lets go of it: exactly one node does.
            if await self.redis.zrem(self._key("nodes"), _text(dead)):
                await self._let_go(_text(dead), departed)

    async def _let_go(self, dead: str, departed: Departed) -> None:
        """Remove what a dead node held, then run the departures it never ran."""
        node_key = self._key("node", dead)
        left: set[tuple[str, str]] = set()
        for raw in await self.redis.smembers(node_key):
            conversation_id = _text(raw)
            key = self._key("presence", conversation_id)
            for field in await self.redis.hkeys(key):
                role, node, _ = _text(field).split("|")
                if node == dead:
                    await self.redis.hdel(key, field)
                    left.add((role, conversation_id))
        await self.redis.delete(node_key)
        for field in await self.redis.hkeys(self._key("duty")):
            if _text(field).split("|")[0] == dead:
                await self.redis.hdel(self._key("duty"), field)
        _log.info("presence.node_let_go", conversations=len({c for _, c in left}))
        for role, conversation_id in sorted(left):
            try:
                await departed(role, conversation_id)
            except Exception:
                _log.exception("presence.departure_failed", role=role)

    def stop(self) -> None:
        """The node stops: the lease is no longer renewed."""
        self._stopping.set()

    async def close(self) -> None:
        """A node that stops ends its lease now: the first node to see it runs the departures
        of those who do not come back elsewhere."""
        self.stop()
        with contextlib.suppress(Exception):
            await self.redis.zadd(self._key("nodes"), {self.node: 0})
