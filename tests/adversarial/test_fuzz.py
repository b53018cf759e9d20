"""Generated garbage against a live bridge: no crash, every answer a protocol error, no change.

One bridge holds a joined driegesprek with messages of every kind. Hypothesis generates, for every
client event of PROTOCOL.md and for names that are none, payloads that are invalid *by
construction*: a valid payload of the event with one field removed, retyped, given a value out of
its range, an unknown field added, a huge string or deep nesting put in; arbitrary JSON that is not
a payload; no payload, several, or a binary one. Each is sent by the victim, the counsellor or the
officer. Because ``invalid``/``too_large`` rank before every other error (PROTOCOL.md, "Validation
order"), the expected answer does not depend on who sends it or on the state: ``too_large`` where
the envelope's compact JSON is over 16 KiB, else ``invalid``. After each case every table of the
database and the events each party received are exactly as before, and ``/healthz`` answers.

Raw websocket frames (engine.io and Socket.IO packets made wrong, random text and bytes) are sent
on a socket that did a real handshake; afterwards the database is unchanged and the bridge still
serves its clients.
"""

from __future__ import annotations

import asyncio
import json
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from adversary import TALLY, LoopThread, threaded_bridge
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bridge import crypto
from bridge.client import BridgeClient
from harness import Bridge, db_rows, driegesprek, error_code, picked_up

JSON = dict[str, Any]
Path_ = tuple[str | int, ...]
LIMIT = 16 * 1024  # PROTOCOL.md: the envelope limit, on its compact JSON encoding
CODES = {
    "invalid",
    "unauthenticated",
    "forbidden",
    "not_found",
    "wrong_state",
    "no_consent",
    "bad_signature",
    "bad_keys",
    "too_large",
    "rate_limited",
    "conflict",
    "internal",
}
EVENTS = (
    "device.register",
    "queue.list",
    "conversation.join",
    "message.send",
    "history.fetch",
    "bridge.propose",
    "consent.grant",
    "consent.decline",
    "consent.withdraw",
    "history.share",
    "bridge.pause",
    "bridge.resume",
    "invite.list",
    "invite.accept",
    "bridge.end",
    "conversation.close",
)
ROLES = ("victim", "counsellor", "officer")

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
# Free texts of 1..64 characters (consent text version, region).
SHORT_TEXTS: set[Path_] = {("text", "version"), ("preferences", "region")}
# Integers and the values out of their range.
BAD_INTS: dict[str, st.SearchStrategy[int]] = {
    "after_seq": st.integers(max_value=-1),
    "limit": st.one_of(st.integers(max_value=0), st.integers(min_value=501)),
    "seq": st.integers(max_value=0),
    "v": st.integers().filter(lambda v: v != 1),
}


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    runner: LoopThread
    bridge: Bridge
    parties: dict[str, BridgeClient]
    valid: dict[tuple[str, str], JSON]  # (role, event) -> a payload that passes the schema

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    def events_seen(self) -> list[int]:
        return [len(c.received) + c._inbox.qsize() for c in self.parties.values()]


async def _setting(bridge: Bridge) -> tuple[dict[str, BridgeClient], dict[tuple[str, str], JSON]]:
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await victim.send("Ik wil praten.")
    await victim.send("Alleen voor jou.", care_only=True)
    await counsellor.send(cid, "Welkom.")
    await officer.send(cid, "Hallo, ik ben van AVIM.")
    await counsellor.send(cid, "Ik zit erbij.", kind="needs_note")
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
    }
    parties: dict[str, BridgeClient] = {
        "victim": victim,
        "counsellor": counsellor,
        "officer": officer,
    }
    valid: dict[tuple[str, str], JSON] = {}
    for role, client in parties.items():
        both = ["care", "investigation"]
        envelope = client.build("fuzz", audience=both, conversation_id=cid)
        for event in EVENTS:
            if event == "message.send":
                valid[(role, event)] = {"envelope": envelope}
            elif event == "device.register":
                valid[(role, event)] = client.keys.registration()
            else:
                valid[(role, event)] = common[event]
    return parties, valid


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # No token bucket in the way (every generated message.send is validated, not rate_limited),
    # and no periodic checkpoint: the database changes only if a refused event changes it.
    data = tmp_path_factory.mktemp("fuzz") / "data"
    # Raw sockets come and go by the hundred, for the victim's token.
    quiet = {
        "message_rate": 1e9,
        "message_burst": 10**9,
        "checkpoint_seconds": 86400.0,
        "sockets_per_victim": 10**6,
    }
    with threaded_bridge(data, **quiet) as (runner, bridge):
        parties, valid = runner.run(_setting(bridge))
        for client in parties.values():
            # A socket the server drops is a finding: the next call fails, nothing hides it.
            client.auto_reconnect = False
        yield World(runner, bridge, parties, valid)


