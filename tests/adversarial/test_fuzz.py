"""Generated malformed payloads against a live bridge: every one answered ``invalid`` or
``too_large`` on a connection that stays open, and nothing changes.

One bridge holds a joined driegesprek with messages of every kind. Hypothesis generates, for every
client event of the one event table and for names that are none, payloads that are invalid *by
construction*: a valid payload of the event with one field removed, retyped, given a value out of
its range, an unknown field added, a huge string or deep nesting put in; arbitrary JSON that is not
a payload; no payload, several, or a binary one. Each is sent by the victim, the counsellor or the
officer. Because ``invalid``/``too_large`` rank before every other error (PROTOCOL.md, "Validation
order"), the expected answer does not depend on who sends it or on the state: ``too_large`` where
the envelope's compact JSON is over 16 KiB, else ``invalid``. After each case every table of the
database and the events each party received are exactly as before, and ``/healthz`` answers.

What no client library sends is written by hand on a websocket per role: a field nested a
thousand levels and more, JSON cut short, integers of hundreds of digits, ids of thousands of
characters, and binary packets with an attachment missing, one too many, or placeholders broken,
out of range or nested. Each is answered ``invalid``, and the next event on that socket too.

The count of payloads tried per event is printed at the end of the run.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from adversary import TALLY
from hypothesis import example, given, settings
from hypothesis import strategies as st
from integration.raw_socket import Output
from malformed import (
    EVENT_NAMES,
    FREE_STRINGS,
    FUZZ,
    JSON,
    NAME_MAPS,
    NULLABLE,
    Path_,
    WireSocket,
    World,
    expected_code,
    field_of,
    fuzz_world,
    json_values,
    paths,
    removable,
    replace,
    report_at_the_end,
    scalars,
    texts,
    tried,
)

from harness import LIMIT, Bridge, db_rows, error_code

ROLES = ("victim", "counsellor", "officer")
# Free texts of 1..64 characters (consent text version, region).
SHORT_TEXTS: set[Path_] = {("text", "version"), ("preferences", "region")}
# Integers and the values out of their range.
BAD_INTS: dict[str, st.SearchStrategy[int]] = {
    "after_seq": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63)),
    "limit": st.one_of(st.integers(max_value=0), st.integers(min_value=501)),
    "seq": st.one_of(st.integers(max_value=0), st.integers(min_value=2**63)),
    "v": st.integers().filter(lambda v: v != 1),
}


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[World]:
    report_at_the_end(request.config)
    with fuzz_world(tmp_path_factory.mktemp("fuzz") / "data") as world:
        yield world


# --- payloads invalid by construction ------------------------------------------------------------


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


def _huge(draw: st.DrawFn) -> str:
    # Longer than any field's limit and than the envelope limit, shorter than a websocket frame
    # may be (64 KiB): built by repeating a short piece, which hypothesis can draw cheaply.
    # ASCII, so that the frame stays under 64 KiB however the client escapes it.
    piece = draw(st.text(string.ascii_letters + string.digits + "-_ ~", min_size=1, max_size=8))
    size = draw(st.integers(min_value=LIMIT + 1, max_value=40_000))
    return (piece * (size // len(piece) + 1))[:size]


def _long_id(draw: st.DrawFn) -> str:
    """Thousands of characters of any kind; the space makes it no id, key or b64u value. At most
    4,000, so that the frame stays under 64 KiB even with every character escaped."""
    piece = draw(st.text(min_size=1, max_size=4))
    size = draw(st.integers(min_value=1000, max_value=4000))
    return (" " + piece * size)[:size]


def _deep(draw: st.DrawFn) -> Any:
    depth = draw(st.integers(min_value=30, max_value=400))
    leaf: Any = draw(scalars)
    for _ in range(depth):
        leaf = [leaf] if draw(st.booleans()) else {"a": leaf}
    return leaf


@st.composite
def mutants(draw: st.DrawFn, valid: JSON) -> tuple[str, JSON]:
    """One field of ``valid`` made wrong; returns what was done and the payload."""
    nodes = [(p, v) for p, v in paths(valid) if p]
    dicts = [(p, v) for p, v in paths(valid) if isinstance(v, dict)]
    ops = ["unknown field", "huge", "deep", "binary"]
    if nodes:
        ops += ["retype", "out of range"]
    ids = [p for p, v in nodes if isinstance(v, str) and field_of(p) not in FREE_STRINGS]
    if ids:
        ops.append("long id")
    removables = [p for p, _ in nodes if removable(p)]
    if removables:
        ops.append("remove")
    op = draw(st.sampled_from(ops))
    if op == "unknown field":
        at, node = draw(st.sampled_from(dicts))
        names = NAME_MAPS.get(field_of(at), set()) | set(node)
        name = draw(texts.filter(lambda n: n not in names))
        return op, replace(valid, at, {**node, name: draw(json_values)})
    if op == "remove":
        return op, replace(valid, draw(st.sampled_from(removables)), ...)
    if op == "long id":
        return op, replace(valid, draw(st.sampled_from(ids)), _long_id(draw))
    at, node = draw(st.sampled_from(nodes or [((), valid)]))
    if op == "huge":
        return op, replace(valid, at, _huge(draw))
    if op == "deep":
        return op, replace(valid, at, _deep(draw))
    if op == "binary":
        return op, replace(valid, at, draw(st.binary(max_size=64)))
    if op == "retype":
        kinds = set(OTHER_TYPE) - {_kind(node)}
        if field_of(at) in NULLABLE:
            kinds.discard("null")
        return op, replace(valid, at, draw(OTHER_TYPE[draw(st.sampled_from(sorted(kinds)))]))
    # "out of range": a value of the right type that the field does not take.
    ranged = [(p, v) for p, v in nodes if _out_of_range(p, v) is not None]
    if not ranged:
        return "retype", replace(valid, at, draw(OTHER_TYPE["dict" if node != {} else "int"]))
    at, node = draw(st.sampled_from(ranged))
    bad = _out_of_range(at, node)
    assert bad is not None
    return op, replace(valid, at, draw(bad))


def _out_of_range(path: Path_, value: Any) -> st.SearchStrategy[Any] | None:
    name = field_of(path)[-1] if field_of(path) else None
    if isinstance(value, bool) or name is None:
        return None
    if isinstance(value, int):
        return BAD_INTS.get(name)
    if not isinstance(value, str) or field_of(path) in FREE_STRINGS:
        return None
    if field_of(path) in SHORT_TEXTS:
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
    event = draw(st.sampled_from(EVENT_NAMES))
    if draw(st.integers(min_value=0, max_value=9)) == 0:  # a name that is no client event
        event = draw(
            st.one_of(
                st.sampled_from(["connect", "disconnect", "message", "Message.Send", "bridge"]),
                texts,
            ).filter(lambda name: name not in EVENT_NAMES)
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


async def _healthy(bridge: Bridge) -> bool:
    async with aiohttp.ClientSession() as http, http.get(bridge.url + "/healthz") as response:
        return response.status == 200


FUZZ_PACKETS = settings(FUZZ, max_examples=1000)


@pytest.mark.heavy
def test_generated_event_payloads_are_refused_and_change_nothing(
    world: World, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    rows, seen = db_rows(world.bridge), world.events_seen()

    @FUZZ
    @given(case=cases(world.valid))
    # Found by this test: a binary attachment inside a payload was answered ``internal``, an id
    # with a final newline passed the schema, and an event named "*" was answered ``internal``.
    @example(case=("victim", "conversation.join", "binary", ({"conversation_id": b""},)))
    @example(case=("victim", "*", "unknown", ({"conversation_id": "0"},)))
    @example(case=("victim", "conversation.join", "out of range", ({"conversation_id": "x\n"},)))
    @example(case=("victim", "history.fetch", "out of range", (_fetch_after(2**63),)))
    def attempt(case: tuple[str, str, str, tuple[Any, ...]]) -> None:
        role, event, what, args = case
        client = world.parties[role]
        ack = world.run(client.call_raw(event, *args))
        TALLY["event payloads"] += 1
        code = error_code(ack)
        assert code == expected_code(event, args), (role, event, what, ack)
        assert client.sid is not None, (role, event, what)  # the connection stayed
        tried("client library", event)
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
    Output(capsys, caplog).assert_clean()  # nothing raised inside the server


def _fetch_after(after_seq: int) -> JSON:
    return {"conversation_id": "c", "after_seq": after_seq}


# --- packets no client library sends -------------------------------------------------------------

_SPLICE = "\u0000splice\u0000"  # stands, in the JSON text, for the raw text put in its place
PLACEHOLDER = {"_placeholder": True, "num": 0}
PACKET_KINDS = (
    *("deep", "cut short", "long integer", "binary", "missing attachment", "unnamed attachment"),
    *("bad placeholder", "index out of range", "nested placeholders"),
)
BAD_PLACEHOLDERS = st.one_of(
    st.fixed_dictionaries({"_placeholder": st.just(True), "num": st.text(max_size=3)}),
    st.fixed_dictionaries({"_placeholder": st.just(True), "num": st.floats(0, 1)}),
    st.fixed_dictionaries({"_placeholder": st.sampled_from([1, "true", None, False])}),
    st.fixed_dictionaries({"_placeholder": st.just(True), "num": st.just(0), "x": scalars}),
    st.just({"_placeholder": True, "num": True}),
)


def _nested(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=1000, max_value=8000))
    leaf = json.dumps(draw(scalars))
    if draw(st.booleans()):
        return "[" * depth + leaf + "]" * depth
    return '{"a":' * depth + leaf + "}" * depth


@st.composite
def packets(
    draw: st.DrawFn, valid: dict[tuple[str, str], JSON]
) -> tuple[str, str, str, str, int, list[bytes]]:
    """``(role, event, what, body, attachments announced, attachments sent)``: a valid payload
    with one field (or all of it) made what no library writes."""
    role, event = draw(st.sampled_from(ROLES)), draw(st.sampled_from(EVENT_NAMES))
    payload = valid[(role, event)]
    at = draw(st.sampled_from([p for p, _ in paths(payload)]))
    what = draw(st.sampled_from(PACKET_KINDS))
    spliced = json.dumps([event, replace(payload, at, _SPLICE)], ensure_ascii=False)
    announced, sent, node = 1, 1, PLACEHOLDER
    if what == "deep":
        return role, event, what, spliced.replace(json.dumps(_SPLICE), _nested(draw)), 0, []
    if what == "cut short":
        whole = json.dumps([event, payload])
        return role, event, what, whole[: draw(st.integers(1, len(whole) - 1))], 0, []
    if what == "long integer":  # engine.io reads no integer of more than 100 digits
        digits = "9" * draw(st.integers(min_value=101, max_value=5000))
        return role, event, what, spliced.replace(json.dumps(_SPLICE), digits), 0, []
    if what == "missing attachment":
        announced, sent = draw(st.integers(1, 3)), 0
    elif what == "unnamed attachment":
        announced = sent = draw(st.integers(2, 4))
    elif what == "bad placeholder":
        node = draw(BAD_PLACEHOLDERS)
    elif what == "index out of range":
        node = {
            "_placeholder": True,
            "num": draw(st.one_of(st.integers(max_value=-1), st.integers(1))),
        }
    elif what == "nested placeholders":
        node = {"_placeholder": True, "num": PLACEHOLDER}
    body = spliced.replace(json.dumps(_SPLICE), json.dumps(node))
    return role, event, what, body, announced, [b"attachment"] * sent


@pytest.mark.heavy
def test_packets_no_library_sends_are_answered_invalid_and_the_socket_stays(
    world: World, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    rows, seen = db_rows(world.bridge), world.events_seen()
    sockets: dict[str, WireSocket] = {}

    @FUZZ_PACKETS
    @given(packet=packets(world.valid))
    def attempt(packet: tuple[str, str, str, str, int, list[bytes]]) -> None:
        role, event, what, body, announced, attachments = packet

        async def run() -> dict[int, Any]:
            if role not in sockets:
                token = world.parties[role].token
                sockets[role] = await WireSocket.open(world.bridge, str(token))
            raw = sockets[role]
            case, probe = raw.next_id(), raw.next_id()
            head = f"45{announced}-{case}" if announced else f"42{case}"
            await raw.ws.send_str(head + body)
            for attachment in attachments:
                await raw.ws.send_bytes(attachment)
            # The next event on the socket: read as sent, answered, after the case's answer.
            await raw.ws.send_str(f'42{probe}["bridge",{{}}]')
            answers = await raw.acks(case, probe)
            return {0: answers[case], 1: answers[probe]}

        answers = world.run(run())
        assert error_code(answers[0]) == "invalid", (role, event, what, answers[0])
        assert error_code(answers[1]) == "invalid", (role, event, what, answers[1])
        tried("written by hand", event)
        TALLY["hand-written packets"] += 1
        assert db_rows(world.bridge) == rows, (role, event, what)

    try:
        attempt()
    finally:
        for raw in sockets.values():
            world.run(raw.close())
    assert world.events_seen() == seen
    assert db_rows(world.bridge) == rows
    Output(capsys, caplog).assert_clean()  # nothing raised inside python-socketio
