"""The HTTP edge under ``/api/v1`` (PROTOCOL.md, "HTTP"), with one error middleware.

Every error body is ``{"error": {"code", "message"}}``, counted by its code. A victim's user
agent is never read here and the server writes no access log. The client's address
(``client_address``) is read for the per-address limits only, and kept only as a keyed hash, in
memory or in Redis's (``bridge.limits``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST

from bridge.clock import iso
from bridge.config import Settings
from bridge.domain.access import Caller
from bridge.domain.auth import Principal, authenticate_bearer, bearer_token
from bridge.domain.conversations import Conversations
from bridge.domain.core import Core
from bridge.domain.delivery import Effect
from bridge.domain.staff import Staff
from bridge.domain.transcripts import Transcripts
from bridge.edges.client_address import ClientAddress
from bridge.edges.metrics import Metrics
from bridge.errors import (
    BridgeError,
    Forbidden,
    Internal,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
)
from bridge.limits import Limits
from bridge.protocol import ConversationCreate, SessionCreate, decode_body

__all__ = ["HttpApi", "error_middleware"]

_log = structlog.get_logger("bridge.http")
_MAX_BODY = 64 * 1024


def error_middleware(counted: Callable[[str], None]) -> Middleware:
    """The one error middleware: every error answered with its body, its code ``counted``."""

    @web.middleware
    async def errors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except BridgeError as exc:
            error = exc
        except web.HTTPNotFound:
            error = NotFound("no such resource")
        except web.HTTPMethodNotAllowed:
            error = Invalid("method not allowed")
        except web.HTTPRequestEntityTooLarge:
            error = TooLarge("the body is too large")
        except web.HTTPException:
            raise
        except Exception:
            _log.exception("http.failed", path=request.path)
            error = Internal("something went wrong on the server")
        counted(error.code)
        return web.json_response({"error": error.as_body()}, status=error.http_status)

    return errors


class HttpApi:
    def __init__(
        self,
        settings: Settings,
        core: Core,
        conversations: Conversations,
        transcripts: Transcripts,
        staff: Staff,
        metrics: Metrics,
        deliver: Callable[[list[Effect]], Awaitable[None]],
        end_token: Callable[[str], None],
        shared_ready: Callable[[], Awaitable[bool]],
        limits: Limits,
    ) -> None:
        self.settings = settings
        self.db = core.db
        self.texts = core.texts
        self.policies = core.policies
        self.clock = core.clock
        self.conversations = conversations
        self.transcripts = transcripts
        self.metrics = metrics
        self.deliver = deliver
        self.end_token = end_token
        self.shared_ready = shared_ready
        self.staff = staff
        self.limits = limits
        self.client_address = ClientAddress(settings.trusted_proxies)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/session", self.session),
            web.delete("/api/v1/session", self.logout),
            web.get("/api/v1/orgs/{org}/key", self.org_key),
            web.get("/api/v1/orgs/{org}/sealed-key", self.sealed_org_key),
            web.post("/api/v1/conversations", self.create_conversation),
            web.get("/api/v1/consent-texts/{purpose}", self.consent_text),
            web.get("/api/v1/policy", self.policy),
            web.get("/api/v1/conversations/{conversation_id}/transcript", self.transcript),
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.scrape),
        ]

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > _MAX_BODY:
            raise TooLarge("the body is too large")
        return await request.read()

    async def _principal(self, request: web.Request) -> Principal:
        return await authenticate_bearer(
            self.db, request.headers.get("Authorization", ""), self.clock()
        )

    async def _address(self, request: web.Request) -> bytes:
        """The client's address as a keyed hash."""
        return await self.limits.keyed("address", self.client_address(request))

    async def session(self, request: web.Request) -> web.Response:
        body = decode_body(await self._body(request), SessionCreate)
        user = await self.limits.keyed("user", body.username)
        address = await self._address(request)
        # While locked out the password is not even checked. An attempt counts against its user
        # name until it has succeeded, so parallel guesses cannot pass the limit; against the
        # address only once it failed, so many staff behind one address may log in at once.
        if not await self.limits.login_allowed(user, address):
            raise RateLimited("too many failed logins; try again later")
        try:
            login = await self.staff.log_in(
                body.username,
                body.password,
                lifetime=timedelta(seconds=self.settings.staff_token_seconds),
                opslimit=self.settings.password_opslimit,
                memlimit=self.settings.password_memlimit,
            )
        except Unauthenticated:
            await self.limits.login_failed(user, address)
            _log.info("session.refused")
            raise
        except BaseException:
            # Not a wrong password (a database error, say): not held against anyone.
            await self.limits.login_not_judged(user, address)
            raise
        await self.limits.login_succeeded(user, address)
        _log.info("session.created", role=login.role)
        return web.json_response(
            {
                "token": login.token,
                "user_id": login.user_id,
                "role": login.role,
                "org": login.org,
                "expires_at": iso(login.expires_at),
            }
        )

    async def logout(self, request: web.Request) -> web.Response:
        """Revoke the bearer token; the sockets that carry it are disconnected at once."""
        token = bearer_token(request.headers.get("Authorization", ""))
        credential = await self.staff.log_out(token)
        self.end_token(credential.token_hash)
        _log.info("session.revoked", role=credential.principal.role)
        return web.Response(status=204)

    async def org_key(self, request: web.Request) -> web.Response:
        """The newest key (the one to seal to), and every version (older scopes name theirs)."""
        keys = await self.staff.org_keys(request.match_info["org"])
        versions = [{"key_id": key.key_id, "x25519": key.x25519} for key in keys]
        return web.json_response({"org": keys[-1].org, **versions[-1], "versions": versions})

    async def sealed_org_key(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        org, key_id = request.match_info["org"], request.query.get("key_id")
        return web.json_response(await self.staff.sealed_org_key(authorization, org, key_id))

    async def policy(self, request: web.Request) -> web.Response:
        """The werkafspraken this node enforces, as both organisations signed them (public: a
        policy holds no personal data)."""
        signed = self.policies.signed
        policy = signed.policy
        return web.json_response(
            {
                "version": policy.version,
                "serial": policy.serial,
                "sha256": policy.sha256,
                "signed_by": dict(signed.signed_by),
                "note": signed.note,
            }
        )

    async def create_conversation(self, request: web.Request) -> web.Response:
        body = decode_body(await self._body(request), ConversationCreate)
        if not await self.limits.new_conversation(await self._address(request)):
            raise RateLimited("too many new conversations from here; wait a minute")
        lifetime = timedelta(seconds=self.settings.victim_token_seconds)
        outcome = await self.conversations.create(body, lifetime)
        await self.deliver(outcome.effects)
        return web.json_response(outcome.ack, status=201)

    async def transcript(self, request: web.Request) -> web.Response:
        """The whole transcript of the caller's scope, logged as ``transcript.exported``."""
        principal = await self._principal(request)
        if principal.is_victim:
            raise Forbidden("a transcript is exported by staff")
        answer = await self.transcripts.export(
            Caller(principal, None), request.match_info["conversation_id"]
        )
        return web.json_response(answer)

    async def consent_text(self, request: web.Request) -> web.Response:
        lang = request.query.get("lang", "nl")
        purpose = request.match_info["purpose"]
        if lang not in ("nl", "en"):
            raise Invalid("lang must be nl or en")
        if purpose not in ("informational", "report"):
            raise NotFound("no such purpose")
        return web.json_response(self.texts.get(purpose, lang).as_payload())

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready when the database answers, and Redis too where the nodes share it."""
        try:
            await self.db.ping()
            database = True
        except Exception:
            database = False
            _log.warning("readyz.database_unreachable")
        redis = await self.shared_ready()
        if not redis:
            _log.warning("readyz.redis_unreachable")
        ready = database and redis
        return web.json_response(
            {"status": "ok" if ready else "unavailable", "database": database, "redis": redis},
            status=200 if ready else 503,
        )

    async def scrape(self, request: web.Request) -> web.Response:
        return web.Response(
            body=await self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
