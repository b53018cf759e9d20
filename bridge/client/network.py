"""How a client reaches the bridge: the TLS certificates it trusts and the address it connects
from. The defaults (the system's certificates, any local address) suit most; a bridge behind a
private certificate authority needs its certificate, and a machine with several addresses may
have to pick one."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiohttp

__all__ = ["Network"]


@dataclass(frozen=True)
class Network:
    tls: ssl.SSLContext | None = None  # None: the system's trusted certificates
    local_address: str | None = None

    def session(self) -> aiohttp.ClientSession:
        """An HTTP session (for the API, and for Socket.IO's transports) that goes this way."""
        local = None if self.local_address is None else (self.local_address, 0)
        connector = aiohttp.TCPConnector(ssl=self.tls or True, local_addr=local)
        return aiohttp.ClientSession(connector=connector)