# --- payloads invalid by construction ------------------------------------------------------------

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


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}[
        type(value)
    ]


OTHER_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "bool": st.booleans(),
    "int": st.integers(min_value=-(2**53), max_value=2**53),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "str": texts,
    "list": st.lists(scalars, max_size=3),
    "dict": st.dictionaries(texts, scalars, max_size=3),
}


def _paths(value: Any, at: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield at, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*at, index))


def _field(path: Path_) -> Path_:
    """The path with list indexes left out (``items.0.seq`` is the field ``items.seq``)."""
    return tuple(p for p in path if isinstance(p, str))


def _replace(value: Any, path: Path_, new: Any) -> Any:
    """``value`` with the node at ``path`` replaced by ``new`` (or removed, for ``...``)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if not rest and new is ...:
            del copy[head]
        else:
            copy[head] = _replace(value[head], rest, new)
        return copy
    items = list(value)
    items[head] = _replace(items[head], rest, new)  # type: ignore[index]
    return items


def _huge(draw: st.DrawFn) -> str:
    # Longer than any field's limit and than the envelope limit, shorter than a websocket frame
    # may be (64 KiB): built by repeating a short piece, which hypothesis can draw cheaply.
    # ASCII, so that the frame stays under 64 KiB however the client escapes it.
    piece = draw(st.text(string.ascii_letters + string.digits + "-_ ~", min_size=1, max_size=8))
    size = draw(st.integers(min_value=LIMIT + 1, max_value=40_000))
    return (piece * (size // len(piece) + 1))[:size]


def _deep(draw: st.DrawFn) -> Any:
    depth = draw(st.integers(min_value=30, max_value=400))
    leaf: Any = draw(scalars)
    for _ in range(depth):
        leaf = [leaf] if draw(st.booleans()) else {"a": leaf}
    return leaf


@st.composite
def mutants(draw: st.DrawFn, valid: JSON) -> tuple[str, JSON]:
    """One field of ``valid`` made wrong; returns what was done and the payload."""
    nodes = [(p, v) for p, v in _paths(valid) if p]
    dicts = [(p, v) for p, v in _paths(valid) if isinstance(v, dict)]
    ops = ["unknown field", "huge", "deep", "binary"]
    if nodes:
        ops += ["retype", "out of range"]
    removable = [p for p, _ in nodes if _removable(p)]
    if removable:
        ops.append("remove")
    op = draw(st.sampled_from(ops))
    if op == "unknown field":
        at, node = draw(st.sampled_from(dicts))
        names = NAME_MAPS.get(_field(at), set()) | set(node)
        name = draw(texts.filter(lambda n: n not in names))
        return op, _replace(valid, at, {**node, name: draw(json_values)})
    if op == "remove":
        return op, _replace(valid, draw(st.sampled_from(removable)), ...)
    at, node = draw(st.sampled_from(nodes or [((), valid)]))
    if op == "huge":
        return op, _replace(valid, at, _huge(draw))
    if op == "deep":
        return op, _replace(valid, at, _deep(draw))
    if op == "binary":
        return op, _replace(valid, at, draw(st.binary(max_size=64)))
    if op == "retype":
        kinds = set(OTHER_TYPE) - {_kind(node)}
        if _field(at) in NULLABLE:
            kinds.discard("null")
        return op, _replace(valid, at, draw(OTHER_TYPE[draw(st.sampled_from(sorted(kinds)))]))
    # "out of range": a value of the right type that the field does not take.
    ranged = [(p, v) for p, v in nodes if _out_of_range(p, v) is not None]
    if not ranged:
        return "retype", _replace(valid, at, draw(OTHER_TYPE["dict" if node != {} else "int"]))
    at, node = draw(st.sampled_from(ranged))
    bad = _out_of_range(at, node)
    assert bad is not None
    return op, _replace(valid, at, draw(bad))


def _removable(path: Path_) -> bool:
    """A required field (not a list item, nor a name in a map of names)."""
    return isinstance(path[-1], str) and _field(path) not in OPTIONAL and not _in_name_map(path)


def _in_name_map(path: Path_) -> bool:
    return _field(path)[:-1] in NAME_MAPS


def _out_of_range(path: Path_, value: Any) -> st.SearchStrategy[Any] | None:
    name = _field(path)[-1] if _field(path) else None
    if isinstance(value, bool) or name is None:
        return None
    if isinstance(value, int):
        return BAD_INTS.get(name)
    if not isinstance(value, str) or _field(path) in FREE_STRINGS:
        return None
    if _field(path) in SHORT_TEXTS:
        return st.one_of(st.just(""), st.text(min_size=65, max_size=80))
    # Ids, keys, signatures, nonces, ciphertext, uuids and enumerations: none holds a space or
    # a slash, so a value with one is out of range whatever the field.
    return st.builds(
        lambda v, i, c: v[:i] + c + v[i:],
        st.just(value),
        st.integers(min_value=0, max_value=len(value)),
        st.sampled_from([" ", "/", "+", "\n"]),
    )


@st.composite
def cases(
    draw: st.DrawFn, valid: dict[tuple[str, str], JSON]
) -> tuple[str, str, str, tuple[Any, ...]]:
    """``(role, event, what, args)``: one event a party sends, and why it is invalid."""
    role = draw(st.sampled_from(ROLES))
    event = draw(st.sampled_from(EVENTS))
    if draw(st.integers(min_value=0, max_value=9)) == 0:  # a name that is no client event
        event = draw(
            st.one_of(
                st.sampled_from(["connect", "disconnect", "message", "Message.Send", "bridge"]),
                texts,
            ).filter(lambda name: name not in EVENTS)
        )
    base = valid.get((role, event), {"conversation_id": "x"})
    shape = draw(st.sampled_from(["mutant", "mutant", "mutant", "json", "args"]))
    if shape == "mutant":
        what, payload = draw(mutants(base))
        return role, event, what, (payload,)
    if shape == "json":
        # Any JSON that is not a payload of ``event``: not an object, or one with an unknown field.
        value = draw(json_values.filter(lambda v: not isinstance(v, dict) or set(v) - set(base)))
        return role, event, "json", (value,)
    count = draw(st.sampled_from([0, 1, 2, 3]))
    if count == 0:
        return role, event, "no payload", ()
    if count == 1:
        return role, event, "binary payload", (json.dumps(base).encode(),)
    args = [draw(st.sampled_from([base, json.dumps(base).encode(), None])) for _ in range(count)]
    return role, event, "several payloads", tuple(args)


def _contains_bytes(value: Any) -> bool:
    return any(isinstance(v, bytes) for _, v in _paths(value))


def expected_code(event: str, args: tuple[Any, ...]) -> str:
    """``too_large`` for a message.send whose envelope is over the limit, else ``invalid``."""
    if event == "message.send" and len(args) == 1 and isinstance(args[0], dict):
        envelope = args[0].get("envelope")
        if isinstance(envelope, dict) and not _contains_bytes(envelope):
            size = len(json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode())
            if size > LIMIT:
                return "too_large"
    return "invalid"


async def _healthy(bridge: Bridge) -> bool:
    async with aiohttp.ClientSession() as http, http.get(bridge.url + "/healthz") as response:
        return response.status == 200


FUZZ = settings(
    max_examples=2000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_FRAMES = settings(FUZZ, max_examples=250)


@pytest.mark.heavy
def test_generated_event_payloads_are_refused_and_change_nothing(world: World) -> None:
    rows, seen = db_rows(world.bridge), world.events_seen()

    @FUZZ
    @given(case=cases(world.valid))
    # Found by this test: a binary attachment inside a payload was answered ``internal``, and an
    # id with a final newline passed the schema.
    @example(case=("victim", "conversation.join", "binary", ({"conversation_id": b""},)))
    @example(case=("victim", "conversation.join", "out of range", ({"conversation_id": "x\n"},)))
    def attempt(case: tuple[str, str, str, tuple[Any, ...]]) -> None:
        role, event, what, args = case
        ack = world.run(world.parties[role].call_raw(event, *args))
        TALLY["event payloads"] += 1
        code = error_code(ack)
        assert code == expected_code(event, args), (role, event, what, ack)
        assert db_rows(world.bridge) == rows, (role, event, what)
        assert world.events_seen() == seen, (role, event, what)
        assert world.run(_healthy(world.bridge))

    attempt()
    # A round trip on every socket: any event a refused call caused has arrived by now.
    for client in world.parties.values():
        ack = world.run(client.call_raw("bridge", {}))
        assert error_code(ack) == "invalid"
    assert world.events_seen() == seen
    assert db_rows(world.bridge) == rows


# --- raw frames ----------------------------------------------------------------------------------

SOCKET_PATH = "/socket.io/?EIO=4&transport=websocket"
junk_json = json_values.map(lambda v: json.dumps(v))
packet_heads = st.sampled_from(
    [
        *"0123456789",
        *("40", "41", "42", "43", "44", "45", "46"),
        *("42[", '42["message.send"', '42["message.send",', "451-", "461-", "4x", "4/", "4/nope,"),
    ]
)
frames = st.one_of(
    st.binary(max_size=300).map(lambda b: ("bytes", b)),
    st.text(max_size=300).map(lambda t: ("text", t)),
    st.tuples(packet_heads, st.one_of(st.text(max_size=60), junk_json)).map(
        lambda p: ("text", p[0] + p[1])
    ),
    # Events with random arguments, with and without (huge) ack ids.
    st.tuples(
        st.sampled_from(["42", "421", "42" + "9" * 25, "42-1", "4201"]),
        st.sampled_from((*EVENTS, "connect", "disconnect", "message", "")),
        st.lists(json_values, max_size=3),
    ).map(lambda p: ("text", p[0] + json.dumps([p[1], *p[2]]))),
    # Binary events announcing attachments that do or do not follow.
    st.tuples(
        st.sampled_from(["451-", "452-", "459-", "451-7", "461-3"]),
        st.sampled_from(EVENTS),
        st.one_of(st.integers(-2, 3), st.text(max_size=3)),
        st.lists(st.binary(max_size=40), max_size=2),
    ).map(
        lambda p: (
            "text+bytes",
            (p[0] + json.dumps([p[1], {"_placeholder": True, "num": p[2]}]), p[3]),
        )
    ),
    # Past the 64 KiB a frame may have: the server closes that socket.
    st.integers(64 * 1024 + 1, 70_000).map(lambda n: ("text", "42" + "x" * n)),
)


class RawSocket:
    """A websocket that did the engine.io and Socket.IO handshake with a victim token."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http, self.ws, self.ack = http, ws, 9000
        self.internal: list[str] = []  # acks of the garbage that say the server failed

    @classmethod
    async def open(cls, bridge: Bridge, token: str) -> RawSocket:
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

    async def send(self, frame: tuple[str, Any]) -> None:
        kind, data = frame
        if self.ws.closed:
            return
        if kind == "bytes":
            await self.ws.send_bytes(data)
        elif kind == "text":
            await self.ws.send_str(data)
        else:
            text, attachments = data
            await self.ws.send_str(text)
            for attachment in attachments:
                await self.ws.send_bytes(attachment)

    async def call(self, event: str, payload: JSON) -> Any:
        """Send one event with an ack id; return its ack."""
        self.ack += 1
        await self.ws.send_str(f"42{self.ack}" + json.dumps([event, payload]))
        async with asyncio.timeout(5):
            while True:
                message = await self.ws.receive_str()
                if message.startswith(f"43{self.ack}["):
                    return json.loads(message[len(f"43{self.ack}") :])[0]

    async def answers(self) -> bool:
        """Whether the socket still answers an event with its ack.

        A frame that announced binary attachments makes the server take the next frames as
        those attachments, so the probe is sent again until one is answered.
        """
        ids: set[int] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.5
        while loop.time() < deadline:
            self.ack += 1
            ids.add(self.ack)
            try:
                await self.ws.send_str(f'42{self.ack}["queue.list",{{}}]')
                async with asyncio.timeout(0.02):
                    while True:
                        message = await self.ws.receive()
                        if message.type == aiohttp.WSMsgType.BINARY:
                            continue
                        if message.type != aiohttp.WSMsgType.TEXT:
                            return False  # the server closed the socket
                        if message.data == "2":
                            await self.ws.send_str("3")
                        if message.data.startswith("43") and '"code":"internal"' in message.data:
                            self.internal.append(message.data)
                        for ack in ids:
                            if message.data.startswith(f"43{ack}["):
                                answer = json.loads(message.data[len(f"43{ack}") :])
                                return error_code(answer[0]) == "forbidden"
            except TimeoutError:
                continue
            except (ConnectionResetError, aiohttp.ClientError):
                return False
        return False

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


