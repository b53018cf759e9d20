"""Presence as the sockets' edge writes it, and the domain reads it (``delivery.Presence``).

One implementation per way of running: in-process for one node
(``bridge.adapters.local_presence``), shared over Redis for several
(``bridge.adapters.redis_presence``). Nothing here is durable: a victim's connection leaves no
trace once it is gone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bridge.domain.delivery import OnDutyOfficer, Presence

__all__ = ["Departed", "PresenceBoard"]

# Told once for each (role, conversation) a node that died held a socket in; it runs what a
# departure runs (the police part pauses if nobody is back).
Departed = Callable[[str, str], Awaitable[None]]


class PresenceBoard(Presence, Protocol):
    def settling(self, conversation_id: str) -> AbstractAsyncContextManager[None]:
        """Joins and departures of one conversation, one at a time on every node.

        A departure reads presence and then commits a pause; a join commits and then counts as
        present. Interleaved, a victim or counsellor coming back on a new socket while the old
        one is still being let go would find the bridge paused for their absence.
        """
        ...

    async def joined(self, sid: str, role: str, conversation_id: str) -> None:
        """The socket ``sid`` is in the conversation, as ``role``."""

    async def on_duty(self, sid: str, officer: OnDutyOfficer) -> None:
        """The socket ``sid`` is an officer's, with its device registered."""

    async def off_duty(self, sid: str) -> None:
        """The socket's session is over: it no longer counts for invites."""

    async def gone(self, sid: str) -> None:
        """The socket is closed: it counts nowhere any more."""

    async def start(self) -> None:
        """This node starts: it counts from now on (before any socket connects)."""

    async def run(self, departed: Departed) -> None:
        """Keep this node's presence alive and let go of nodes that died, until cancelled."""

    def stop(self) -> None:
        """This node stops: :meth:`run` ends (cancelling it alone may not be enough)."""

    async def close(self) -> None:
        """This node stops (its sockets are closed already)."""
