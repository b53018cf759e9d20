"""What this node tells Prometheus (``GET /metrics``), on the application's own registry.

Every label value comes from a fixed set: the roles, the client events of ``bridge.protocol``
(``unknown`` for any other name), the events the server sends, the protocol's error codes and
the log kinds of the state tables. None carries an id, a name or anything else about a person.
The gauges are read when scraped: the sockets from memory, the log's size and the age of its
latest checkpoint from the database in one query.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from bridge.domain.machine import BRIDGE, CONVERSATION, INVITE
from bridge.domain.roles import Role
from bridge.errors import BridgeError
from bridge.store import log as stored
from bridge.store.db import Database

__all__ = ["ACK_BUCKETS", "Metrics"]

# From a quick answer on loopback to a transaction stuck behind others (seconds).
ACK_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_SOCKET_ROLES: Final = tuple(role.value for role in Role if role is not Role.SYSTEM)
_CODES: Final = tuple(sorted({BridgeError.code} | {e.code for e in BridgeError.__subclasses__()}))
_KINDS: Final = tuple(
    sorted(
        {m.start_kind for m in (BRIDGE, INVITE, CONVERSATION)}
        | {k for m in (BRIDGE, INVITE, CONVERSATION) for k in m.kinds.values() if k is not None}
    )
)


class Metrics:
    """The node's metrics; ``moved`` makes it the domain's ``transitions.Watcher``."""

    def __init__(
        self, db: Database, clock: Callable[[], datetime], roles: Callable[[], Iterable[str]]
    ) -> None:
        self.db = db
        self.clock = clock
        self.roles = roles
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        self.sockets = Gauge(
            "bridge_sockets", "Open sockets on this node, by role", ["role"], registry=registry
        )
        self.events = Counter(
            "bridge_events",
            "Client events answered, by event and outcome (ok or the error code)",
            ["event", "outcome"],
            registry=registry,
        )
        self.acks = Histogram(
            "bridge_ack_seconds",
            "From a client event's arrival at the event table to its ack, by event",
            ["event"],
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.messages = Counter(
            "bridge_messages_accepted", "message.send events acknowledged ok", registry=registry
        )
        self.deliveries = Counter(
            "bridge_deliveries",
            "Events the fan-out emitted to this node's sockets, by event",
            ["event"],
            registry=registry,
        )
        self.transitions = Counter(
            "bridge_transitions",
            "State changes committed by this node, by log kind",
            ["kind"],
            registry=registry,
        )
        self.errors = Counter(
            "bridge_errors",
            "Errors answered in socket acks and HTTP bodies, by protocol code",
            ["code"],
            registry=registry,
        )
        self.log_entries = Gauge("bridge_log_entries", "Entries in the log", registry=registry)
        self.checkpoint_age = Gauge(
            "bridge_checkpoint_age_seconds",
            "Seconds since the latest signed checkpoint (NaN before the first)",
            registry=registry,
        )
        # Shown at 0 before the first one, so that a rate over them starts from the beginning.
        for role in _SOCKET_ROLES:
            self.sockets.labels(role)
        for code in _CODES:
            self.errors.labels(code)
        for kind in _KINDS:
            self.transitions.labels(kind)

    def answered(self, event: str, code: str | None, seconds: float) -> None:
        """A client event answered ``seconds`` after it arrived: ok, or refused with ``code``."""
        self.acks.labels(event).observe(seconds)
        self.events.labels(event, code or "ok").inc()
        if code is not None:
            self.errors.labels(code).inc()
        elif event == "message.send":
            self.messages.inc()

    def error(self, code: str) -> None:
        """An error answered outside the event table: an HTTP body, a packet no handler saw."""
        self.errors.labels(code).inc()

    def delivered(self, event: str) -> None:
        self.deliveries.labels(event).inc()

    def moved(self, kind: str) -> None:
        self.transitions.labels(kind).inc()

    async def exposition(self) -> bytes:
        """The text format, with the gauges read now."""
        count = collections.Counter(self.roles())
        for role in _SOCKET_ROLES:
            self.sockets.labels(role).set(count[role])
        async with self.db.reading() as session:
            size, checkpoint_time = await stored.size_and_checkpoint_time(session)
        self.log_entries.set(size)
        self.checkpoint_age.set(
            float("nan")
            if checkpoint_time is None
            else (self.clock() - datetime.fromisoformat(checkpoint_time)).total_seconds()
        )
        return generate_latest(self.registry)
