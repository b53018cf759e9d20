"""The open sockets of this process: who each speaks for, which sessions are over; what they
tell the presence board (``bridge.domain.presence``), and how many each owner holds, counted by
the limits (``bridge.limits.Limits``: this node's alone, or every node's).

Kept in memory only (and as presence and keyed counts in Redis, with nodes that share them): a
victim's connection leaves no trace once it is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from bridge.config import Settings
from bridge.domain.access import Caller
from bridge.domain.auth import Credential, Principal, valid_tokens
from bridge.domain.delivery import OnDutyOfficer
from bridge.domain.presence import PresenceBoard
from bridge.domain.roles import Role
from bridge.errors import RateLimited
from bridge.limits import Limits, TokenBucket
from bridge.store.db import Database

__all__ = ["CHECK_BATCH", "Connections", "Sessions", "SocketState"]

_log = structlog.get_logger("bridge.socket")

# Sockets whose tokens one query of the session check reads. Every query of the check is the
# same statement, with this many parameters (the last batch padded): the driver keeps each
# distinct statement it ran prepared (SQLite's 128 most recent, some 230 bytes a parameter),
# and one query for all sockets, of another size whenever a socket came or went, kept a hundred
# of them, 20 KiB a socket at 20,000 (docs/performance.md, "Memory per idle socket"). A single
# query would also near the 32,766 parameters SQLite and PostgreSQL take in one statement.
CHECK_BATCH = 500


@dataclass(slots=True)
class SocketState:
    """One open socket, kept as long as it is: in slots, as a node holds thousands of them."""

    principal: Principal
    device_id: str | None
    messages: TokenBucket
    # The token the socket connected with: its hash (to find it again) and its expiry.
    token_hash: str
    expires_at: datetime
    # Events of one socket are handled one at a time, in arrival order.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Mostly one, and never many: a tuple is a quarter of the size of a set of one.
    conversations: tuple[str, ...] = ()
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


class Connections:
    """The open sockets of this node, the presence board every node reads
    (``bridge.domain.presence``): what the domain reads as presence is written here; and the
    limits their owners' sockets count against."""

    def __init__(self, board: PresenceBoard, limits: Limits) -> None:
        self.sockets: dict[str, SocketState] = {}
        self.board = board
        self.limits = limits

    def settling(self, conversation_id: str) -> AbstractAsyncContextManager[None]:
        return self.board.settling(conversation_id)

    def roles(self) -> list[str]:
        """The role of each open socket (what the metrics count)."""
        return [s.principal.role for s in self.sockets.values()]

    async def joined(self, sid: str, state: SocketState, conversation_id: str) -> None:
        if conversation_id not in state.conversations:
            state.conversations += (conversation_id,)
        await self.board.joined(sid, state.principal.role, conversation_id)

    async def registered(self, sid: str, state: SocketState, device_id: str) -> None:
        """A device is registered on the socket: an officer is on duty from here."""
        state.device_id = device_id
        p = state.principal
        if p.role == Role.OFFICER and p.account_id is not None and not state.ended:
            await self.board.on_duty(sid, OnDutyOfficer(p.account_id, p.region, p.gender))


class Sessions:
    """Opening and closing sockets against their owners' limits, and ending those whose token
    expired or was revoked or whose account was disabled."""

    def __init__(
        self,
        connections: Connections,
        db: Database,
        settings: Settings,
        clock: Callable[[], datetime],
        disconnect: Callable[[str], Coroutine[object, object, None]],
    ) -> None:
        self.connections = connections
        self.sockets = connections.sockets
        self.db = db
        self.settings = settings
        self.clock = clock
        self.disconnect = disconnect
        self.ending: set[asyncio.Task[None]] = set()

    async def open(self, sid: str, credential: Credential) -> SocketState:
        """Count a new socket against its owner; ``RateLimited`` past the owner's limit."""
        principal = credential.principal
        bucket = TokenBucket(self.settings.message_rate, self.settings.message_burst)
        state = SocketState(
            principal,
            principal.victim_device_id,
            bucket,
            credential.token_hash,
            credential.expires_at,
        )
        limit = (
            self.settings.sockets_per_victim
            if principal.is_victim
            else self.settings.sockets_per_account
        )
        lasts = (credential.expires_at - self.clock()).total_seconds()
        if not await self.connections.limits.socket_opened(sid, state.owner, limit, lasts):
            _log.info("socket.refused_too_many", role=principal.role)
            raise RateLimited("too many open sockets")
        self.sockets[sid] = state
        return state

    async def close(self, sid: str) -> SocketState | None:
        """Forget a socket that went; its state, if it was open."""
        await self.connections.board.gone(sid)
        state = self.sockets.pop(sid, None)
        if state is not None:
            await self.connections.limits.socket_closed(sid)
        return state

    def over(self, state: SocketState) -> bool:
        """Whether the socket's session has ended: an expired token is seen here from memory,
        a revoked one once it is checked."""
        return state.ended or state.expires_at <= self.clock()

    def end(self, sid: str, state: SocketState) -> None:
        """Disconnect a socket whose session is over, after what it is being sent now (an ack)."""
        if state.ended:
            return
        state.ended = True
        _log.info("socket.session_ended", role=state.principal.role)
        task = asyncio.create_task(self._end(sid))
        self.ending.add(task)
        task.add_done_callback(self.ending.discard)

    async def _end(self, sid: str) -> None:
        await self.connections.board.off_duty(sid)  # no invite goes to it from here
        await self.disconnect(sid)

    def end_token(self, token_hash: str) -> None:
        """A token was revoked in this process (a logout): its sockets go at once."""
        for sid, state in list(self.sockets.items()):
            if state.token_hash == token_hash:
                self.end(sid, state)

    async def check(self) -> None:
        """Disconnect every socket whose token expired or was revoked or whose account was
        disabled, with one query for each ``CHECK_BATCH`` sockets (the CLI disables accounts
        from another process, so the database is where that shows)."""
        sids = list(self.sockets)
        for start in range(0, len(sids), CHECK_BATCH):
            batch = [
                (sid, state)
                for sid in sids[start : start + CHECK_BATCH]
                if (state := self.sockets.get(sid)) is not None and not state.ended
            ]
            if not batch:
                continue
            hashes = list({state.token_hash for _, state in batch})
            hashes += hashes[:1] * (CHECK_BATCH - len(hashes))
            async with self.db.reading() as session:
                valid = await valid_tokens(session, hashes, self.clock())
            for sid, state in batch:
                # Those still open once the query is answered.
                if state.token_hash not in valid and self.sockets.get(sid) is state:
                    self.end(sid, state)

    async def run_checks(self) -> None:
        while True:
            await asyncio.sleep(self.settings.session_check_seconds)
            try:
                await self.check()
            except Exception:
                _log.exception("sessions.check_failed")
