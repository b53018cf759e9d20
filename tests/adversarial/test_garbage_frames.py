"""Garbage on the wire against a live bridge: raw websocket frames (engine.io and Socket.IO
packets made wrong, random text and bytes) on a socket that did a real handshake; afterwards the
database is unchanged and the bridge still serves its clients. A text frame engine.io cannot
parse closes that socket at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from adversary import TALLY
from hypothesis import given, settings
from hypothesis import strategies as st
from malformed import EVENT_NAMES, FUZZ, JSON, WireSocket, World, fuzz_world, json_values

from harness import Bridge, db_rows, error_code, picked_up

EVENTS = EVENT_NAMES


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with fuzz_world(tmp_path_factory.mktemp("frames") / "data") as world:
        yield world


async def _healthy(bridge: Bridge) -> bool:
    async with aiohttp.ClientSession() as http, http.get(bridge.url + "/healthz") as response:
        return response.status == 200


FUZZ_FRAMES = settings(FUZZ, max_examples=250)
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


class RawSocket(WireSocket):
    """A websocket that did the engine.io and Socket.IO handshake with a victim token."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__(http, ws)
        self.internal: list[str] = []  # acks of the garbage that say the server failed

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
        ack_id = self.next_id()
        await self.ws.send_str(f"42{ack_id}" + json.dumps([event, payload]))
        return (await self.acks(ack_id))[ack_id]

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
