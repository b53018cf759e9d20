"""A real Redis for the tests: Debian's ``redis-server`` on 127.0.0.1, in a temporary directory,
without persistence (as the bridge asks of it), stopped and removed afterwards."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.server import free_port

__all__ = ["INSTALL", "RedisServer", "redis_server"]

INSTALL = "apt-get install -y --no-install-recommends redis-server"


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(f"redis-server is missing; install it with: {INSTALL}")
        self.root = Path(tempfile.mkdtemp(prefix="bridge-redis-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait(self) -> None:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 5 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A Redis server of its own for the duration of the block."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()
