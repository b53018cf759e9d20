"""Targets (a) and (b) of ``bench/compare.py``: relays that move the bytes and nothing else.

(a) A raw aiohttp websocket relay (this file run as a script, ``relays.py websocket PORT``): a
member joins a room with one JSON message; a ``send`` is given the room's next seq, acked to its
sender and written to every socket of the room, the sender's included, with one ``json.dumps``.
No Socket.IO, no engine.io, no checks: the least a server in Python can do for the same fan-out.

(b) The bare python-socketio relay of ``bench/load.py`` (``--relay-server``), started as that file
starts it: rooms, a counter per conversation, an ack and an emit to the care and investigation
rooms, nothing else. Victim and counsellor are in the care room, the officer in the
investigation room; every message goes to care + investigation, so to all three.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import subprocess
import sys
import time
import traceback
import uuid
from argparse import Namespace
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

if __name__ != "__main__":  # the relay process (this file as a script) imports none of the bench
    import idle_sockets  # type: ignore[import-not-found]  # bench/idle_sockets.py
    import load  # type: ignore[import-not-found]

    from peers.common import (
        JSON,
        SERVER_CPU,
        Proc,
        SetUp,
        node_generator,
        pin_tree,
        proc_rss,
        spawning_on,
    )

__all__ = ["SocketioRelay", "WebsocketRelay", "websocket_relay"]

ROLES = ("victim", "counsellor", "officer")
IDLE_PARALLEL = 50  # idle sockets opened at once
IDLE_WARM_UP = 20  # idle sockets opened before the first reading of VmRSS


# --- (a) the raw websocket relay ---------------------------------------------------------------


def websocket_relay(port: int) -> None:
    """Serve ``/ws`` (the relay) and ``/healthz`` on 127.0.0.1:``port`` until terminated."""
    from aiohttp import web

    rooms: dict[str, set[web.WebSocketResponse]] = {}
    seqs: Counter[str] = Counter()

    async def relay(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024)
        await ws.prepare(request)
        room = ""
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                packet = json.loads(message.data)
                if packet["type"] == "join":
                    room = packet["room"]
                    rooms.setdefault(room, set()).add(ws)
                    await ws.send_str('{"type":"joined"}')
                elif packet["type"] == "send" and room:
                    seqs[room] += 1
                    seq = seqs[room]
                    await ws.send_str(json.dumps({"type": "ack", "id": packet["id"], "seq": seq}))
                    out = json.dumps(
                        {"type": "message", "seq": seq, "envelope": packet["envelope"]}
                    )
                    for member in list(rooms[room]):
                        with contextlib.suppress(ConnectionError):
                            await member.send_str(out)
        finally:
            if room:
                rooms[room].discard(ws)
        return ws

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/ws", relay)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _hold_websockets(pipe: Connection, url: str, counts: list[int]) -> None:
    """Open idle members of rooms of their own in steps of ``counts``, report after each, and hold
    them until told to close."""
    loop = asyncio.get_running_loop()
    held: list[aiohttp.ClientWebSocketResponse] = []
    failures: Counter[str] = Counter()
    gate = asyncio.Semaphore(IDLE_PARALLEL)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one() -> None:
            async with gate:
                try:
                    ws = await http.ws_connect(url + "/ws", compress=0)
                    await ws.send_str(json.dumps({"type": "join", "room": str(uuid.uuid4())}))
                    answer = await ws.receive(timeout=60)
                    if answer.type != aiohttp.WSMsgType.TEXT or "joined" not in answer.data:
                        raise RuntimeError(f"join answered {answer.type}")
                    held.append(ws)
                except Exception as exc:
                    failures[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1

        for count in counts:
            await asyncio.gather(*(one() for _ in range(count)))
            pipe.send({"held": len(held), "failures": dict(failures)})
            await loop.run_in_executor(None, pipe.recv)
        pipe.send({"open": sum(not ws.closed for ws in held)})
        for ws in held:
            await ws.close()


def _hold_main(pipe: Connection, url: str, counts: list[int]) -> None:
    try:
        asyncio.run(_hold_websockets(pipe, url, counts))
    except BaseException:
        pipe.send({"failed": traceback.format_exc()})
        raise


def idle_websockets(url: str, pid: int, count: int, hold: float) -> JSON:
    """VmRSS of ``pid`` before and after ``count`` idle joined websockets, opened from another
    process, held for ``hold`` seconds (the shape of ``idle_sockets.measure``'s answer)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_hold_main, args=(child, url, [IDLE_WARM_UP, count]), daemon=True)
    proc.start()
    try:
        warmed = load.receive(parent, proc)["held"]
        time.sleep(1.0)
        before = proc_rss(pid)[0]
        parent.send("next")
        began = time.perf_counter()
        status = load.receive(parent, proc)
        open_seconds = time.perf_counter() - began
        time.sleep(hold)
        after = proc_rss(pid)[0]
        parent.send("close")
        still = load.receive(parent, proc)["open"]
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    opened = status["held"] - warmed
    return {
        "transport": "websocket",
        "wanted": count,
        "opened": opened,
        "open_at_end": still,
        "failed_to_open": status["failures"],
        "open_seconds": round(open_seconds, 1),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_socket": round((after - before) / opened, 1) if opened else None,
        "hold_seconds": hold,
    }


# --- the targets -------------------------------------------------------------------------------


class _Relay:
    """What both relays share: one server process on the server core, rooms made up here."""

    key = ""
    name = ""
    label = ""
    handshake = True
    generator_file = "socketio.mjs"

    def __init__(self, options: Namespace) -> None:
        self.options = options
        self.generator = node_generator(self.generator_file)
        self.server: Any = None  # load.Server

    def _spawn(self, folder: Path) -> Any:
        raise NotImplementedError

    async def start(self, folder: Path) -> None:
        with spawning_on(SERVER_CPU):
            self.server = self._spawn(folder)
        pin_tree(self.server.proc.pid, SERVER_CPU)
        await load.wait_healthy(self.server.url, self.server.proc)

    def _members(self, conversation_id: str) -> list[JSON]:
        return [{"role": role} for role in ROLES]

    async def set_up(self, rooms: int) -> SetUp:
        began = time.perf_counter()
        entries = []
        for _ in range(rooms):
            cid = str(uuid.uuid4())
            entries.append({"conversation_id": cid, "members": self._members(cid)})
        return SetUp(self.server.url, entries, time.perf_counter() - began, 0)

    async def release(self) -> None:
        return None

    def procs(self) -> dict[str, Proc]:
        return {"server": Proc(self.server.proc.pid, "server", SERVER_CPU)}

    async def idle_sockets(self, count: int) -> JSON | None:
        raise NotImplementedError

    def errors(self) -> list[str]:
        return list(self.server.errors()) if self.server is not None else []

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


class WebsocketRelay(_Relay):
    """(a) The raw aiohttp websocket relay."""

    key = "a"
    name = "aiohttp-ws"
    label = "raw aiohttp websocket relay"
    generator_file = "websocket.mjs"

    def _spawn(self, folder: Path) -> Any:
        port = load.free_port()
        err_file = folder / "websocket-relay.err"
        with err_file.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, __file__, "websocket", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        return load.Server(proc, f"http://127.0.0.1:{port}", port, err_file)

    async def idle_sockets(self, count: int) -> JSON | None:
        hold = self.options.idle_hold
        return await asyncio.to_thread(
            idle_websockets, self.server.url, self.server.proc.pid, count, hold
        )


class SocketioRelay(_Relay):
    """(b) The bare python-socketio relay of bench/load.py."""

    key = "b"
    name = "socketio-relay"
    label = "bare python-socketio relay"

    def _spawn(self, folder: Path) -> Any:
        return load.start_relay(folder)

    def _members(self, conversation_id: str) -> list[JSON]:
        care, investigation = f"{conversation_id}:care", f"{conversation_id}:investigation"
        rooms = {"victim": [care], "counsellor": [care], "officer": [investigation]}
        return [{"role": role, "rooms": rooms[role]} for role in ROLES]

    async def idle_sockets(self, count: int) -> JSON | None:
        targets = idle_sockets.relay_targets(count + IDLE_WARM_UP)
        return await asyncio.to_thread(
            idle_sockets.measure, self.server, "websocket", targets, idle_options(self.options)
        )


def idle_options(options: Namespace) -> Namespace:
    """What ``idle_sockets.measure`` reads: one client process (on the generator core), the
    warm-up sockets, and how long they settle and are held."""
    return Namespace(clients=1, warm_up=IDLE_WARM_UP, settle=1.0, hold=options.idle_hold)


if __name__ == "__main__":
    websocket_relay(int(sys.argv[2]))