@pytest.mark.heavy
def test_garbage_frames_crash_nothing_and_change_nothing(world: World) -> None:
    victim = world.parties["victim"]
    assert victim.token is not None
    rows, seen = db_rows(world.bridge), world.events_seen()
    dropped = 0

    @FUZZ_FRAMES
    @given(batch=st.lists(frames, min_size=1, max_size=4))
    def attempt(batch: list[tuple[str, Any]]) -> None:
        nonlocal dropped

        async def run() -> bool:
            raw = await RawSocket.open(world.bridge, str(victim.token))
            try:
                for frame in batch:
                    await raw.send(frame)
                answered = await raw.answers()
                assert not raw.internal, (batch, raw.internal)
                return answered
            finally:
                await raw.close()

        if not world.run(run()):
            dropped += 1
        TALLY["raw frames"] += len(batch)
        assert world.run(_healthy(world.bridge))
        assert db_rows(world.bridge) == rows, batch

    attempt()
    # The bridge still serves the parties it had: each gets an answer, nothing reached them.
    ack = world.run(victim.call_raw("history.fetch", world.valid[("victim", "history.fetch")]))
    assert ack["ok"] is True and len(ack["messages"]) == 5
    for client in world.parties.values():
        assert error_code(world.run(client.call_raw("bridge", {}))) == "invalid"
    assert world.events_seen() == seen
    assert db_rows(world.bridge) == rows
    print(f"raw sockets the server closed or left waiting for attachments: {dropped}")


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(("text", "1"), id="close packet"),  # the control: a clean close
        pytest.param(("text", ""), id="empty"),
        pytest.param(("text", "hello"), id="no packet type"),
        pytest.param(("text", "b1"), id="bad base64"),
    ],
)
async def test_an_unparsable_text_frame_closes_the_socket_at_once(
    bridge: Bridge, frame: tuple[str, Any]
) -> None:
    victim, counsellor = await picked_up(bridge)
    cid = victim.conversation_id
    await victim.disconnect()
    await counsellor.next_event("participant", where=lambda e: e["event"] == "left")
    raw = await RawSocket.open(bridge, str(victim.token))
    try:
        assert (await raw.call("conversation.join", {"conversation_id": cid}))["ok"] is True
        await raw.send(frame)
        # The victim's only socket is gone: the counsellor is told at once.
        await counsellor.next_event("participant", timeout=3, where=lambda e: e["event"] == "left")
    finally:
        await raw.close()
