"""The auditor's HTTP routes under ``/api/v1/audit`` (PROTOCOL.md, "HTTP" and "Log entries").

Entries, checkpoints and RFC 9162 proofs, for the auditor role only (the log key for anyone).
Nothing here returns content: the log holds none.
"""

from __future__ import annotations

import re

from aiohttp import web
from sqlalchemy import select

from bridge.crypto import b64u_decode, b64u_encode
from bridge.domain.auth import authenticate_bearer
from bridge.domain.core import Core
from bridge.errors import Forbidden, Invalid
from bridge.log import merkle
from bridge.log.signed_note import note_body, sign_note
from bridge.log.writer import checkpoint_view
from bridge.store.models import LogEntry, LogState, StoredCheckpoint

__all__ = ["AuditApi"]

_DIGITS = re.compile(r"^(0|[1-9][0-9]{0,15})$")
MAX_PAGE = 1000


def _page(request: web.Request) -> tuple[int, int]:
    """``start`` and ``count`` of a paged route."""
    start, count = _int(request, "start", 0), _int(request, "count", 100)
    if not 1 <= count <= MAX_PAGE:
        raise Invalid(f"count must be between 1 and {MAX_PAGE}")
    return start, count


def _int(request: web.Request, name: str, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise Invalid(f"{name} is required")
        return default
    if not _DIGITS.match(raw):
        raise Invalid(f"{name} must be a whole number")
    return int(raw)


class AuditApi:
    def __init__(self, core: Core) -> None:
        self.db = core.db
        self.log = core.log
        self.clock = core.clock
        # Leaf hashes in memory, with complete subtrees cached: proofs need no pass over the log.
        self.tree = merkle.Tree()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/audit/entries", self.entries),
            web.get("/api/v1/audit/checkpoint", self.checkpoint),
            web.get("/api/v1/audit/checkpoint/note", self.checkpoint_note),
            web.get("/api/v1/audit/checkpoints", self.checkpoints),
            web.get("/api/v1/audit/proof/inclusion", self.inclusion),
            web.get("/api/v1/audit/proof/consistency", self.consistency),
            web.get("/api/v1/audit/log-key", self.log_key),
        ]

    async def _auditor(self, request: web.Request) -> None:
        principal = await authenticate_bearer(
            self.db, request.headers.get("Authorization", ""), self.clock()
        )
        if principal.role != "auditor":
            raise Forbidden("the log is for auditors")

    async def _size(self) -> int:
        """The log's size now, with the in-memory tree brought up to it."""
        async with self.db.session() as session:
            state = await session.get_one(LogState, 1)
            if len(self.tree) < state.size:
                rows = await session.scalars(
                    select(LogEntry.leaf_hash)
                    .where(LogEntry.idx >= len(self.tree), LogEntry.idx < state.size)
                    .order_by(LogEntry.idx)
                )
                for leaf in rows:
                    self.tree.append(b64u_decode(leaf))
            return state.size

    async def entries(self, request: web.Request) -> web.Response:
        await self._auditor(request)
        start, count = _page(request)
        async with self.db.session() as session:
            size = (await session.get_one(LogState, 1)).size
            rows = await session.execute(
                select(LogEntry.idx, LogEntry.entry)
                .where(LogEntry.idx >= start, LogEntry.idx < start + count)
                .order_by(LogEntry.idx)
            )
            # The stored JCS text is spliced in as is: what the auditor hashes is what was logged.
            items = ",".join(f'{{"index":{idx},"entry":{entry}}}' for idx, entry in rows.all())
        return web.Response(
            text=f'{{"entries":[{items}],"size":{size}}}', content_type="application/json"
        )

    async def checkpoint(self, request: web.Request) -> web.Response:
        await self._auditor(request)
        async with self.db.session() as session, session.begin():
            signed = await self.log.checkpoint(session, self.clock())
        return web.json_response(signed)

    async def checkpoint_note(self, request: web.Request) -> web.Response:
        """The checkpoint as a C2SP ``tlog-checkpoint`` signed note, for witnesses to cosign."""
        await self._auditor(request)
        async with self.db.session() as session, session.begin():
            signed = await self.log.checkpoint(session, self.clock())
        key = self.log.key
        body = note_body(key.origin, signed["size"], b64u_decode(signed["root"]))
        return web.Response(
            text=sign_note(body, key.origin, key.signing), content_type="text/plain"
        )

    async def checkpoints(self, request: web.Request) -> web.Response:
        """Every signed checkpoint, oldest first (an addition, for exports)."""
        await self._auditor(request)
        start, count = _page(request)
        async with self.db.session() as session:
            rows = await session.scalars(
                select(StoredCheckpoint).order_by(StoredCheckpoint.id).offset(start).limit(count)
            )
            return web.json_response({"checkpoints": [checkpoint_view(row) for row in rows]})

    async def inclusion(self, request: web.Request) -> web.Response:
        await self._auditor(request)
        index, size = _int(request, "index"), _int(request, "size")
        if not 0 <= index < size <= await self._size():
            raise Invalid("an inclusion proof needs 0 <= index < size <= the log's size")
        path = self.tree.inclusion_proof(index, size)
        async with self.db.session() as session:
            leaf = await session.scalar(select(LogEntry.leaf_hash).where(LogEntry.idx == index))
        return web.json_response(
            {
                "index": index,
                "size": size,
                "leaf_hash": leaf,
                "path": [b64u_encode(node) for node in path],
            }
        )

    async def consistency(self, request: web.Request) -> web.Response:
        await self._auditor(request)
        first, second = _int(request, "first"), _int(request, "second")
        if not 1 <= first <= second <= await self._size():
            raise Invalid("a consistency proof needs 1 <= first <= second <= the log's size")
        path = self.tree.consistency_proof(first, second)
        return web.json_response(
            {"first": first, "second": second, "path": [b64u_encode(node) for node in path]}
        )

    async def log_key(self, request: web.Request) -> web.Response:
        key = self.log.key
        return web.json_response(
            {"key_id": key.key_id, "ed25519": key.ed25519, "origin": key.origin}
        )
