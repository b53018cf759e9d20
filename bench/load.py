"""Many driegesprekken at once on one bridge process: throughput, ack latency, errors, losses.

The bridge runs as one separate server process (``bridge serve``) on a SQLite file in a temporary
directory. Driver processes hold the conversations: per conversation a victim, a counsellor and
an officer socket (``bridge.client``, all cryptography client-side), set up through the real
protocol (create, pick up, propose, grant, accept the invite). Then every party sends at a steady
rate for ``--duration`` seconds, to care + investigation and, now and then, to care alone.

At the end every reader's live ``message`` events are checked against what was acknowledged:
each acked message reached every reader of its audience exactly once, the officer got no
care-only message, and every message verified and opened. The victim's ``history.fetch`` is
checked against the acks too (what was stored).

Baseline, in the same run: the same number of sockets, the same rate, audience mix and envelope
size against a bare python-socketio relay (``--relay-server``, also a separate process) that acks
each ``message.send`` with a counter and emits it to the same rooms, with no checks, no database
and no log. The ratio of server CPU per message is what the bridge's work costs over moving the
bytes.

    .venv/bin/python bench/load.py [--conversations 500] [--duration 60] [--rate 0.1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import socketio  # type: ignore[import-untyped]
from nacl import pwhash
from nacl.signing import SigningKey

from bridge import crypto
from bridge.client import BridgeClient, CounsellorClient, OfficerClient, Refused, VictimClient
from bridge.clock import utc_now
from bridge.config import load_settings
from bridge.domain.auth import create_account
from bridge.domain.orgkeys import init_org_key
from bridge.domain.policies import Werkafspraken
from bridge.edges.demo_policy import sign_as_both
from bridge.log.writer import open_log
from bridge.policy.loader import default_text
from bridge.policy.signed import SIGNING_ORGS
from bridge.store.db import Database, upgrade

JSON = dict[str, Any]
PASSWORD = "bench-password-0123"
PASSPHRASES = {"fier": "bench-fier-passphrase", "avim": "bench-avim-passphrase"}
TEXT_LENGTH = 160  # characters of plaintext per message
CARE_ONLY_EVERY = 4  # every 4th message of victim and counsellor goes to care alone
SETUP_PARALLEL = 16  # conversations a driver sets up at once
SETTLE_SECONDS = 30.0  # how long readers may take to receive the last messages

# Argon2id at its minimum: accounts and org keys are made by the thousand here, and the login
# cost is not what this measures. Every victim comes from 127.0.0.1, so the per-address limit on
# new conversations is lifted. Other settings stay at their defaults.
CONFIG = f"""\
conversations_per_minute = 1000000
password_opslimit = {pwhash.argon2id.OPSLIMIT_MIN}
password_memlimit = {pwhash.argon2id.MEMLIMIT_MIN}
org_key_opslimit = {pwhash.argon2id.OPSLIMIT_MIN}
org_key_memlimit = {pwhash.argon2id.MEMLIMIT_MIN}
sqlite_synchronous = "{{synchronous}}"
"""


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss(pid: int) -> tuple[int, int]:
    """Resident memory now and at its peak, in KiB (VmRSS, VmHWM)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], path: str = "/healthz") -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited early with status {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + path) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url}{path} did not answer within 30 s")


@dataclass
class Server:
    """A server process on 127.0.0.1 and where its output goes."""

    proc: subprocess.Popen[bytes]
    url: str
    port: int
    err_file: Path

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def errors(self) -> list[str]:
        """Lines of the server's log at level error (or tracebacks)."""
        lines = self.err_file.read_text(errors="replace").splitlines()
        return [line for line in lines if '"level": "error"' in line or "Traceback" in line]


async def prepare(folder: Path, conversations: int, synchronous: str) -> Path:
    """Config file, schema, one counsellor and one officer account per conversation (each officer
    its own region, so each invite goes to one officer) and both org keys."""
    config = folder / "bridge.toml"
    config.write_text(CONFIG.format(synchronous=synchronous))
    settings = load_settings(config, data_dir=folder / "data")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    await upgrade(db)
    now = utc_now()
    async with db.session() as session, session.begin():
        for index in range(conversations):
            for role, org, region in (("counsellor", "fier", None), ("officer", "avim", "r")):
                await create_account(
                    session,
                    username=f"{role[0]}{index}",
                    password=PASSWORD,
                    role=role,
                    org=org,
                    region=f"{region}{index}" if region else None,
                    gender=None,
                    now=now,
                    opslimit=settings.password_opslimit,
                    memlimit=settings.password_memlimit,
                )
    log = open_log(settings)
    # The bench plays both organisations: keys of its own sign the packaged werkafspraken.
    keys = {org: SigningKey.generate() for org in SIGNING_ORGS}
    await sign_as_both(Werkafspraken(db, log, utc_now), keys, default_text(), apply=True)
    for org, passphrase in PASSPHRASES.items():
        await init_org_key(
            db,
            log,
            org,
            passphrase,
            opslimit=settings.org_key_opslimit,
            memlimit=settings.org_key_memlimit,
            now=now,
        )
    await db.dispose()
    return config


