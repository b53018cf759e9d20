"""nginx on loopback with the site shipped in deploy/, in front of bridge nodes.

The shipped site is included verbatim; what an installation writes beside it (the upstreams,
the listen lines) and a self-signed certificate are made in a temporary prefix. nginx and openssl
must be installed: without them the tests that use this fail, they do not skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import shutil
import signal
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from harness.server import free_port

__all__ = [
    "SITE",
    "Proxy",
    "certificate",
    "nginx_command",
    "nginx_prefix",
    "proxy_in_front",
    "tool",
]

SITE = Path(__file__).parents[2] / "deploy" / "nginx" / "fier-bridge.conf"
SBIN = ("/usr/sbin", "/sbin")


def tool(name: str, package: str) -> str:
    path = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install -y {package}")
    return path


def certificate(directory: Path) -> Path:
    """A self-signed certificate for localhost and 127.0.0.1, made with the openssl command."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            tool("openssl", "openssl"),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(directory / "tls.key"),
            "-out",
            str(directory / "tls.crt"),
        ],
        check=True,
        capture_output=True,
    )
    return directory / "tls.crt"


def nginx_prefix(prefix: Path, includes: dict[str, str]) -> Path:
    """An nginx prefix whose nginx.conf includes the shipped site verbatim, with ``includes``
    (the site's per-installation files) and a certificate in ``fier-bridge/``.

    Everything nginx writes stays in the prefix; the http level has an access log and an info
    error log of its own, so that the site is seen to turn them off.
    """
    (prefix / "fier-bridge").mkdir(parents=True)
    (prefix / "temp").mkdir()
    for name, text in includes.items():
        (prefix / "fier-bridge" / name).write_text(text)
    certificate(prefix / "fier-bridge")
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'temp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = ""
    if os.geteuid() == 0:  # nginx drops to this user for its workers
        group = "nogroup" if "nogroup" in {g.gr_name for g in grp.getgrall()} else "nobody"
        user = f"user nobody {group};"
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}
daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
{temp}
    access_log {prefix / "access.log"};
    include {SITE};
}}
"""
    )
    return conf


def nginx_command(conf: Path, *extra: str) -> list[str]:
    prefix = conf.parent
    return [
        tool("nginx", "nginx"),
        "-p",
        f"{prefix}/",
        "-c",
        str(conf),
        "-e",
        str(prefix / "error.log"),
        *extra,
    ]


@dataclass
class Proxy:
    """nginx running the site: its HTTPS and HTTP addresses, and a TLS context that trusts it."""

    https: str
    http: str
    prefix: Path
    upstreams: list[int]
    tls: ssl.SSLContext

    def logged(self) -> str:
        """Everything nginx wrote to its logs."""
        return "".join(
            p.read_text() for p in (self.prefix / "error.log", self.prefix / "nginx.stderr")
        )


@contextlib.asynccontextmanager
async def proxy_in_front(prefix: Path, upstreams: list[int]) -> AsyncIterator[Proxy]:
    """nginx with the shipped site in front of the bridge nodes on ``upstreams`` (ports on
    127.0.0.1), until the block ends."""
    https_port, http_port = free_port(), free_port()
    conf = nginx_prefix(
        prefix,
        {
            "upstreams.conf": "".join(f"server 127.0.0.1:{p};\n" for p in upstreams),
            "listen-https.conf": f"listen 127.0.0.1:{https_port} ssl;\nserver_name localhost;\n",
            "listen-http.conf": f"listen 127.0.0.1:{http_port};\nserver_name localhost;\n",
        },
    )
    proxy = Proxy(
        https=f"https://127.0.0.1:{https_port}",
        http=f"http://127.0.0.1:{http_port}",
        prefix=prefix,
        upstreams=upstreams,
        tls=ssl.create_default_context(cafile=prefix / "fier-bridge" / "tls.crt"),
    )
    with (prefix / "nginx.stderr").open("w") as err:
        nginx = await asyncio.create_subprocess_exec(*nginx_command(conf), stdout=err, stderr=err)
    try:
        await _until_up(proxy, nginx)
        yield proxy
    finally:
        if nginx.returncode is None:
            nginx.send_signal(signal.SIGTERM)  # at once: open connections are not waited for
            await asyncio.wait_for(nginx.wait(), 10)


async def _until_up(proxy: Proxy, nginx: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            assert nginx.returncode is None, proxy.logged()
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(proxy.https + "/healthz", ssl=proxy.tls) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError("nginx did not answer within 10 s")
