"""The websocket transport: what the server negotiates with a client."""

from __future__ import annotations

import json

import aiohttp
from raw_socket import RawSocket

from harness import Bridge, driegesprek


async def test_websocket_refuses_permessage_deflate(bridge: Bridge) -> None:
    # Frames are ciphertext: compressing them gains nothing and costs memory per socket.
    url = f"http://127.0.0.1:{bridge.port}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=15) as ws:
        assert ws.compress == 0
        assert "Sec-WebSocket-Extensions" not in ws._response.headers
        opened = await ws.receive_str()
        assert opened.startswith("0{")


async def test_what_a_call_causes_reaches_the_caller_before_its_ack(bridge: Bridge) -> None:
    """The effects of a call go out through the fan-out once committed, in order, and its ack
    after them: a client holding the ack has been sent all the call caused."""
    victim, _, _ = await driegesprek(bridge)
    raw = await RawSocket.open(bridge.url, str(victim.token))
    try:
        assert (await raw.call("conversation.join", {"conversation_id": victim.conversation_id}))[
            "ok"
        ]
        ack_id = await raw.emit("bridge.pause", {"conversation_id": victim.conversation_id})
        before_ack: list[str] = []
        while not (packet := await raw.packet()).startswith(f"43{ack_id}["):
            before_ack.append(packet)
        events = [json.loads(p[2:]) for p in before_ack if p.startswith("42[")]
        states = [data["state"] for name, data in events if name == "bridge.state"]
        assert states == ["paused"], before_ack
    finally:
        await raw.close()
