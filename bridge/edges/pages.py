"""The browser pages and their assets, and the security headers on every response.

``GET /`` is the victim's page; ``/counsellor``, ``/officer`` and ``/audit`` are served once their
HTML has been built into ``bridge/web/dist/`` (404 ``not_found`` before that). ``GET /assets/PATH``
serves the built scripts and styles from ``dist/``: only known file types, no directory listing,
nothing outside ``dist/``.

Every response, the API's and Socket.IO's included, carries a strict Content-Security-Policy and
the other headers of :data:`SECURITY_HEADERS`. Nothing is cached (``Cache-Control: no-store``
unless a handler chose otherwise), so a shared phone keeps no copy of any page or answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from aiohttp import web

from bridge.errors import NotFound

__all__ = ["CSP", "DIST", "SECURITY_HEADERS", "Pages", "install_pages"]

DIST: Final = Path(__file__).parents[1] / "web" / "dist"

CSP: Final = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# URL path -> the page's HTML file in dist/.
PAGES: Final[Mapping[str, str]] = {
    "/": "victim.html",
    "/counsellor": "counsellor.html",
    "/officer": "officer.html",
    "/audit": "audit.html",
}
# What /assets/ serves, by suffix; anything else is not_found.
CONTENT_TYPES: Final[Mapping[str, str]] = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".map": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
HTML_TYPE: Final = "text/html; charset=utf-8"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every response, errors and Socket.IO included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers.setdefault("Cache-Control", "no-store")


class Pages:
    """Serves the pages and assets of one ``dist`` directory."""

    def __init__(self, dist: Path = DIST) -> None:
        self.dist = dist.resolve()

    def routes(self) -> list[web.RouteDef]:
        routes = [web.get(path, self.page, allow_head=True) for path in PAGES]
        routes.append(web.get("/assets/{path:.+}", self.asset, allow_head=True))
        routes.append(web.get("/favicon.ico", self.no_icon, allow_head=True))
        return routes

    async def no_icon(self, request: web.Request) -> web.StreamResponse:
        """No icon: a browser's automatic request gets an empty answer, not an error."""
        return web.Response(status=204)

    async def page(self, request: web.Request) -> web.StreamResponse:
        file = self.dist / PAGES[request.path]
        if not file.is_file():
            raise NotFound("no such page")
        return web.Response(
            body=file.read_bytes(),
            headers={"Content-Type": HTML_TYPE, "Cache-Control": "no-store"},
        )

    async def asset(self, request: web.Request) -> web.StreamResponse:
        file = self._asset_file(request.match_info["path"])
        if file is None:
            raise NotFound("no such asset")
        return web.Response(
            body=file.read_bytes(),
            headers={"Content-Type": CONTENT_TYPES[file.suffix], "Cache-Control": "no-store"},
        )

    def _asset_file(self, path: str) -> Path | None:
        parts = path.split("/")
        if any(part in ("", ".", "..") or part.startswith(".") or "\\" in part for part in parts):
            return None
        file = (self.dist / path).resolve()
        if not file.is_relative_to(self.dist) or file.suffix not in CONTENT_TYPES:
            return None
        return file if file.is_file() else None


def install_pages(app: web.Application, dist: Path = DIST) -> None:
    """Add the page and asset routes and the security headers to ``app``."""
    app.on_response_prepare.append(add_security_headers)
    app.add_routes(Pages(dist).routes())
