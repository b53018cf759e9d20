"""bridge/web/src/crypto.js against tests/vectors/crypto.json, in headless Chromium.

The same known answers as tests/unit/test_crypto.py runs against bridge/crypto.py, so browser and
server agree byte for byte. The page runs under the pages' CSP (conftest.CSP).
"""

from __future__ import annotations

import json

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from browser_support import PageRun, run_page

# Every group the runner (tests/browser/vectors.js) reports; each must run and pass.
GROUPS = [
    "b64u",
    "b64u_strict",
    "jcs",
    "jcs_strict",
    "keys",
    "device_register",
    "envelope",
    "signed_grant",
    "sealed_org_key",
    "round_trip",
]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vector_run(browser: Browser, server: str) -> PageRun:
    return await run_page(browser, f"{server}/app/vectors.html")


@pytest.mark.parametrize("group", GROUPS)
async def test_vector_group_passes_in_browser(vector_run: PageRun, group: str) -> None:
    results = vector_run.results
    assert "fatal" not in results, f"the runner stopped: {results['fatal']}"
    assert group in results["groups"], f"the runner reported no {group!r} group"
    outcome = results["groups"][group]
    failed = "\n".join(f"  {f['vector']}: {f['error']}" for f in outcome["failed"])
    assert not outcome["failed"], f"{group}: failing vectors:\n{failed}"
    assert outcome["passed"], f"{group}: no vector ran"


async def test_runner_reports_only_known_groups(vector_run: PageRun) -> None:
    assert sorted(vector_run.results.get("groups", {})) == sorted(GROUPS)


async def test_vector_page_logs_no_errors_and_no_csp_violations(vector_run: PageRun) -> None:
    log = vector_run.log
    assert log.console_errors == []
    assert log.page_errors == []
    assert vector_run.results["violations"] == []


async def test_libsodium_needs_wasm_unsafe_eval(browser: Browser, server: str) -> None:
    """Without 'wasm-unsafe-eval' in script-src, libsodium cannot compile its WebAssembly."""
    run = await run_page(browser, f"{server}/no-wasm/vectors.html")
    assert "fatal" in run.results, json.dumps(run.results)[:500]
    assert "script-src: wasm-eval" in run.results["violations"], run.results