def start_bridge(
    folder: Path, config: Path, port: int | None = None, name: str = "bridge"
) -> Server:
    """``bridge serve`` on ``port`` (a free one by default); its log goes to ``name``.err."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env["BRIDGE_DATA_DIR"] = str(folder / "data")
    err_file = folder / f"{name}.err"
    command = [sys.executable, "-m", "bridge.edges.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--config", str(config)]
    with err_file.open("wb") as err:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
    return Server(proc, f"http://127.0.0.1:{port}", port, err_file)


def start_relay(folder: Path) -> Server:
    port = free_port()
    err_file = folder / "relay.err"
    with err_file.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--relay-server", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return Server(proc, f"http://127.0.0.1:{port}", port, err_file)


# --- the baseline relay ------------------------------------------------------------------------


def relay_server(port: int) -> None:
    """A bare Socket.IO relay: rooms, a counter per conversation, ack and emit; nothing else."""
    from aiohttp import web

    server = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
    seqs: Counter[str] = Counter()

    async def join(sid: str, rooms: list[str]) -> JSON:
        for room in rooms:
            await server.enter_room(sid, room)
        return {"ok": True}

    async def send(sid: str, body: JSON) -> JSON:
        envelope = body["envelope"]
        conversation = envelope["conversation_id"]
        seqs[conversation] += 1
        seq = seqs[conversation]
        event = {"conversation_id": conversation, "seq": seq, "envelope": envelope}
        rooms = [f"{conversation}:care"]
        if "investigation" in envelope["audience"]:
            rooms.append(f"{conversation}:investigation")
        await server.emit("message", event, to=rooms)
        return {"ok": True, "seq": seq}

    server.on("join", join)
    server.on("message.send", send)
    app = web.Application()
    server.attach(app)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- one driver process ------------------------------------------------------------------------


@dataclass
class Party:
    """One socket of a conversation in the message phase."""

    role: str
    # Sends one message (text, care-only wanted); returns its seq and whether it went to
    # investigation too (the client sends care-only while it knows the bridge is not joined).
    send: Callable[[str, bool], Awaitable[tuple[int, bool]]]
    received: Callable[[], list[JSON]]
    sends_care_only: bool


@dataclass
class Conv:
    index: int
    conversation_id: str = ""
    parties: list[Party] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    clients: list[BridgeClient] = field(default_factory=list)
    acked: dict[int, bool] = field(default_factory=dict)  # seq -> to investigation too
    history: Callable[[], Awaitable[list[JSON]]] | None = None


@dataclass
class Tally:
    sent: int = 0
    acked: int = 0
    late: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


def text_of(length: int) -> str:
    return "".join(random.choices("abcdefghij klmnopqrstuvwxyz", k=length))


async def set_up_bridge(url: str, convs: list[Conv], tally: Tally) -> None:
    """Victim creates, counsellor picks up and proposes, victim grants, officer accepts."""
    gate = asyncio.Semaphore(SETUP_PARALLEL)

    async def staff(kind: type[CounsellorClient] | type[OfficerClient], name: str, org: str) -> Any:
        client = await kind.login(url, name, PASSWORD, ack_timeout=60)
        await client.unlock(PASSPHRASES[org])
        await client.connect()
        await client.register_device()
        return client

    async def one(conv: Conv) -> None:
        async with gate:
            officer: OfficerClient = await staff(OfficerClient, f"o{conv.index}", "avim")
            conv.closers.append(officer.aclose)
            conv.clients.append(officer)
            victim = await VictimClient.create(url, ack_timeout=60)
            conv.closers.append(victim.aclose)
            conv.clients.append(victim)
            conv.conversation_id = cid = victim.conversation_id
            counsellor: CounsellorClient = await staff(CounsellorClient, f"c{conv.index}", "fier")
            conv.closers.append(counsellor.aclose)
            conv.clients.append(counsellor)
            await counsellor.join(cid)
            await counsellor.propose(cid, preferences={"region": f"r{conv.index}"})
            await victim.next_event("consent.prompt", timeout=60)
            await victim.grant()
            invite = await officer.next_event("invite", timeout=60)
            await officer.accept(invite["invite_id"])
            for party in (victim, counsellor):
                await party.next_event(
                    "bridge.state", timeout=60, where=lambda e: e["state"] == "joined"
                )

            def live(client: BridgeClient) -> Callable[[], list[JSON]]:
                return lambda: [e for name, e in client.received if name == "message"]

            def sender(
                client: BridgeClient, send: Callable[[str, bool], Awaitable[int]]
            ) -> Callable[[str, bool], Awaitable[tuple[int, bool]]]:
                async def one_message(text: str, care_only: bool) -> tuple[int, bool]:
                    seq = await send(text, care_only)
                    # A party's sends are sequential: the envelope built last is this one.
                    envelope = next(reversed(client.sent.values()))
                    return seq, "investigation" in envelope["audience"]

                return one_message

            conv.parties = [
                Party(
                    "victim",
                    sender(victim, lambda t, c: victim.send(t, care_only=c)),
                    live(victim),
                    True,
                ),
                Party(
                    "counsellor",
                    sender(counsellor, lambda t, c: counsellor.send(cid, t, care_only=c)),
                    live(counsellor),
                    True,
                ),
                Party(
                    "officer",
                    sender(officer, lambda t, c: officer.send(cid, t)),
                    live(officer),
                    False,
                ),
            ]

            async def history() -> list[JSON]:
                found: list[JSON] = []
                while True:
                    ack = await victim.call(
                        "history.fetch",
                        {"conversation_id": cid, "after_seq": len(found), "limit": 500},
                    )
                    found += ack["messages"]
                    if len(ack["messages"]) < 500:
                        return found

            conv.history = history

    await set_up_each(convs, one, tally)


async def set_up_each(
    convs: list[Conv], one: Callable[[Conv], Awaitable[None]], tally: Tally
) -> None:
    """Set up every conversation at once; a failure is counted as an error, not raised."""

    async def guarded(conv: Conv) -> None:
        try:
            await one(conv)
        except Exception as exc:
            tally.errors[f"setup: {type(exc).__name__}: {exc}"] += 1

    await asyncio.gather(*(guarded(conv) for conv in convs))


async def set_up_relay(url: str, convs: list[Conv], tally: Tally) -> None:
    """The same sockets on the relay: victim and counsellor in the care room, officer in the
    investigation room; envelopes of the bridge's size, built once."""
    gate = asyncio.Semaphore(SETUP_PARALLEL)
    keys = crypto.DeviceKeys.generate()
    template = crypto.build_envelope(
        conversation_id=str(uuid.uuid4()),
        client_msg_id=str(uuid.uuid4()),
        sender_role="victim",
        device_id=str(uuid.uuid4()),
        kind="message",
        audience=["care", "investigation"],
        epoch_id=str(uuid.uuid4()),
        plaintext={"text": text_of(TEXT_LENGTH), "sent_at": "2026-01-01T00:00:00.000Z"},
        recipients={"victim": keys.x25519, "care": keys.x25519, "investigation": keys.x25519},
        signing_key=keys.signing,
    )

    async def party(conv: Conv, role: str, rooms: list[str]) -> Party:
        cid = conv.conversation_id
        sio = socketio.AsyncClient(reconnection=False)
        conv.closers.append(sio.disconnect)
        got: list[JSON] = []
        sio.on("message", got.append)
        await sio.connect(url, transports=["websocket"], wait_timeout=60)
        await sio.call("join", rooms, timeout=60)

        async def send(text: str, care_only: bool) -> tuple[int, bool]:
            audience = ["care"] if care_only else ["care", "investigation"]
            envelope = {**template, "conversation_id": cid, "audience": audience}
            envelope["client_msg_id"] = str(uuid.uuid4())
            ack = await sio.call("message.send", {"envelope": envelope}, timeout=60)
            return int(ack["seq"]), not care_only

        return Party(role, send, lambda: got, role != "officer")

    async def one(conv: Conv) -> None:
        async with gate:
            conv.conversation_id = cid = str(uuid.uuid4())
            care, investigation = f"{cid}:care", f"{cid}:investigation"
            conv.parties = [
                await party(conv, "victim", [care]),
                await party(conv, "counsellor", [care]),
                await party(conv, "officer", [investigation]),
            ]

    await set_up_each(convs, one, tally)


