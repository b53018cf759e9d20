"""Helpers shared by the browser tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, ConsoleMessage


@dataclass
class PageLog:
    """What a page said on its console and what it threw."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def on_page_error(self, error: Exception) -> None:
        self.page_errors.append(str(error))


@dataclass
class PageRun:
    """A page's ``window.__results`` once it set ``<body data-done>``, and its log."""

    results: dict[str, Any]
    log: PageLog


VectorSuite = Callable[[str], Awaitable[PageRun]]
"""The ``vector_suite`` fixture: the run of ``vectors.html?suite=NAME``."""


def assert_group_passed(run: PageRun, group: str) -> None:
    """The vector runner ran ``group`` of its suite, and every vector in it passed."""
    results = run.results
    assert "fatal" not in results, f"the runner stopped: {results['fatal']}"
    assert group in results["groups"], f"the runner reported no {group!r} group"
    outcome = results["groups"][group]
    failed = "\n".join(f"  {f['vector']}: {f['error']}" for f in outcome["failed"])
    assert not outcome["failed"], f"{group}: failing vectors:\n{failed}"
    assert outcome["passed"], f"{group}: no vector ran"


async def run_page(browser: Browser, url: str, timeout_ms: float = 120_000) -> PageRun:
    """Open ``url`` in a fresh context, logging from the start, and wait for it to finish."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        log = PageLog()
        page.on("console", log.on_console)
        page.on("pageerror", log.on_page_error)
        await page.goto(url)
        await page.wait_for_selector("body[data-done]", state="attached", timeout=timeout_ms)
        return PageRun(await page.evaluate("window.__results"), log)
    finally:
        await context.close()
