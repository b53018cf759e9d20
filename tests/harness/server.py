"""A real bridge on a real socket (127.0.0.1), with accounts and org keys, for the tests.

The server runs in the test's event loop on a free loopback port, with its own database (SQLite
in a temporary directory, or a PostgreSQL database: :mod:`harness.backend`); Argon2id runs at
libsodium's minimum cost so that tests stay quick. The tests play both organisations: their
policy-signing keys (:data:`POLICY_KEYS`) are registered before the server starts, and the
policy a test asks for (the packaged default unless it asks for another) is signed by both and
named in the server's settings, which put it in force at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from nacl import pwhash
from nacl.signing import SigningKey

from bridge.client import CounsellorClient, Network, OfficerClient, StaffClient, VictimClient
from bridge.clock import utc_now
from bridge.config import Settings, load_settings
from bridge.domain.orgkeys import init_org_key
from bridge.domain.policies import Werkafspraken
from bridge.domain.staff import Staff
from bridge.edges.app import CORE, make_app
from bridge.edges.demo_policy import sign_as_both
from bridge.log.writer import open_log
from bridge.store.db import migrated
from harness import backend

FAST = {
    "password_opslimit": pwhash.argon2id.OPSLIMIT_MIN,
    "password_memlimit": pwhash.argon2id.MEMLIMIT_MIN,
    "org_key_opslimit": pwhash.argon2id.OPSLIMIT_MIN,
    "org_key_memlimit": pwhash.argon2id.MEMLIMIT_MIN,
}

S = TypeVar("S", bound=StaffClient)

DEFAULT_POLICY = (Path(__file__).parents[2] / "bridge" / "policy" / "default.toml").read_text()


# Fixed keys, so that every bridge the tests start (and every node sharing its database) knows them.
POLICY_KEYS = {
    org: SigningKey(hashlib.sha256(f"policy-signing key of {org} in the tests".encode()).digest())
    for org in ("fier", "avim")
}


async def signed_policy_file(data_dir: Path, text: str | None = None) -> Path:
    """``data_dir``/policy.toml: ``text`` (the packaged default if None) signed by both
    organisations' :data:`POLICY_KEYS`, which are registered in the database of ``data_dir``
    first where they are not yet (``data_dir`` must exist). A server that names it in its
    settings puts it in force."""
    settings = load_settings(data_dir=data_dir, database_url=backend.database_url(data_dir))
    async with migrated(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous) as db:
        werkafspraken = Werkafspraken(db, open_log(settings), utc_now)
        signed = await sign_as_both(werkafspraken, POLICY_KEYS, text or DEFAULT_POLICY, apply=False)
    path = data_dir / "policy.toml"
    path.write_text(signed)
    return path


def policy_text(**changes: Any) -> str:
    """The default policy with some values changed, e.g. ``prompt_expiry_seconds=1``."""
    text = DEFAULT_POLICY
    for key, value in changes.items():
        rendered = str(value).lower() if isinstance(value, bool) else str(value)
        lines = []
        for line in text.splitlines():
            if line.split("=")[0].strip() == key:
                line = f"{key} = {rendered}"
            lines.append(line)
        text = "\n".join(lines) + "\n"
    return text


@dataclass
class Bridge:
    """One bridge server and the people that use it."""

    data_dir: Path
    policy: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    runner: web.AppRunner | None = None
    port: int = 0
    passwords: dict[str, str] = field(default_factory=dict)
    passphrases: dict[str, str] = field(default_factory=dict)
    clients: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def settings(self) -> Settings:
        return load_settings(
            data_dir=self.data_dir,
            database_url=backend.database_url(self.data_dir),
            policy_file=self.data_dir / "policy.toml",
            **{**FAST, **self.overrides},
        )

    @property
    def app(self) -> web.Application:
        assert self.runner is not None
        return self.runner.app

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await signed_policy_file(self.data_dir, self.policy)
        self.runner = web.AppRunner(make_app(self.settings), access_log=None, shutdown_timeout=0.25)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def restart(self) -> None:
        """Stop and start again on the same port and data (clients must reconnect)."""
        await self.stop()
        await self.start()

    async def add_user(
        self,
        username: str,
        role: str,
        org: str,
        region: str | None = None,
        gender: str | None = None,
    ) -> str:
        password = secrets.token_urlsafe(12)
        core = self.app[CORE]
        account_id = await Staff(core.db, core.log, core.clock).add_account(
            username,
            password,
            role=role,
            org=org,
            region=region,
            gender=gender,
            opslimit=FAST["password_opslimit"],
            memlimit=FAST["password_memlimit"],
        )
        self.passwords[username] = password
        return account_id

    async def init_orgs(self) -> None:
        for org in ("fier", "avim"):
            self.passphrases[org] = secrets.token_urlsafe(16)
            await init_org_key(
                self.app[CORE].db,
                self.app[CORE].log,
                org,
                self.passphrases[org],
                opslimit=FAST["org_key_opslimit"],
                memlimit=FAST["org_key_memlimit"],
                now=utc_now(),
            )

    async def rotate_org(self, org: str, passphrase: str) -> dict[str, Any]:
        """``bridge keys rotate-org ORG`` on this installation, at the tests' Argon2id cost;
        its printed answer (``{org, old_key_id, key_id, x25519}``)."""
        fast = {f"BRIDGE_{name.upper()}": str(FAST[name]) for name in FAST if "org_key" in name}
        args = ("keys", "rotate-org", org, "--passphrase-stdin")
        status, out, err = await bridge_cli(self.data_dir, *args, stdin=passphrase + "\n", env=fast)
        assert status == 0, out + err
        rotated: dict[str, Any] = json.loads(out)
        return rotated

    async def victim(
        self, lang: str = "nl", *, url: str | None = None, network: Network | None = None
    ) -> VictimClient:
        """A victim with a new conversation, on this bridge or at ``url`` (a node, a proxy)."""
        client = await VictimClient.create(url or self.url, lang, network=network)
        self.clients.append(client)
        return client

    async def counsellor(
        self,
        username: str = "counsellor",
        *,
        url: str | None = None,
        network: Network | None = None,
    ) -> CounsellorClient:
        """A counsellor logged in, with the Fier key unlocked, connected and registered (on
        this bridge, or at ``url``: a node, a proxy)."""
        return await self._staff(CounsellorClient, username, "fier", url, network)

    async def officer(
        self, username: str = "officer", *, url: str | None = None, network: Network | None = None
    ) -> OfficerClient:
        """An officer logged in, with the AVIM key unlocked, connected and registered (on this
        bridge, or at ``url``: a node, a proxy)."""
        return await self._staff(OfficerClient, username, "avim", url, network)

    async def _staff(
        self, cls: type[S], username: str, org: str, url: str | None, network: Network | None
    ) -> S:
        client = await cls.login(
            url or self.url, username, self.passwords[username], network=network
        )
        self.clients.append(client)
        await client.unlock(self.passphrases[org])
        await client.connect()
        await client.register_device()
        return client

    async def token(self, username: str) -> str:
        """A fresh session token for ``username`` (``POST /api/v1/session``)."""
        login = {"username": username, "password": self.passwords[username]}
        status, session = await http(self, "POST", "/api/v1/session", body=login)
        assert status == 200, session
        return str(session["token"])

    async def close_clients(self) -> None:
        for client in self.clients:
            await client.aclose()
        self.clients.clear()


async def staffed(
    data_dir: Path, policy: str | None = None, overrides: dict[str, Any] | None = None
) -> Bridge:
    """A running bridge with org keys, two counsellors, two officers and an auditor."""
    bridge = Bridge(data_dir, policy=policy, overrides=overrides or {})
    await bridge.start()
    await bridge.init_orgs()
    await bridge.add_user("counsellor", "counsellor", "fier")
    await bridge.add_user("counsellor2", "counsellor", "fier")
    await bridge.add_user("officer", "officer", "avim", region="Noord-Holland", gender="female")
    await bridge.add_user("officer2", "officer", "avim", region="Limburg", gender="male")
    await bridge.add_user("auditor", "auditor", "audit")
    return bridge


@contextlib.asynccontextmanager
async def running(
    data_dir: Path, policy: str | None = None, overrides: dict[str, Any] | None = None
) -> AsyncIterator[Bridge]:
    """A :func:`staffed` bridge whose clients and server are closed on the way out."""
    bridge = await staffed(data_dir, policy, overrides)
    try:
        yield bridge
    finally:
        await bridge.close_clients()
        await bridge.stop()
        backend.release(data_dir)


def state_is(state: str, reason: str | None = None) -> Callable[[dict[str, Any]], bool]:
    """A ``bridge.state`` event filter: that state (and, if given, that reason)."""
    return lambda e: e["state"] == state and (reason is None or e.get("reason") == reason)


async def picked_up(bridge: Bridge, lang: str = "nl") -> tuple[VictimClient, CounsellorClient]:
    """A victim whose conversation a counsellor has joined."""
    victim = await bridge.victim(lang)
    counsellor = await bridge.counsellor()
    await counsellor.join(victim.conversation_id)
    return victim, counsellor


async def granted(
    bridge: Bridge, *, purpose: str = "informational", share_needs_note: bool = True, **prefs: Any
) -> tuple[VictimClient, CounsellorClient, str]:
    """A bridge the victim has consented to; returns the request id."""
    victim, counsellor = await picked_up(bridge)
    request_id = await counsellor.propose(victim.conversation_id, purpose, prefs or None)
    await victim.next_event("consent.prompt")
    await victim.grant(share_needs_note=share_needs_note)
    await victim.next_event("bridge.state", where=state_is("granted"))
    return victim, counsellor, request_id


async def driegesprek(bridge: Bridge) -> tuple[VictimClient, CounsellorClient, OfficerClient]:
    """Victim, counsellor and officer together: the bridge is joined."""
    officer = await bridge.officer()
    victim, counsellor, _ = await granted(bridge)
    invite = await officer.next_event("invite")
    await officer.accept(invite["invite_id"])
    for party in (victim, counsellor):
        await party.next_event("bridge.state", where=state_is("joined"))
    return victim, counsellor, officer


# --- "changes nothing": the database as it is on disk --------------------------------------------

# The tables a refusal must leave alone; the snapshot reads every table, and these must exist.
TABLES = (
    "conversations",
    "participants",
    "bridge_requests",
    "epochs",
    "invites",
    "messages",
    "shared_keys",
    "log_entries",
    "devices",
    "tokens",
    "breakglass_requests",
)


def query(data_dir: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """The rows of one SQL query (``?`` placeholders) on the bridge's database, read only."""
    return backend.query(data_dir, sql, *params)