async def send_phase(convs: list[Conv], start: float, duration: float, rate: float) -> Tally:
    """Every party sends ``rate / 3`` messages a second, from a random phase, until the end."""
    tally = Tally()
    end = start + duration
    period = 3.0 / rate

    async def run(conv: Conv, party: Party) -> None:
        due = start + random.uniform(0, period)
        count = 0
        while True:
            now = time.time()
            if due >= end:
                return
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > period:
                tally.late += 1  # behind schedule by a whole period: skip ahead, no burst
                due = now
            count += 1
            care_only = party.sends_care_only and count % CARE_ONLY_EVERY == 0
            tally.sent += 1
            began = time.perf_counter()
            try:
                seq, investigation = await party.send(text_of(TEXT_LENGTH), care_only)
            except Refused as exc:
                tally.errors[f"ack: {exc.code}"] += 1
            except Exception as exc:
                tally.errors[f"send: {type(exc).__name__}"] += 1
            else:
                tally.latencies.append(time.perf_counter() - began)
                tally.acked += 1
                if seq in conv.acked:
                    tally.errors["seq given twice"] += 1
                conv.acked[seq] = investigation
            due += period

    await asyncio.gather(*(run(conv, party) for conv in convs for party in conv.parties))
    return tally


def _check(conv: Conv, party: Party, bridge: bool) -> tuple[int, int, int, int]:
    """Lost, duplicated, leaked (care-only at the officer) and unreadable messages at a reader."""
    events = [e for e in party.received() if e["conversation_id"] == conv.conversation_id]
    counts = Counter(int(e["seq"]) for e in events)
    wanted = {seq for seq, both in conv.acked.items() if party.role != "officer" or both}
    lost = len(wanted - set(counts))
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    leaked = sum(1 for seq in counts if seq in conv.acked and not conv.acked[seq])
    leaked = leaked if party.role == "officer" else 0
    unreadable = 0
    if bridge:
        unreadable = sum(1 for e in events if not e.get("verified") or e.get("text") is None)
    return lost, duplicated, leaked, unreadable


