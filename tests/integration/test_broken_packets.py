"""Socket.IO packets no library would send, written by hand on one websocket: each is answered
``invalid`` where its ack id is known, else the connection is closed with a logged reason, and
the server raises nothing inside python-socketio (no traceback in its output).

Binary packets announce their attachments in the header (``451-``) and name each with a
placeholder ``{"_placeholder": true, "num": i}``; the bridge takes no binary payload, so every
binary event is ``invalid``, but only after the packet was read to its end, so that the next
event on the socket is read as what it is and answered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from raw_socket import Output, RawSocket

from harness import Bridge, error_code, picked_up

PLACEHOLDER = {"_placeholder": True, "num": 0}


@pytest.fixture
def output(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[Output]:
    caplog.set_level(logging.INFO)
    yield Output(capsys, caplog)


@dataclass
class Victim:
    raw: RawSocket
    cid: str

    async def next_event_answered(self) -> None:
        """The next event on this socket is read as sent and answered."""
        ack = await self.raw.call("conversation.join", {"conversation_id": self.cid})
        assert ack["ok"] is True, ack


@pytest.fixture
async def victim(bridge: Bridge) -> AsyncIterator[Victim]:
    client, _ = await picked_up(bridge)
    raw = await RawSocket.open(bridge.url, str(client.token))
    try:
        yield Victim(raw, client.conversation_id)
    finally:
        await raw.close()


def _join(ack_id: int | None, conversation_id: Any, attachments: int = 0) -> str:
    head = f"45{attachments}-" if attachments else "42"
    ack = "" if ack_id is None else str(ack_id)
    return head + ack + json.dumps(["conversation.join", {"conversation_id": conversation_id}])


async def test_a_binary_packet_without_its_attachment_is_invalid_once_the_next_comes(
    victim: Victim, output: Output
) -> None:
    await victim.raw.send(_join(7, PLACEHOLDER, attachments=1))
    # The next packet is no attachment: the binary packet is answered, then the next one.
    next_id = await victim.raw.emit("conversation.join", {"conversation_id": victim.cid})
    assert error_code(await victim.raw.ack(7)) == "invalid"
    assert (await victim.raw.ack(next_id))["ok"] is True
    output.assert_clean()


async def test_an_attachment_no_placeholder_names_is_invalid(
    victim: Victim, output: Output
) -> None:
    await victim.raw.send(_join(7, PLACEHOLDER, attachments=2), b"one", b"two")
    assert error_code(await victim.raw.ack(7)) == "invalid"
    await victim.next_event_answered()
    output.assert_clean()


@pytest.mark.parametrize(
    "placeholder",
    [
        pytest.param({"_placeholder": True, "num": "0"}, id="num a string"),
        pytest.param({"_placeholder": True, "num": True}, id="num a boolean"),
        pytest.param({"_placeholder": True, "num": 0.0}, id="num a float"),
        pytest.param({"_placeholder": True}, id="no num"),
        pytest.param({"_placeholder": 1, "num": 0}, id="placeholder not true"),
        pytest.param({"_placeholder": True, "num": 0, "x": 1}, id="a field more"),
        pytest.param({"_placeholder": True, "num": -1}, id="negative index"),
        pytest.param({"_placeholder": True, "num": 1}, id="index out of range"),
        pytest.param({"_placeholder": True, "num": 10**40}, id="index of 41 digits"),
        pytest.param({"_placeholder": True, "num": PLACEHOLDER}, id="nested placeholders"),
        pytest.param([PLACEHOLDER, PLACEHOLDER], id="one attachment named twice"),
    ],
)
async def test_a_broken_placeholder_is_invalid_and_the_next_event_answered(
    victim: Victim, output: Output, placeholder: Any
) -> None:
    await victim.raw.send(_join(7, placeholder, attachments=1), b"attachment")
    assert error_code(await victim.raw.ack(7)) == "invalid"
    await victim.next_event_answered()
    output.assert_clean()


async def test_a_well_formed_binary_payload_is_invalid(victim: Victim, output: Output) -> None:
    await victim.raw.send(_join(7, PLACEHOLDER, attachments=1), victim.cid.encode())
    assert error_code(await victim.raw.ack(7)) == "invalid"
    await victim.next_event_answered()
    output.assert_clean()


async def test_an_attachment_no_packet_announced_closes_the_connection(
    victim: Victim, output: Output
) -> None:
    await victim.raw.ws.send_bytes(b"stray")
    assert await victim.raw.ended()
    assert "socket.closed_for_packet" in output.assert_clean()


async def test_more_attachments_than_announced_close_the_connection_after_the_answer(
    victim: Victim, output: Output
) -> None:
    """The packet is answered once its one attachment came; the second has no packet, and no
    ack id to answer it by."""
    await victim.raw.send(_join(7, PLACEHOLDER, attachments=1), b"one", b"two")
    assert error_code(await victim.raw.ack(7)) == "invalid"
    assert await victim.raw.ended()
    assert "socket.closed_for_packet" in output.assert_clean()


async def test_a_broken_binary_packet_without_ack_id_closes_the_connection(
    victim: Victim, output: Output
) -> None:
    await victim.raw.send(_join(None, {"_placeholder": True, "num": 5}, attachments=1), b"x")
    assert await victim.raw.ended()
    assert "socket.closed_for_packet" in output.assert_clean()


def _nested(depth: int, leaf: str, kind: str) -> str:
    if kind == "lists":
        return "[" * depth + json.dumps(leaf) + "]" * depth
    return '{"a":' * depth + json.dumps(leaf) + "}" * depth


@pytest.mark.parametrize("depth", [17, 1000, 10_000])  # 10,000 objects: 60 KB, under a frame
@pytest.mark.parametrize("kind", ["lists", "objects"])
async def test_a_deeply_nested_field_is_invalid(
    victim: Victim, output: Output, depth: int, kind: str
) -> None:
    nested = _nested(depth, victim.cid, kind)
    await victim.raw.send('427["conversation.join",{"conversation_id":' + nested + "}]")
    assert error_code(await victim.raw.ack(7)) == "invalid"
    await victim.next_event_answered()
    output.assert_clean()


async def test_unreadable_json_with_an_ack_id_is_invalid(victim: Victim, output: Output) -> None:
    for text in ('427["conversation.join",{"conversation_id":', '427["conversation.join",}]'):
        await victim.raw.send(text)
        assert error_code(await victim.raw.ack(7)) == "invalid"
    await victim.raw.send('427["conversation.join",{"after_seq":' + "9" * 5000 + "}]")
    assert error_code(await victim.raw.ack(7)) == "invalid"
    await victim.next_event_answered()
    output.assert_clean()


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("conversation.join", "conversation_id"),
        ("consent.decline", "request_id"),
        ("consent.withdraw", "conversation_id"),
        ("bridge.pause", "conversation_id"),
    ],
)
@pytest.mark.parametrize("piece", ["a", "é", "\u00a0", "😀", "\\"])
async def test_an_id_of_thousands_of_characters_is_invalid(
    victim: Victim, output: Output, event: str, field: str, piece: str
) -> None:
    ack = await victim.raw.call(event, {field: piece * 4000})
    assert error_code(ack) == "invalid"
    assert len(json.dumps(ack)) < 1000  # the answer does not echo the value
    await victim.next_event_answered()
    output.assert_clean()


async def test_an_ack_id_too_long_to_answer_closes_the_connection(
    victim: Victim, output: Output
) -> None:
    await victim.raw.send("42" + "9" * 3000 + '["queue.list",{}]')
    assert await victim.raw.ended()
    assert "socket.closed_for_packet" in output.assert_clean()


async def test_an_event_name_of_thousands_of_characters_is_invalid(
    victim: Victim, output: Output
) -> None:
    ack = await victim.raw.call("x" * 40_000, {})
    assert error_code(ack) == "invalid"
    assert len(json.dumps(ack)) < 1000
    await victim.next_event_answered()
    output.assert_clean()


async def test_a_second_connect_on_one_connection_closes_it(
    victim: Victim, bridge: Bridge, output: Output
) -> None:
    other = await bridge.victim()
    await victim.raw.send("40" + json.dumps({"token": other.token}))
    assert await victim.raw.ended()
    assert "socket.closed_for_packet" in output.assert_clean()


async def test_an_event_on_a_namespace_never_connected_is_forbidden(
    victim: Victim, output: Output
) -> None:
    await victim.raw.send('42/elsewhere,7["queue.list",{}]')
    packet = await victim.raw.packet()
    assert packet.startswith("43/elsewhere,7["), packet
    assert error_code(json.loads(packet[len("43/elsewhere,7") :])[0]) == "forbidden"
    await victim.next_event_answered()
    await victim.raw.send('42/elsewhere,["queue.list",{}]')  # and without an ack id
    assert await victim.raw.ended()
    assert "socket.closed_for_packet" in output.assert_clean()


@pytest.mark.parametrize("text", ['42["connect",{"token":"x"}]', '42["disconnect"]', "42[]", "42"])
async def test_what_is_no_event_without_an_ack_id_closes_the_connection(
    victim: Victim, output: Output, text: str
) -> None:
    await victim.raw.send(text)
    assert await victim.raw.ended()
    assert "socket.closed_for_packet" in output.assert_clean()
