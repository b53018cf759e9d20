"""The client's address, for the per-address limits only: the TCP peer's, or, when the peer is a
proxy named in ``trusted_proxies``, the last address of X-Forwarded-For (the one that proxy set;
nginx as shipped sets only that one). From any other peer the header is ignored, so a client
cannot choose the address it is counted under. An address is never kept or logged: the limits
see only its keyed hash.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

__all__ = ["ClientAddress"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # An IPv4 client on a dual-stack socket is the same client as on an IPv4 one.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddress:
    def __init__(self, trusted_proxies: str) -> None:
        """``trusted_proxies``: addresses or networks (CIDR), comma-separated; a wrong one stops
        the bridge at start (``ValueError``)."""
        self.trusted = [
            ipaddress.ip_network(part.strip(), strict=False)
            for part in trusted_proxies.split(",")
            if part.strip()
        ]

    def __call__(self, request: web.Request) -> str:
        remote = request.remote or ""
        peer = _address(remote)
        if peer is None or not any(peer in network for network in self.trusted):
            return remote
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
        client = _address(forwarded.rsplit(",", 1)[-1])
        return remote if client is None else str(client)