async def settle_and_check(convs: list[Conv], bridge: bool) -> JSON:
    """Wait until every reader has every acked message (or SETTLE_SECONDS), then count."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        if all(_check(c, p, bridge)[0] == 0 for c in convs for p in c.parties):
            break
        await asyncio.sleep(0.2)
    lost = duplicated = leaked = unreadable = deliveries = stored_wrong = 0
    lost_by_role: Counter[str] = Counter()
    samples: list[JSON] = []  # a few of the losses, to say which messages went missing where
    for conv in convs:
        for party in conv.parties:
            a, b, c, d = _check(conv, party, bridge)
            if a:
                lost_by_role[party.role] += a
                got = {int(e["seq"]) for e in party.received()}
                missing = sorted(
                    seq
                    for seq, both in conv.acked.items()
                    if seq not in got and (party.role != "officer" or both)
                )
                if len(samples) < 5:
                    samples.append(
                        {"role": party.role, "missing": missing, "received": sorted(got)}
                    )
            lost, duplicated, leaked, unreadable = (
                lost + a,
                duplicated + b,
                leaked + c,
                unreadable + d,
            )
            deliveries += len(party.received())
        if conv.history is not None:  # what the server stored, as the victim reads it back
            stored = {int(m["seq"]) for m in await conv.history()}
            stored_wrong += len(stored ^ set(conv.acked))
    return {
        "lost": lost,
        "lost_by_role": dict(lost_by_role),
        "loss_samples": samples,
        "duplicated": duplicated,
        "leaked_to_officer": leaked,
        "unreadable": unreadable,
        "history_mismatch": stored_wrong,
        "deliveries": deliveries,
        # Sockets the server dropped and the client opened again (and resumed) by itself.
        "reconnects": sum(client.resumes for conv in convs for client in conv.clients),
    }


async def drive(pipe: Connection, url: str, indices: list[int], relay: bool) -> None:
    loop = asyncio.get_running_loop()
    convs = [Conv(i) for i in indices]
    setup = Tally()
    began = time.perf_counter()
    await (set_up_relay if relay else set_up_bridge)(url, convs, setup)
    ready = [c for c in convs if c.parties]
    pipe.send({"ready": len(ready), "setup_seconds": time.perf_counter() - began})
    start, duration, rate = await loop.run_in_executor(None, pipe.recv)
    tally = await send_phase(ready, start, duration, rate)
    checks = await settle_and_check(ready, bridge=not relay)
    pipe.send(
        {
            "sent": tally.sent,
            "acked": tally.acked,
            "late": tally.late,
            "errors": dict(tally.errors + setup.errors),
            "latencies": tally.latencies,
            **checks,
        }
    )
    await loop.run_in_executor(None, pipe.recv)  # hold the sockets until every driver is done
    for conv in convs:
        for close in conv.closers:
            with contextlib.suppress(Exception):
                await close()


def driver_main(pipe: Connection, url: str, indices: list[int], relay: bool) -> None:
    try:
        asyncio.run(drive(pipe, url, indices, relay))
    except BaseException:
        pipe.send({"failed": traceback.format_exc()})
        raise


def receive(pipe: Connection, proc: Any) -> Any:
    """The driver's next answer; raises if it failed or died."""
    while not pipe.poll(1.0):
        if not proc.is_alive():
            raise RuntimeError(f"a driver exited with status {proc.exitcode}")
    answer = pipe.recv()
    if isinstance(answer, dict) and "failed" in answer:
        raise RuntimeError("a driver failed:\n" + answer["failed"])
    return answer


