"""Socket.IO written by hand on one websocket, for tests that need a client to misbehave: stop
reading, send what no library would, or watch exactly when the server ends the connection."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bridge.client import Refused


async def login(url: str, username: str, password: str) -> dict[str, Any]:
    """``POST /api/v1/session``: the body, with the HTTP status added as ``status``."""
    async with aiohttp.ClientSession() as http:
        body = {"username": username, "password": password}
        async with http.post(f"{url}/api/v1/session", json=body) as response:
            answer: dict[str, Any] = await response.json()
            answer["status"] = response.status
            return answer


def _small_receive_buffer(addr_info: Any) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


class RawSocket:
    """Socket.IO by hand on one websocket: it reads only when a test asks it to."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws
        self.ids = 0

    @classmethod
    async def open(cls, url: str, token: str, *, small_buffer: bool = False) -> RawSocket:
        """Connect with ``token``; a refused connect raises Refused with its code."""
        connector = aiohttp.TCPConnector(
            socket_factory=_small_receive_buffer if small_buffer else None
        )
        http = aiohttp.ClientSession(connector=connector)
        ws = await http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
        raw = cls(http, ws)
        assert (await raw.packet()).startswith("0")
        await ws.send_str("40" + json.dumps({"token": token}))
        answer = await raw.packet()
        if answer.startswith("44"):
            await raw.close()
            refusal = json.loads(answer[2:])
            raise Refused(refusal["data"]["code"], refusal["message"])
        assert answer.startswith("40")
        return raw

    async def packet(self) -> str:
        """The next Socket.IO packet; engine.io pings are answered on the way."""
        while True:
            message = await self.ws.receive(timeout=10)
            if message.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"websocket ended: {message.type.name}")
            if message.data == "2":
                await self.ws.send_str("3")
                continue
            return str(message.data)

    async def emit(self, event: str, payload: object) -> int:
        self.ids += 1
        await self.ws.send_str(f"42{self.ids}" + json.dumps([event, payload]))
        return self.ids

    async def send(self, text: str, *attachments: bytes) -> None:
        """One packet exactly as written, then binary frames (its attachments, or not)."""
        await self.ws.send_str(text)
        for attachment in attachments:
            await self.ws.send_bytes(attachment)

    async def ack(self, ack_id: int) -> dict[str, Any]:
        """The ack with this id; server events and other acks on the way are dropped."""
        prefix = f"43{ack_id}["
        while True:
            packet = await self.packet()
            if packet.startswith(prefix):
                ack: dict[str, Any] = json.loads(packet[len(prefix) - 1 :])[0]
                return ack

    async def call(self, event: str, payload: object) -> dict[str, Any]:
        """Emit with an ack and return the ack; server events on the way are dropped."""
        return await self.ack(await self.emit(event, payload))

    async def ended(self) -> bool:
        """Read until the connection ends (a server disconnect, a close or a reset)."""
        try:
            while True:
                packet = await self.packet()
                if packet.startswith("41"):
                    return True
        except (ConnectionError, aiohttp.ClientError):
            return True

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


@dataclass
class Output:
    """What the in-process server wrote (structlog's lines and python logging's records), to
    check that nothing a client sent raised inside it."""

    capsys: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture

    def text(self) -> str:
        out, err = self.capsys.readouterr()
        records = "\n".join(
            f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in self.caplog.records
        )
        return out + err + records

    def assert_clean(self) -> str:
        text = self.text()
        assert "Traceback" not in text, text
        assert not [r for r in self.caplog.records if r.exc_info], text
        assert not [r for r in self.caplog.records if r.levelno >= logging.ERROR], text
        return text
