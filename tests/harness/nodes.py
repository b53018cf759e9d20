"""``bridge serve`` as a child process: one node of an installation, on a port of its own.

Nodes of one installation share its data directory (the log key) and its database
(:func:`harness.backend.database_url`); with a Redis URL they share their sockets' fan-out,
presence and limits too. A node can be stopped, killed with SIGKILL and started again.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from harness.server import CLI, Bridge, bridge_cli, cli_env, free_port, wait_healthy

__all__ = ["Node", "audit_verify"]

# No token bucket in the way: senders go as fast as the server acknowledges.
FAST_SENDING = "message_rate = 1000000.0\nmessage_burst = 1000000\n"


class Node:
    """One ``bridge serve`` process on ``port`` (a free one if not given) over ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        name: str = "serve",
        env: dict[str, str] | None = None,
        config: str = FAST_SENDING,
    ) -> None:
        self.data_dir, self.port, self.name = data_dir, port or free_port(), name
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.config = data_dir / f"{name}.toml"
        self.config.write_text(config)
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.starts += 1
        with (self.data_dir / f"{self.name}-{self.starts}.err").open("w") as err:
            self.proc = await asyncio.create_subprocess_exec(
                *CLI,
                "serve",
                "--port",
                str(self.port),
                "--config",
                str(self.config),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
                env={**cli_env(self.data_dir), **self.env},
            )
        await wait_healthy(self.url, self.proc)

    async def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 15)

    def errors(self) -> str:
        """What the node wrote to stderr, over all its starts."""
        return "".join(p.read_text() for p in sorted(self.data_dir.glob(f"{self.name}-*.err")))


async def audit_verify(bridge: Bridge, url: str) -> tuple[int, str]:
    """``bridge audit verify --url`` against the node at ``url`` with an auditor's fresh token
    (from ``bridge``'s URL): its exit status and what it printed."""
    token = await bridge.token("auditor")
    # --token=...: a token may begin with "-", which argparse would take for an option.
    args = ("audit", "verify", "--url", url, f"--token={token}")
    status, out, err = await bridge_cli(bridge.data_dir, *args)
    return status, out + err
