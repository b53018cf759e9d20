"""The auditor's HTTP routes under ``/api/v1/audit`` (PROTOCOL.md, "HTTP" and "Log entries").

Entries, checkpoints and RFC 9162 proofs, for the auditor role only (the log key and its
history for anyone).
Nothing here returns content: the log holds none.
"""

from __future__ import annotations

import re

from aiohttp import web

from bridge.domain.auth import authenticate_bearer
from bridge.domain.core import Core
from bridge.domain.roles import Role
from bridge.errors import Forbidden, Invalid
from bridge.log.reader import LogReader
from bridge.log.rules import RULES

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
    def __init__(self, core: Core, reader: LogReader) -> None:
        self.db = core.db
        self.clock = core.clock
        self.origin = core.log.key.origin
        self.reader = reader

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/audit/entries", self.entries),
            web.get("/api/v1/audit/checkpoint", self.checkpoint),
            web.get("/api/v1/audit/checkpoint/note", self.checkpoint_note),
            web.get("/api/v1/audit/checkpoints", self.checkpoints),
            web.get("/api/v1/audit/proof/inclusion", self.inclusion),
            web.get("/api/v1/audit/proof/consistency", self.consistency),
            web.get("/api/v1/audit/log-key", self.log_key),
            web.get("/api/v1/audit/log-keys", self.log_keys),
            web.get("/api/v1/audit/check", self.check),
        ]

    async def _auditor(self, request: web.Request) -> None:
        principal = await authenticate_bearer(
            self.db, request.headers.get("Authorization", ""), self.clock()
        )
        if principal.role != Role.AUDITOR:
            raise Forbidden("the log is for auditors")

    async def entries(self, request: web.Request) -> web.Response:
        await self._auditor(request)
        page = await self.reader.entries(*_page(request))
        # The stored JCS text is spliced in as is: what the auditor hashes is what was logged.
        items = ",".join(f'{{"index":{idx},"entry":{entry}}}' for idx, entry in page.entries)
        return web.Response(
            text=f'{{"entries":[{items}],"size":{page.size}}}', content_type="application/json"
        )

    async def checkpoint(self, request: web.Request) -> web.Response:
        await self._auditor(request)
        return web.json_response(await self.reader.checkpoint())

    async def checkpoint_note(self, request: web.Request) -> web.Response:
        """The checkpoint as a C2SP ``tlog-checkpoint`` signed note, for witnesses to cosign."""
        await self._auditor(request)
        return web.Response(text=await self.reader.checkpoint_note(), content_type="text/plain")

    async def checkpoints(self, request: web.Request) -> web.Response:
        """Every signed checkpoint, oldest first (an addition, for exports)."""
        await self._auditor(request)
        return web.json_response({"checkpoints": await self.reader.checkpoints(*_page(request))})

    async def inclusion(self, request: web.Request) -> web.Response:
        await self._auditor(request)
        proof = await self.reader.inclusion(_int(request, "index"), _int(request, "size"))
        return web.json_response(proof)

    async def consistency(self, request: web.Request) -> web.Response:
        await self._auditor(request)
        proof = await self.reader.consistency(_int(request, "first"), _int(request, "second"))
        return web.json_response(proof)

    async def log_key(self, request: web.Request) -> web.Response:
        """The key that signs now: the last of the history, read from the log, so every node
        answers the same from the moment of a rotation."""
        key = (await self.reader.log_keys())[-1]
        return web.json_response(
            {"key_id": key.key_id, "ed25519": key.ed25519, "origin": self.origin}
        )

    async def log_keys(self, request: web.Request) -> web.Response:
        """Every key the log was signed with, oldest first, and the sizes each signed."""
        keys = [key.view() for key in await self.reader.log_keys()]
        return web.json_response({"origin": self.origin, "keys": keys})

    async def check(self, request: web.Request) -> web.Response:
        """The agreed rules run over the whole log (as ``bridge audit check`` runs them on an
        export): every breach by rule, with the entry that breaks it and those it is judged
        against."""
        await self._auditor(request)
        size, breaches = await self.reader.breaches()
        found = [
            {"rule": b.rule, "index": b.index, "entries": list(b.entries), "text": b.text}
            for b in breaches
        ]
        return web.json_response({"size": size, "rules": list(RULES), "breaches": found})