def db_rows(bridge: Bridge) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, straight from the bridge's database (one transaction)."""
    return backend.db_rows(bridge.data_dir, TABLES)


async def http(
    bridge: Bridge,
    method: str,
    path: str,
    *,
    body: object = None,
    data: bytes | None = None,
    token: str | None = None,
) -> tuple[int, Any]:
    """One raw HTTP request: ``(status, decoded JSON body)``."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if data is not None:
        headers["Content-Type"] = "application/json"
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, bridge.url + path, json=body, data=data, headers=headers
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


def http_error(answer: tuple[int, Any], status: int, code: str) -> None:
    """Assert that an :func:`http` answer is ``status`` with the error body of ``code``."""
    got_status, body = answer
    assert got_status == status, answer
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def audit_entries(bridge: Bridge, token: str | None = None) -> list[dict[str, Any]]:
    """Every log entry as the auditor reads it (``GET /api/v1/audit/entries``), with ``token`` or
    a fresh auditor session."""
    token = token or await bridge.token("auditor")
    path = "/api/v1/audit/entries?start=0&count=1000"
    status, page = await http(bridge, "GET", path, token=token)
    assert status == 200 and page["size"] == len(page["entries"]), page
    return [item["entry"] for item in page["entries"]]


def error_code(ack: Any) -> str:
    """The code of an ``{"ok": false, "error": {code, message}}`` ack, after checking its shape."""
    assert isinstance(ack, dict) and set(ack) == {"ok", "error"} and ack["ok"] is False, ack
    error = ack["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, ack
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    return error["code"]


# --- the bridge as a separate process ----------------------------------------------------------

CLI = (sys.executable, "-m", "bridge.edges.cli")


def cli_env(data_dir: Path | None) -> dict[str, str]:
    """This process's environment without any ``BRIDGE_*`` setting, with ``data_dir`` if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    if data_dir is not None:
        env["BRIDGE_DATA_DIR"] = str(data_dir)
        env["BRIDGE_DATABASE_URL"] = backend.database_url(data_dir)
    return env


async def bridge_cli(
    data_dir: Path | None, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run ``bridge ARGS`` to the end in :func:`cli_env` (with ``env`` added), ``stdin`` as its
    input; return its exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**cli_env(data_dir), **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    """Wait until the server process at ``url`` answers ``/healthz``."""
    async with aiohttp.ClientSession() as http:
        for _ in range(150):
            assert proc.returncode is None, "bridge serve exited early"
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url}/healthz did not answer 200 within 15 s")
