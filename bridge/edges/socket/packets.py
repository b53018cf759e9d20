"""Socket.IO packets read defensively: JSON, nesting and binary placeholders checked before any
handler of python-socketio sees them.

python-socketio parses a packet's JSON with no bound on nesting (a ``RecursionError`` inside the
library, and no ack) and rebuilds binary packets by indexing the attachments with whatever
``num`` a placeholder holds (an ``IndexError``, and the socket stuck waiting for attachments).
Here a payload that cannot be read becomes a :class:`Malformed` value carrying the reason, so the
event is still answered ``invalid`` through the one event table, in the validation order.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from engineio import json as engineio_json  # type: ignore[import-untyped]
from socketio import packet  # type: ignore[import-untyped]

__all__ = ["MAX_DEPTH", "Malformed", "Packet", "binary_values"]

# The deepest payload of PROTOCOL.md is four levels below the event's list (history.share's
# items, an envelope's keys); this leaves a wide margin and stays far from the interpreter's
# recursion limit, wherever on the stack the check runs.
MAX_DEPTH: Final = 16

# The event name at the start of a packet's JSON, read when the rest cannot be.
_NAME = re.compile(r'\A\s*\[\s*("(?:[^"\\]|\\.)*")')


class Malformed:
    """A value that could not be read; no JSON encoder takes it, so no schema accepts it."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Malformed({self.reason!r})"


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels (without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in node if isinstance(item, dict | list))
    return False


def _event_name(text: str) -> str | None:
    match = _NAME.match(text)
    if match is None:
        return None
    try:
        name = json.loads(match.group(1))
    except ValueError:
        return None
    return name if isinstance(name, str) else None


def _unreadable(name: str | None, reason: str) -> Any:
    """What a packet whose payload cannot be read carries: its event name, if that could be
    read, and the reason in place of the payload."""
    return [name, Malformed(reason)] if name is not None else Malformed(reason)


class _GuardedJson:
    """The JSON module python-socketio's packets use, refusing what it cannot read safely."""

    dumps = staticmethod(engineio_json.dumps)

    @staticmethod
    def loads(text: str) -> Any:
        try:
            # engine.io's loads also refuses integers of more than 100 digits.
            value = engineio_json.loads(text)
        except RecursionError:
            return _unreadable(_event_name(text), f"nested deeper than {MAX_DEPTH} levels")
        except ValueError:
            return _unreadable(_event_name(text), "the packet is not JSON")
        if _deeper_than(value, MAX_DEPTH):
            name = value[0] if isinstance(value, list) and isinstance(value[0], str) else None
            return _unreadable(name, f"nested deeper than {MAX_DEPTH} levels")
        return value


class Packet(packet.Packet):  # type: ignore[misc]
    """python-socketio's packet with the guarded JSON reader."""

    json = _GuardedJson


def _is_placeholder(node: dict[Any, Any]) -> bool:
    return "_placeholder" in node


def binary_values(data: Any, attachments: int) -> Any:
    """The data of a binary packet with each placeholder replaced by a :class:`Malformed`
    value (the bridge takes no binary payload: PROTOCOL.md, "Encoding"), or the whole payload
    replaced when a placeholder is broken: not exactly ``{"_placeholder": true, "num": i}``
    with ``0 <= i < attachments``, an attachment named twice or by none.

    ``data`` has passed the depth check, so the recursion here is bounded."""
    named: list[int] = []

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if _is_placeholder(node):
            num = node.get("num")
            if (
                set(node) != {"_placeholder", "num"}
                or node["_placeholder"] is not True
                or type(num) is not int
                or not 0 <= num < attachments
            ):
                raise ValueError("a broken binary placeholder")
            named.append(num)
            return Malformed("a binary value (binary values are b64u strings)")
        return {key: walk(value) for key, value in node.items()}

    if isinstance(data, Malformed) or (
        isinstance(data, list) and any(isinstance(item, Malformed) for item in data)
    ):
        return data  # its JSON could not be read: the reason is already there
    name = data[0] if isinstance(data, list) and data and isinstance(data[0], str) else None
    try:
        values = walk(data)
    except ValueError as exc:
        return _unreadable(name, str(exc))
    if sorted(named) != list(range(attachments)):
        return _unreadable(name, "binary attachments that no placeholder names, or named twice")
    return values
