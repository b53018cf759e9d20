"""The websocket transport: what the server negotiates with a client."""

from __future__ import annotations

import aiohttp

from harness import Bridge


async def test_websocket_refuses_permessage_deflate(bridge: Bridge) -> None:
    # Frames are ciphertext: compressing them gains nothing and costs memory per socket.
    url = f"http://127.0.0.1:{bridge.port}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=15) as ws:
        assert ws.compress == 0
        assert "Sec-WebSocket-Extensions" not in ws._response.headers
        opened = await ws.receive_str()
        assert opened.startswith("0{")
