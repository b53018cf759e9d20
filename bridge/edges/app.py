"""The aiohttp application and its Socket.IO server: wiring only.

Resources open and close in ``cleanup_ctx``: the database (migrated on start), the policy and
consent texts (read once), the expiry, checkpoint and session-check loops. State lives under
typed ``AppKey``s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import structlog
from aiohttp import web

from bridge.clock import utc_now
from bridge.config import Settings
from bridge.domain.consent.breakglass import Breakglass
from bridge.domain.consent.bridges import Bridges
from bridge.domain.consent.expiry import Expiry, ExpiryLoop
from bridge.domain.consent.invites import Invites
from bridge.domain.consent.texts import ConsentTexts
from bridge.domain.conversations import Conversations
from bridge.domain.core import Core
from bridge.domain.devices import Devices
from bridge.domain.messages import Messages
from bridge.domain.policies import PolicyInForce, PolicyWatch, Werkafspraken
from bridge.domain.policies import start as start_policy
from bridge.domain.staff import Staff
from bridge.domain.transcripts import Transcripts
from bridge.domain.transitions import watch
from bridge.edges.audit_api import AuditApi
from bridge.edges.cluster import links
from bridge.edges.http_api import HttpApi, error_middleware
from bridge.edges.metrics import Metrics
from bridge.edges.pages import install_pages
from bridge.edges.socket import Connections, Domain, SocketEdge
from bridge.errors import Invalid
from bridge.log.reader import LogReader
from bridge.log.writer import open_log, run_checkpoints
from bridge.store.db import Database, upgrade

__all__ = ["CORE", "DB", "EDGE", "make_app"]

_log = structlog.get_logger("bridge.edges.app")

DB = web.AppKey("db", Database)
EDGE = web.AppKey("edge", SocketEdge)
CORE = web.AppKey("core", Core)


def make_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> web.Application:
    """Build the application; nothing touches the database before it starts."""
    node = links(settings)
    connections = Connections(node.board, node.limits)
    db = Database(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    metrics = Metrics(db, clock, connections.roles)
    watch(db, metrics)
    app = web.Application(middlewares=[error_middleware(metrics.error)], client_max_size=64 * 1024)
    core = Core(
        db=db,
        log=open_log(settings),
        policies=PolicyInForce(),
        texts=ConsentTexts(),
        presence=node.board,
        clock=clock,
    )
    bridges = Bridges(core)
    invites = Invites(core)
    conversations = Conversations(core, bridges)
    transcripts = Transcripts(core)
    # Every effect reaches the sockets through the fan-out: in-process, or over Redis.
    fanout = node.fanout
    domain = Domain(
        core=core,
        devices=Devices(core, invites),
        conversations=conversations,
        messages=Messages(core),
        bridges=bridges,
        invites=invites,
        transcripts=transcripts,
        breakglass=Breakglass(core),
    )
    edge = SocketEdge(domain, metrics, connections, settings, fanout, node.manager)
    expiry = ExpiryLoop(Expiry(core), fanout.deliver, clock)
    edge.wake_expiry = expiry.wake
    edge.server.attach(app)
    app.add_routes(
        HttpApi(
            settings,
            core,
            conversations,
            transcripts,
            Staff(db, core.log, clock),
            metrics,
            fanout.deliver,
            edge.end_token,
            node.ping,
            node.limits,
        ).routes()
    )
    app.add_routes(AuditApi(core, LogReader(db, core.log, clock)).routes())
    install_pages(app)
    app[DB] = db
    app[CORE] = core
    app[EDGE] = edge

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await upgrade(db)
        await node.start()
        werkafspraken = Werkafspraken(db, core.log, clock)
        await start_policy(werkafspraken, core.policies, _configured_policy(settings))
        watch = PolicyWatch(werkafspraken, core.policies, settings.policy_check_seconds)
        await bridges.pause_all_after_restart()
        tasks = [
            asyncio.create_task(fanout.run(edge), name="bridge-fanout"),
            asyncio.create_task(expiry.run(), name="bridge-expiry"),
            asyncio.create_task(conversations.queue_count.run(fanout.deliver), name="bridge-queue"),
            asyncio.create_task(
                run_checkpoints(db, core.log, clock, settings.checkpoint_seconds),
                name="bridge-checkpoints",
            ),
            asyncio.create_task(edge.run_session_checks(), name="bridge-sessions"),
            asyncio.create_task(node.board.run(edge.departed), name="bridge-presence"),
            asyncio.create_task(watch.run(), name="bridge-policy"),
        ]
        yield
        node.board.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await node.close()
        await db.dispose()

    app.cleanup_ctx.append(lifecycle)

    async def close_sockets(app: web.Application) -> None:
        await edge.shutdown()

    app.on_shutdown.append(close_sockets)
    return app


def _configured_policy(settings: Settings) -> str | None:
    """The text of the policy file the settings name, if any."""
    if settings.policy_file is None:
        return None
    try:
        return settings.policy_file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"the policy file {settings.policy_file} cannot be read: {exc}") from None
