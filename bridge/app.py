"""The aiohttp application and its Socket.IO server: wiring only.

Resources open and close in ``cleanup_ctx``: the database (migrated on start), the policy and
consent texts (read once), the expiry loop. State lives under typed ``AppKey``s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from bridge.config import Settings
from bridge.consent.bridges import Bridges, record_policy
from bridge.consent.expiry import Expiry, ExpiryLoop
from bridge.consent.invites import Invites
from bridge.consent.texts import ConsentTexts
from bridge.conversations import Conversations
from bridge.http_api import HttpApi, error_middleware
from bridge.policy import Policy, load_policy
from bridge.presence import Connections
from bridge.socket_api import SocketEdge
from bridge.store.db import Database, upgrade

__all__ = ["DB", "EDGE", "POLICY", "make_app", "utc_now"]

_log = structlog.get_logger("bridge.app")

DB = web.AppKey("db", Database)
POLICY = web.AppKey("policy", Policy)
EDGE = web.AppKey("edge", SocketEdge)


def utc_now() -> datetime:
    return datetime.now(UTC)


def make_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> web.Application:
    """Build the application; nothing touches the database before it starts."""
    app = web.Application(middlewares=[error_middleware], client_max_size=64 * 1024)
    db = Database(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    policy = load_policy(settings.policy_file)
    texts = ConsentTexts()
    registry = CollectorRegistry()

    connections = Connections()
    bridges = Bridges(db, policy, texts, connections, clock)
    invites = Invites(db, policy, texts, connections, clock)
    conversations = Conversations(db, policy, bridges, clock)
    edge = SocketEdge(db, conversations, bridges, invites, clock, registry, connections, settings)
    expiry = ExpiryLoop(Expiry(db, policy, texts, connections, clock), edge.deliver, clock)
    edge.wake_expiry = expiry.wake
    edge.server.attach(app)
    api = HttpApi(settings, db, conversations, texts, registry, edge.deliver, clock)
    app.add_routes(api.routes())
    app[DB] = db
    app[POLICY] = policy
    app[EDGE] = edge

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await upgrade(db)
        if await record_policy(db, policy, clock()):
            _log.info("policy.recorded", version=policy.version)
        await bridges.pause_all_after_restart()
        task = asyncio.create_task(expiry.run(), name="bridge-expiry")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.dispose()

    app.cleanup_ctx.append(lifecycle)

    async def close_sockets(app: web.Application) -> None:
        await edge.shutdown()

    app.on_shutdown.append(close_sockets)
    return app
