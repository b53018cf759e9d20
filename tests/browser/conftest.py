"""Browser tests: headless Debian Chromium driven by Playwright, pages served on 127.0.0.1.

Playwright's own browser downloads are not used: the tests launch the system ``chromium``, which
``make test`` installs. Without it they fail (never skip) and name the install command.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, async_playwright

from bridge.edges.pages import CSP
from browser_support import PageRun, Pages, VectorSuite, run_page
from harness import Bridge

ROOT = Path(__file__).parents[2]
WEB = ROOT / "bridge" / "web"
VECTORS = ROOT / "tests" / "vectors"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_INSTALL = "apt-get install -y --no-install-recommends chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The pages' own policy (no inline script, no eval; 'wasm-unsafe-eval' only lets libsodium compile
# its WebAssembly module), and the same without 'wasm-unsafe-eval', to show that it is needed.
CSP_WITHOUT_WASM = CSP.replace(" 'wasm-unsafe-eval'", "")
POLICIES = {"app": CSP, "no-wasm": CSP_WITHOUT_WASM}
PAGES = ("victim", "counsellor", "officer", "audit")


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """``bridge/web/dist`` as ``make web`` builds it from the current sources: all four pages."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is missing: install it (apt-get install -y make)")
    built = subprocess.run([make, "web"], cwd=ROOT, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        pytest.fail(f"make web failed:\n{built.stdout}{built.stderr}")
    dist = WEB / "dist"
    for page in PAGES:
        for name in (f"{page}.html", f"{page}.js"):
            if not (dist / name).is_file():
                pytest.fail(f"make web did not produce dist/{name}")
    return dist


@pytest_asyncio.fixture(loop_scope="session")
async def bridge(tmp_path: Path, web_dist: Path) -> AsyncIterator[Bridge]:
    """A bridge serving the built pages, with org keys, a counsellor, an officer (Noord-Holland,
    female) and an auditor."""
    server = Bridge(tmp_path / "data")
    await server.start()
    try:
        await server.init_orgs()
        await server.add_user("counsellor", "counsellor", "fier")
        await server.add_user("officer", "officer", "avim", region="Noord-Holland", gender="female")
        await server.add_user("auditor", "auditor", "audit")
        yield server
    finally:
        await server.close_clients()
        await server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this directory's tests on one event loop, shared with the browser and the server."""
    here = Path(__file__).parent
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(marker, append=False)


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/browser/*.js bundled with the front-end sources (kept out of bridge/web/dist)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: install Node.js and npm (apt-get install -y nodejs npm)")
    if not (WEB / "node_modules").is_dir():
        pytest.fail("bridge/web/node_modules is missing: run `make test` or `npm ci` in bridge/web")
    out = tmp_path_factory.mktemp("browser-bundle")
    built = subprocess.run(
        [node, str(WEB / "build.mjs"), "--tests", str(out)],
        cwd=WEB,
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"bundling tests/browser failed:\n{built.stdout}{built.stderr}")
    return out


@pytest.fixture(scope="session")
def site_files(bundle: Path) -> dict[str, Path]:
    """What the test server serves, by URL path: the bundle and every ``tests/vectors`` JSON file
    as ``vectors/PATH`` (``vectors/index.json`` lists those paths)."""
    files = {p.name: p for p in bundle.iterdir()}
    for path in VECTORS.rglob("*.json"):
        files[f"vectors/{path.relative_to(VECTORS).as_posix()}"] = path
    return files


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server(site_files: dict[str, Path]) -> AsyncIterator[str]:
    """Serves ``/{policy}/NAME`` from ``site_files`` under that policy's CSP; yields its URL."""
    files = site_files

    index = sorted(name.removeprefix("vectors/") for name in files if name.startswith("vectors/"))

    async def handle(request: web.Request) -> web.StreamResponse:
        policy, name = request.match_info["policy"], request.match_info["name"]
        if policy not in POLICIES or (name not in files and name != "vectors/index.json"):
            raise web.HTTPNotFound()
        if name in files:
            response: web.StreamResponse = web.FileResponse(files[name])
        else:
            response = web.json_response(index)
        response.headers["Content-Security-Policy"] = POLICIES[policy]
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def no_favicon(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/favicon.ico", no_favicon)
    app.router.add_get("/{policy}/{name:.+}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The system Chromium; a failure, never a skip, when it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install it with `{CHROMIUM_INSTALL}` "
            "(`make test` does so when run as root)"
        )
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Debian's headless Chromium."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def pages(browser: Browser) -> AsyncIterator[Pages]:
    """Opens each test's pages in browser contexts of their own; closes them after the test."""
    opened = Pages(browser)
    try:
        yield opened
    finally:
        await opened.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vector_suite(browser: Browser, server: str) -> VectorSuite:
    """Runs ``vectors.html?suite=NAME`` under the pages' CSP, once per suite and session."""
    runs: dict[str, PageRun] = {}

    async def run(suite: str) -> PageRun:
        if suite not in runs:
            runs[suite] = await run_page(browser, f"{server}/app/vectors.html?suite={suite}")
        return runs[suite]

    return run
