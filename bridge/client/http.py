"""The client's HTTP calls: one aiohttp session, JSON in and out, an error body raised as
:class:`~bridge.client.wire.Refused`."""

from __future__ import annotations

from typing import Any

import aiohttp

from bridge.client.network import Network
from bridge.client.wire import JSON, Refused

__all__ = ["HttpApi"]


class HttpApi:
    """The HTTP API under ``base_url``, over one session opened on the first request."""

    def __init__(self, base_url: str, network: Network) -> None:
        self.base_url = base_url
        self.network = network
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = None,
        ack_timeout: float,
    ) -> Any:
        """Send one request to ``base_url + path`` and return its decoded JSON body.

        ``body`` is sent as JSON, or as is if it is ``bytes`` (to send malformed bodies). With
        ``token`` it carries ``Authorization: Bearer``. It fails with ``TimeoutError`` after
        ``ack_timeout`` seconds in all. A status of 400 or more raises
        :class:`Refused` with the code of the body's ``error`` (``http`` if it has none).
        An answer that is not JSON is returned as ``None``.
        """
        if self._session is None:
            self._session = self.network.session()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs: dict[str, Any] = {
            "headers": headers,
            "timeout": aiohttp.ClientTimeout(total=ack_timeout),
        }
        if isinstance(body, bytes):
            kwargs["data"] = body
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        async with self._session.request(method, self.base_url + path, **kwargs) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = None
            if response.status >= 400:
                error = data.get("error") if isinstance(data, dict) else None
                if isinstance(error, dict):
                    raise Refused(
                        str(error.get("code")), str(error.get("message")), response.status
                    )
                raise Refused("http", f"HTTP {response.status}", response.status)
            return data

    async def org_key(self, org: str, *, ack_timeout: float) -> JSON:
        """``GET /api/v1/orgs/{org}/key``: ``{org, key_id, x25519, versions}``, the newest
        version first named. Fetched each time: a rotation may have added one."""
        key: JSON = await self.request("GET", f"/api/v1/orgs/{org}/key", ack_timeout=ack_timeout)
        return key

    async def consent_text(self, purpose: str, lang: str, *, ack_timeout: float) -> JSON:
        """The current consent text ``{purpose, lang, version, sha256, body}``."""
        path = f"/api/v1/consent-texts/{purpose}?lang={lang}"
        text: JSON = await self.request("GET", path, ack_timeout=ack_timeout)
        return text

    async def close(self) -> None:
        """Close the session; a later request opens a new one."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
