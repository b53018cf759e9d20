"""Payloads made invalid on purpose, shared by the fuzz and the validation table: a valid payload
of every client event for each party of a driegesprek, the paths of its fields and what PROTOCOL.md
says of them, the answer each malformed payload must get, and the count tried per event (printed
at the end of the run).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from adversary import LoopThread, threaded_bridge
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bridge import crypto
from bridge.client import BridgeClient
from bridge.protocol import EVENTS
from harness import LIMIT, Bridge, events_seen, joined

T = TypeVar("T")

JSON = dict[str, Any]
Path_ = tuple[str | int, ...]

EVENT_NAMES = tuple(event.name for event in EVENTS)

# What PROTOCOL.md's payload table says of fields that a mutation must respect to stay invalid.
# Fields that may be left out:
OPTIONAL: set[Path_] = {
    ("limit",),
    ("preferences",),
    ("preferences", "officer_gender"),
    ("preferences", "same_officer"),
    ("preferences", "region"),
}
# Fields where null is a value:
NULLABLE: set[Path_] = {
    ("envelope", "epoch_id"),
    ("preferences", "officer_gender"),
    ("preferences", "same_officer"),
    ("preferences", "region"),
}
# Maps whose keys are names, not fields (an envelope's ``keys``: victim, care, investigation).
NAME_MAPS: dict[Path_, set[str]] = {("envelope", "keys"): {"victim", "care", "investigation"}}
# Strings any text may fill (a sealed key that does not open is bad_keys, not invalid).
FREE_STRINGS: set[Path_] = {("envelope", "keys", name) for name in NAME_MAPS[("envelope", "keys")]}


FUZZ = settings(
    max_examples=2000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
texts = st.text(max_size=30)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


# --- the payloads -------------------------------------------------------------------------------


async def valid_payloads(
    bridge: Bridge,
) -> tuple[dict[str, BridgeClient], dict[tuple[str, str], JSON]]:
    """The parties of a driegesprek with messages of every kind, and for each (role, event) a
    payload that passes the event's schema (whatever the state makes of it)."""
    world = await joined(bridge)
    victim, cid = world.victim, world.cid
    epoch = victim.conversation.epoch
    assert epoch is not None
    avim = await victim.org_public_key("avim")
    sealed = crypto.seal(bytes(32), str(epoch["public"]))
    ref = {"conversation_id": cid}
    some_id = str(uuid.uuid4())
    common: JSON = {
        "queue.list": {},
        "invite.list": {},
        "conversation.join": ref,
        "history.fetch": {**ref, "after_seq": 0, "limit": 100},
        "bridge.propose": {
            **ref,
            "purpose": "report",
            "preferences": {"officer_gender": "female", "same_officer": True, "region": "Limburg"},
        },
        "consent.grant": {
            "request_id": some_id,
            "text": {"version": "1", "lang": "nl", "sha256": crypto.b64u_encode(bytes(32))},
            "choices": {"retain_for_case_file": False, "share_needs_note": True},
            "investigation_scope": crypto.ScopeKey.generate().as_payload(avim),
            "sig": crypto.b64u_encode(bytes(64)),
        },
        "consent.decline": {"request_id": some_id},
        "consent.withdraw": ref,
        "history.share": {
            **ref,
            "epoch_id": epoch["epoch_id"],
            "items": [{"seq": 1, "key": sealed}],
            "sig": crypto.b64u_encode(bytes(64)),
        },
        "bridge.pause": ref,
        "bridge.resume": ref,
        "invite.accept": {"invite_id": some_id},
        "bridge.end": ref,
        "conversation.close": ref,
        "breakglass.request": {**ref, "category": "acute_danger"},
        "breakglass.list": {},
        "breakglass.approve": {"breakglass_id": some_id},
        "breakglass.refuse": {"breakglass_id": some_id},
        # The optional breakglass_id is left out (its cases: tests/unit/test_protocol.py).
        "disclosure.record": {
            **ref,
            "agency": "veilig_thuis",
            "basis": "agreement",
            "shared": ["concerns"],
        },
    }
    parties = world.parties
    valid: dict[tuple[str, str], JSON] = {}
    for role, client in parties.items():
        envelope = client.build("fuzz", audience=["care", "investigation"], conversation_id=cid)
        for event in EVENT_NAMES:
            if event == "message.send":
                valid[(role, event)] = {"envelope": envelope}
            elif event == "device.register":
                valid[(role, event)] = client.keys.registration()
            else:
                valid[(role, event)] = common[event]
    return parties, valid


@dataclass
class World:
    """A bridge on a loop thread (for hypothesis), its driegesprek and the valid payloads."""

    runner: LoopThread
    bridge: Bridge
    parties: dict[str, BridgeClient]
    valid: dict[tuple[str, str], JSON]  # (role, event) -> a payload that passes the schema

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def events_seen(self) -> list[int]:
        return events_seen(list(self.parties.values()))


