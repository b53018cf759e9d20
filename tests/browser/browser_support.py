"""Helpers shared by the browser tests: pages in their own browser contexts, and the vector runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Route,
    ViewportSize,
)

# What a request that would leave the origin gets instead: nothing leaves the machine.
STAND_IN = "<p>elders</p>"


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
class BrowserPage:
    """A page in a browser context of its own, its log, and the off-origin URLs it asked for."""

    context: BrowserContext
    page: Page
    log: PageLog
    elsewhere: list[str] = field(default_factory=list)

    def message(self, text: str) -> Locator:
        return self.page.locator("#messages li.message", has_text=text)

    def assert_clean(self) -> None:
        """No console error, no uncaught exception, no request off the origin."""
        assert self.log.console_errors == []
        assert self.log.page_errors == []
        assert self.elsewhere == []


P = TypeVar("P", bound=BrowserPage)


class Pages:
    """Opens pages, each in a fresh browser context, and closes them all in ``close``."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.opened: list[BrowserPage] = []

    async def open(
        self,
        kind: type[P],
        *,
        viewport: ViewportSize | None = None,
        origin: str | None = None,
    ) -> P:
        """A blank page logging from the start. With ``origin``, a request for anywhere else is
        answered in the browser with a stand-in page and recorded in ``elsewhere``."""
        if viewport is None:
            context = await self.browser.new_context()
        else:
            context = await self.browser.new_context(viewport=viewport)
        page = await context.new_page()
        log = PageLog()
        page.on("console", log.on_console)
        page.on("pageerror", log.on_page_error)
        opened = kind(context, page, log)
        self.opened.append(opened)
        if origin is not None:

            async def off_origin(route: Route) -> None:
                url = route.request.url
                if url.startswith(origin + "/"):
                    await route.continue_()
                else:
                    opened.elsewhere.append(url)
                    await route.fulfill(status=200, content_type="text/html", body=STAND_IN)

            await context.route("**/*", off_origin)
        return opened

    async def close(self) -> None:
        for opened in self.opened:
            await opened.context.close()
        self.opened.clear()


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
    pages = Pages(browser)
    try:
        opened = await pages.open(BrowserPage)
        await opened.page.goto(url)
        await opened.page.wait_for_selector("body[data-done]", state="attached", timeout=timeout_ms)
        return PageRun(await opened.page.evaluate("window.__results"), opened.log)
    finally:
        await pages.close()