# --- the run -----------------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@contextlib.contextmanager
def drivers(url: str, conversations: int, count: int, relay: bool) -> Iterator[list[Any]]:
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for n in range(count):
        parent, child = ctx.Pipe()
        indices = list(range(n, conversations, count))
        proc = ctx.Process(target=driver_main, args=(child, url, indices, relay), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        yield list(zip(pipes, procs, strict=True))
    except BaseException:
        for proc in procs:
            proc.kill()
        raise
    for proc in procs:
        proc.join(60)
        if proc.is_alive():
            proc.kill()


def run(
    server: Server,
    conversations: int,
    duration: float,
    rate: float,
    driver_count: int,
    relay: bool,
    sample_every: float = 1.0,
) -> JSON:
    """Set up the conversations in the drivers, send for ``duration`` and gather the figures;
    the server's resident memory is sampled every ``sample_every`` seconds meanwhile."""
    pid = server.proc.pid
    with drivers(server.url, conversations, driver_count, relay) as group:
        readies = [receive(pipe, proc) for pipe, proc in group]
        start = time.time() + 1.0
        for pipe, _ in group:
            pipe.send((start, duration, rate))
        time.sleep(max(0.0, start - time.time()))
        cpu0, rss_samples = proc_cpu(pid), []
        driver_cpu0 = sum(proc_cpu(p.pid) for _, p in group)
        while time.time() < start + duration:
            rss_samples.append((round(time.time() - start, 1), proc_rss(pid)[0]))
            time.sleep(min(sample_every, max(0.0, start + duration - time.time())))
        cpu = proc_cpu(pid) - cpu0
        driver_cpu = sum(proc_cpu(p.pid) for _, p in group) - driver_cpu0
        results = [receive(pipe, proc) for pipe, proc in group]
        rss, peak = proc_rss(pid)
        for pipe, _ in group:
            pipe.send("done")
    latencies = sorted(x for r in results for x in r["latencies"])
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    acked = sum(r["acked"] for r in results)
    return {
        "conversations": sum(r["ready"] for r in readies),
        "sockets": 3 * sum(r["ready"] for r in readies),
        "setup_seconds": max(r["setup_seconds"] for r in readies),
        "duration": duration,
        "rate_per_conversation": rate,
        "sent": sum(r["sent"] for r in results),
        "acked": acked,
        "messages_per_second": acked / duration,
        "deliveries": sum(r["deliveries"] for r in results),
        "late": sum(r["late"] for r in results),
        "errors": dict(errors),
        "error_count": sum(errors.values()) + (conversations - sum(r["ready"] for r in readies)),
        **{
            key: sum(r[key] for r in results)
            for key in (
                "lost",
                "duplicated",
                "leaked_to_officer",
                "unreadable",
                "history_mismatch",
                "reconnects",
            )
        },
        "ack_ms": {f"p{q}": round(1000 * percentile(latencies, q), 1) for q in (50, 95, 99)}
        | {"max": round(1000 * latencies[-1], 1) if latencies else None},
        "server_cpu_percent": round(100 * cpu / duration, 1),
        "server_cpu_ms_per_message": round(1000 * cpu / acked, 3) if acked else None,
        "driver_cpu_percent": round(100 * driver_cpu / duration, 1),
        "server_rss_mib": round(rss / 1024, 1),
        "server_rss_peak_mib": round(peak / 1024, 1),
        "server_rss_samples_kib": rss_samples,
    }


def failures(result: JSON) -> int:
    """Errors and losses of a run: what must be zero."""
    keys = ("error_count", "lost", "duplicated", "leaked_to_officer", "unreadable", "reconnects")
    return sum(int(result[key]) for key in keys) + int(result.get("history_mismatch", 0))


async def _bridge_run(folder: Path, args: argparse.Namespace) -> JSON:
    config = await prepare(folder, args.conversations, args.sqlite_synchronous)
    server = start_bridge(folder, config)
    try:
        await wait_healthy(server.url, server.proc)
        result = await asyncio.to_thread(
            run, server, args.conversations, args.duration, args.rate, args.drivers, False
        )
    finally:
        status = server.stop()
    result["server_exit_status"] = status
    result["server_log_errors"] = len(server.errors())
    result["error_count"] += result["server_log_errors"]
    return result


async def _relay_run(folder: Path, args: argparse.Namespace) -> JSON:
    server = start_relay(folder)
    try:
        await wait_healthy(server.url, server.proc)
        return await asyncio.to_thread(
            run, server, args.conversations, args.baseline_duration, args.rate, args.drivers, True
        )
    finally:
        server.stop()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument(
        "--rate", type=float, default=0.1, help="messages a second per conversation"
    )
    parser.add_argument("--drivers", type=int, default=2, help="client processes")
    parser.add_argument("--baseline-duration", type=float, default=20.0)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--sqlite-synchronous", default="FULL", choices=["NORMAL", "FULL"])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--relay-server", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> JSON:
    """Both runs, bridge first; the figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="bridge-load-") as tmp:
        folder = Path(tmp)
        figures: JSON = {"bridge": asyncio.run(_bridge_run(folder, args))}
        if not args.no_baseline:
            figures["relay"] = asyncio.run(_relay_run(folder, args))
            bridge, relay = figures["bridge"], figures["relay"]
            if bridge["server_cpu_ms_per_message"] and relay["server_cpu_ms_per_message"]:
                figures["cpu_per_message_ratio"] = round(
                    bridge["server_cpu_ms_per_message"] / relay["server_cpu_ms_per_message"], 2
                )
            figures["ack_p50_ratio"] = round(bridge["ack_ms"]["p50"] / relay["ack_ms"]["p50"], 2)
    return figures


def report(figures: JSON) -> str:
    lines = []
    for name, r in (("bridge", figures["bridge"]), ("relay (baseline)", figures.get("relay"))):
        if r is None:
            continue
        lines += [
            f"{name}: {r['conversations']} conversations, {r['sockets']} sockets, "
            f"set up in {r['setup_seconds']:.1f} s",
            f"  {r['acked']} messages acked in {r['duration']:.0f} s: "
            f"{r['messages_per_second']:.1f}/s, {r['deliveries']} deliveries "
            f"({r['late']} sends behind schedule)",
            f"  ack latency ms: p50 {r['ack_ms']['p50']}, p95 {r['ack_ms']['p95']}, "
            f"p99 {r['ack_ms']['p99']}, max {r['ack_ms']['max']}",
            f"  server: CPU {r['server_cpu_percent']} % of a core, "
            f"{r['server_cpu_ms_per_message']} ms CPU a message, RSS {r['server_rss_mib']} MiB "
            f"(peak {r['server_rss_peak_mib']}); drivers CPU {r['driver_cpu_percent']} %",
            f"  errors {r['error_count']} {r['errors'] or ''}, lost {r['lost']}, "
            f"duplicated {r['duplicated']}, leaked to officer {r['leaked_to_officer']}, "
            f"unreadable {r['unreadable']}, history mismatches {r['history_mismatch']}, "
            f"reconnects {r['reconnects']}",
        ]
    if "cpu_per_message_ratio" in figures:
        lines.append(
            f"ratio bridge / relay: server CPU a message {figures['cpu_per_message_ratio']}, "
            f"ack p50 {figures['ack_p50_ratio']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.relay_server:
        relay_server(args.relay_server)
        return 0
    figures = measure(args)
    print(json.dumps(figures, indent=2) if args.json else report(figures), flush=True)
    return 1 if failures(figures["bridge"]) else 0


if __name__ == "__main__":
    sys.exit(main())