@contextmanager
def fuzz_world(data: Path) -> Iterator[World]:
    """A world in which only a refused event that changes something changes the database."""
    # No token bucket in the way (every generated message.send is validated, not rate_limited),
    # no periodic checkpoint, and raw sockets by the hundred for the victim's token.
    quiet = {
        "message_rate": 1e9,
        "message_burst": 10**9,
        "checkpoint_seconds": 86400.0,
        "sockets_per_victim": 10**6,
    }
    with threaded_bridge(data, **quiet) as (runner, bridge):
        parties, valid = runner.run(valid_payloads(bridge))
        for client in parties.values():
            # A socket the server drops is a finding: the next call fails, nothing hides it.
            client.auto_reconnect = False
        yield World(runner, bridge, parties, valid)


def paths(value: Any, at: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every node of ``value`` with its path, the root first."""
    yield at, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*at, index))


def field_of(path: Path_) -> Path_:
    """The path with list indexes left out (``items.0.seq`` is the field ``items.seq``)."""
    return tuple(p for p in path if isinstance(p, str))


def replace(value: Any, path: Path_, new: Any) -> Any:
    """``value`` with the node at ``path`` replaced by ``new`` (or removed, for ``...``)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if not rest and new is ...:
            del copy[head]
        else:
            copy[head] = replace(value[head], rest, new)
        return copy
    items = list(value)
    items[head] = replace(items[head], rest, new)  # type: ignore[index]
    return items


def in_name_map(path: Path_) -> bool:
    return field_of(path)[:-1] in NAME_MAPS


def removable(path: Path_) -> bool:
    """A required field (not a list item, nor a name in a map of names)."""
    return isinstance(path[-1], str) and field_of(path) not in OPTIONAL and not in_name_map(path)


def _contains_bytes(value: Any) -> bool:
    return any(isinstance(v, bytes) for _, v in paths(value))


def expected_code(event: str, args: tuple[Any, ...]) -> str:
    """``too_large`` for a message.send whose envelope is over the limit, else ``invalid``:
    both rank before every other code (PROTOCOL.md, "Validation order"), so the answer depends
    neither on who sends the payload nor on the state."""
    if event == "message.send" and len(args) == 1 and isinstance(args[0], dict):
        envelope = args[0].get("envelope")
        if isinstance(envelope, dict) and not _contains_bytes(envelope):
            size = len(json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode())
            if size > LIMIT:
                return "too_large"
    return "invalid"


# --- a websocket written by hand ------------------------------------------------------------

SOCKET_PATH = "/socket.io/?EIO=4&transport=websocket"


class WireSocket:
    """A websocket that did the engine.io and Socket.IO handshake with a token, and sends
    packets exactly as written."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http, self.ws, self.ack = http, ws, 9000

    @classmethod
    async def open(cls, bridge: Bridge, token: str) -> Any:
        http = aiohttp.ClientSession()
        # A socket the server dropped does not answer a close: do not wait long for it.
        timeout = aiohttp.ClientWSTimeout(ws_close=0.2)
        ws = await http.ws_connect(bridge.url + SOCKET_PATH, timeout=timeout)
        opened = await ws.receive_str(timeout=5)
        assert opened.startswith("0{"), opened
        await ws.send_str("40" + json.dumps({"token": token}))
        connected = await ws.receive_str(timeout=5)
        assert connected.startswith('40{"sid"'), connected
        return cls(http, ws)

    def next_id(self) -> int:
        self.ack += 1
        return self.ack

    async def acks(self, *ids: int) -> dict[int, Any]:
        """The acks with these ids, as they come; pings are answered on the way."""
        found: dict[int, Any] = {}
        async with asyncio.timeout(10):
            while len(found) < len(ids):
                message = await self.ws.receive()
                assert message.type == aiohttp.WSMsgType.TEXT, message  # the server closed it
                if message.data == "2":
                    await self.ws.send_str("3")
                for ack_id in ids:
                    if message.data.startswith(f"43{ack_id}["):
                        found[ack_id] = json.loads(message.data[len(f"43{ack_id}") :])[0]
        return found

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


# --- the count per event, printed at the end of the run ----------------------------------------

# (source, event) -> malformed payloads tried and answered as expected on a socket that stayed.
TRIED: Counter[tuple[str, str]] = Counter()


def tried(source: str, event: str) -> None:
    TRIED[(source, event if event in EVENT_NAMES else "(no client event)")] += 1


class _Report:
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not TRIED:
            return
        sources = sorted({source for source, _ in TRIED})
        events = [*EVENT_NAMES, "(no client event)"]
        write = terminalreporter.write_line
        width = max(len(source) for source in sources) + 2

        def row(name: str, cells: list[object]) -> None:
            write(f"  {name:22}" + "".join(f"{cell!s:>{width}}" for cell in cells))

        write("malformed payloads per event, each answered invalid or too_large:")
        row("event", list(sources))
        for event in events:
            counts = [TRIED[(source, event)] for source in sources]
            if any(counts):
                row(event, list(counts))
        row("total", [sum(c for (s, _), c in TRIED.items() if s == source) for source in sources])


def report_at_the_end(config: pytest.Config) -> None:
    """Print the table of :data:`TRIED` in the terminal summary (once, whoever asks first)."""
    if not config.pluginmanager.has_plugin("malformed-payloads"):
        config.pluginmanager.register(_Report(), "malformed-payloads")
