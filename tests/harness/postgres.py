"""A real PostgreSQL for the tests: a cluster of its own in a temporary directory, on loopback.

Debian's server binaries (``postgresql``) run the cluster; PostgreSQL refuses to run as root, so
as root it runs as the ``postgres`` user. One cluster serves the whole run. Each bridge gets a
database of its own, copied from a template that is migrated once, and dropped when it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from bridge.store.db import Database, upgrade

__all__ = ["INSTALL", "Cluster"]

INSTALL = "apt-get install -y --no-install-recommends postgresql"
_TEMPLATE = "bridge_template"


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError(f"PostgreSQL's server is missing; install it with: {INSTALL}")
    return Path(found[-1]).parent


class Cluster:
    """A PostgreSQL cluster on 127.0.0.1 that the tests start and remove."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
        self.port = 0
        self.created: set[str] = set()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        from harness.server import free_port

        bindir = _bindir()
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        self._run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
        )
        self.port = free_port()
        # fsync off: a test cluster need not survive the machine; a killed bridge is what the
        # crash tests kill, and PostgreSQL's commit stays synchronous for it.
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=400"
        )
        self._run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )
        with self._admin() as admin:
            admin.execute(f"CREATE DATABASE {_TEMPLATE}")
        database = Database(self.url(_TEMPLATE))

        async def migrate() -> None:
            await upgrade(database)
            await database.dispose()

        asyncio.run(migrate())

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(
                str(_bindir() / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    @contextlib.contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.url("postgres", "postgresql"), autocommit=True) as connection:
            yield connection

    @staticmethod
    def _name(data_dir: Path) -> str:
        return "b_" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:24]

    def database_for(self, data_dir: Path, *, empty: bool = False) -> str:
        """The database of the installation in ``data_dir``, made once: from the migrated
        template, or ``empty`` (no tables)."""
        name = self._name(data_dir)
        if name not in self.created:
            template = "template0" if empty else _TEMPLATE
            with self._admin() as admin:
                admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
            self.created.add(name)
        return name

    def drop(self, data_dir: Path) -> None:
        """Drop the database of ``data_dir``, whoever is still connected to it."""
        name = self._name(data_dir)
        if name in self.created:
            with self._admin() as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.created.discard(name)
