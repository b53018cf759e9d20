"""bridge/web/src/crypto.js against tests/vectors/crypto.json, in headless Chromium.

The same known answers as tests/unit/test_crypto.py runs against bridge/crypto.py, so browser and
server agree byte for byte. The page runs under the pages' CSP (conftest.CSP).
"""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Browser

from browser_support import VectorSuite, assert_group_passed, run_page

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


@pytest.mark.parametrize("group", GROUPS)
async def test_vector_group_passes_in_browser(vector_suite: VectorSuite, group: str) -> None:
    assert_group_passed(await vector_suite("crypto"), group)


async def test_runner_reports_only_known_groups(vector_suite: VectorSuite) -> None:
    assert sorted((await vector_suite("crypto")).results.get("groups", {})) == sorted(GROUPS)


async def test_vector_page_logs_no_errors_and_no_csp_violations(vector_suite: VectorSuite) -> None:
    run = await vector_suite("crypto")
    assert run.log.console_errors == []
    assert run.log.page_errors == []
    assert run.results["violations"] == []


async def test_libsodium_needs_wasm_unsafe_eval(browser: Browser, server: str) -> None:
    """Without 'wasm-unsafe-eval' in script-src, libsodium cannot compile its WebAssembly."""
    run = await run_page(browser, f"{server}/no-wasm/vectors.html")
    assert "fatal" in run.results, json.dumps(run.results)[:500]
    assert "script-src: wasm-eval" in run.results["violations"], run.results
