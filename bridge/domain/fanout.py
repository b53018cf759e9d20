"""Fan-out: how the effects of a committed transaction reach the sockets, on every node.

Whoever holds effects calls :meth:`Fanout.deliver`, which publishes them (``_publish``); every
node applies what was published to its own sockets (:class:`Sockets`, implemented by the
Socket.IO edge) while :meth:`Fanout.run` runs. Implementations: in-process
(``bridge.adapters.local_fanout``), and over Redis through python-socketio's own manager
(``bridge.adapters.redis_fanout``).

A message is a JSON-safe dict, so that an implementation can put it on a wire: one message per
call of ``deliver``, its effects in order. Fan-out is best-effort across nodes (DESIGN.md,
"Persistence and scale"): nothing durable lives in it, and clients catch up from history.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, Protocol

from bridge.domain.delivery import CloseRoom, Effect, Emit

__all__ = ["Fanout", "Message", "Sockets", "apply", "decode", "encode"]

Message = dict[str, Any]


class Sockets(Protocol):
    """The sockets of one node, as the fan-out reaches them."""

    async def emit(
        self, event: str, payload: dict[str, object], rooms: list[str], skip_sid: str | None
    ) -> None: ...

    async def close_room(self, room: str) -> None: ...


def encode(effects: Iterable[Effect]) -> Message:
    """One published message for a batch of effects, in order."""
    items: list[dict[str, Any]] = []
    for effect in effects:
        if isinstance(effect, Emit):
            items.append(
                {
                    "method": "emit",
                    "event": effect.event,
                    "data": dict(effect.payload),
                    "rooms": list(effect.rooms),
                    "skip_sid": effect.skip_sid,
                }
            )
        else:
            items.append({"method": "close_room", "room": effect.room})
    return {"effects": items}


def decode(message: Message) -> list[Effect]:
    """The effects of a published message (the inverse of :func:`encode`)."""
    effects: list[Effect] = []
    for item in message["effects"]:
        if item["method"] == "emit":
            rooms = tuple(item["rooms"])
            effects.append(Emit(item["event"], item["data"], rooms, item["skip_sid"]))
        else:
            effects.append(CloseRoom(item["room"]))
    return effects


async def apply(sockets: Sockets, message: Message) -> None:
    """Apply a published message's effects to ``sockets``, in order."""
    for effect in decode(message):
        if isinstance(effect, Emit):
            payload = dict(effect.payload)
            await sockets.emit(effect.event, payload, list(effect.rooms), effect.skip_sid)
        else:
            await sockets.close_room(effect.room)


class Fanout(abc.ABC):
    """Publishes effects and applies what every node published to this node's sockets."""

    async def deliver(self, effects: Iterable[Effect]) -> None:
        """Publish a batch of effects; call it only once their transaction has committed."""
        batch = list(effects)
        if batch:
            await self._publish(encode(batch))

    @abc.abstractmethod
    async def run(self, sockets: Sockets) -> None:
        """Apply what every node publishes to ``sockets`` until cancelled; a message that fails
        is logged and the next one is applied."""

    @abc.abstractmethod
    async def _publish(self, message: Message) -> None:
        """Send ``message`` to every node, this one included."""
