"""The victim's page in headless Chromium against a real bridge, with Python staff clients.

The page is served by the bridge itself (``bridge/pages.py``), under its real headers. Every
request that would leave the bridge's origin is answered inside the browser and recorded: none may
happen except the quick exit's navigation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from bridge.client import SupervisorClient
from bridge.edges.pages import CSP, PAGES
from browser_support import BrowserPage, Pages
from harness import Bridge

WEB = Path(__file__).parents[2] / "bridge" / "web"
EXIT_URL = "https://www.google.com/search?q=weer"
HEADERS = {
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class Victim(BrowserPage):
    async def storage(self) -> dict[str, object]:
        return dict(
            await self.page.evaluate(
                """async () => ({
                    session: Object.keys(sessionStorage),
                    local: Object.keys(localStorage),
                    cookie: document.cookie,
                    idb: (await indexedDB.databases()).map((d) => d.name),
                })"""
            )
        )

    async def conversation_id(self) -> str:
        return str(
            await self.page.evaluate("JSON.parse(sessionStorage.getItem('chat')).conversation_id")
        )

    async def send(self, text: str, *, care_only: bool = False) -> None:
        care = self.page.get_by_label("Alleen voor mijn hulpverlener")
        await care.set_checked(care_only)
        await self.page.get_by_label("Je bericht").fill(text)
        await self.page.get_by_role("button", name="Verstuur").click()
        await expect(self.page.get_by_label("Je bericht")).to_have_value("")


@pytest_asyncio.fixture(loop_scope="session")
async def victim(pages: Pages, bridge: Bridge) -> Victim:
    return await pages.open(Victim, viewport={"width": 360, "height": 740}, origin=bridge.url)


async def start_chat(victim: Victim, url: str) -> None:
    page = victim.page
    await page.goto(url + "/")
    await page.get_by_role("button", name="Nederlands").click()
    await page.get_by_role("button", name="Begin een chat").click()
    await expect(page.locator("#view-chat")).to_be_visible()
    await expect(page.locator("#compose")).to_be_visible()


async def test_victim_counsellor_and_officer_talk_across_browser_and_python(
    victim: Victim, bridge: Bridge
) -> None:
    page = victim.page
    await start_chat(victim, bridge.url)
    conversation_id = await victim.conversation_id()
    assert await page.evaluate("document.documentElement.lang") == "nl"
    assert await page.evaluate("document.documentElement.dir") == "ltr"

    counsellor = await bridge.counsellor()
    await counsellor.join(conversation_id)
    await expect(page.locator("#who")).to_contain_text("je hulpverlener")
    await victim.send("Hallo, ik wil iets vragen")
    got = await counsellor.next_event("message", where=lambda e: e["sender_role"] == "victim")
    assert got["verified"] and got["text"] == "Hallo, ik wil iets vragen"
    assert got["audience"] == ["care"]
    await counsellor.send(conversation_id, "Welkom, ik ben er")
    await expect(victim.message("Welkom, ik ben er")).to_have_count(1)

    # A reload in the same tab resumes the chat, each message shown once.
    await page.reload()
    await expect(victim.message("Welkom, ik ben er")).to_have_count(1)
    await expect(victim.message("Hallo, ik wil iets vragen")).to_have_count(1)

    officer = await bridge.officer()
    await counsellor.propose(conversation_id, "informational")
    consent = page.locator("#view-consent")
    await expect(consent).to_be_visible()
    await expect(consent.get_by_role("heading", name="Wie komt erbij?").first).to_be_visible()
    await expect(consent.locator("#consent-text li").first).to_be_visible()
    assert await consent.locator("#consent-text script, #consent-text [onclick]").count() == 0
    for box in ("#choice-needs-note", "#choice-case-file"):
        await expect(page.locator(box)).not_to_be_checked()
    yes, no = (
        page.get_by_role("button", name="Ja", exact=True),
        page.get_by_role("button", name="Nee", exact=True),
    )
    assert await yes.get_attribute("class") == await no.get_attribute("class")
    await yes.click()
    await expect(consent).to_be_hidden()

    invite = await officer.next_event("invite", timeout=10)
    await officer.accept(invite["invite_id"])
    await counsellor.next_event("bridge.state", where=lambda e: e["state"] == "joined")
    banner = page.locator("#police-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Politie (AVIM) leest mee sinds")
    await expect(page.locator("#who")).to_contain_text("politie")

    await victim.send("Dit mag de agent ook lezen")
    seen = await officer.next_event("message", where=lambda e: e["sender_role"] == "victim")
    assert seen["verified"] and seen["text"] == "Dit mag de agent ook lezen"
    assert seen["audience"] == ["care", "investigation"]

    await officer.send(conversation_id, "Goedemiddag, ik ben van AVIM")
    from_officer = victim.message("Goedemiddag, ik ben van AVIM")
    await expect(from_officer).to_have_count(1)
    assert await from_officer.get_attribute("data-sender") == "officer"

    await victim.send("Alleen voor jou, hulpverlener", care_only=True)
    private = await counsellor.next_event(
        "message", where=lambda e: e["text"] == "Alleen voor jou, hulpverlener"
    )
    assert private["audience"] == ["care"]
    shown = victim.message("Alleen voor jou, hulpverlener")
    await expect(shown).to_have_attribute("data-audience", "care")
    await expect(shown).to_contain_text("Alleen voor je hulpverlener")
    await victim.send("En dit weer voor iedereen")
    await officer.next_event("message", where=lambda e: e["text"] == "En dit weer voor iedereen")
    officer_seqs = {e["seq"] for name, e in officer.received if name == "message"}
    assert private["seq"] not in officer_seqs
    assert all(e.get("text") != "Alleen voor jou, hulpverlener" for _, e in officer.received)

    # One tap pauses, one tap resumes; the banner says which.
    await page.get_by_role("button", name="Pauze").click()
    await officer.next_event("bridge.state", where=lambda e: e["state"] == "paused")
    await expect(banner).to_contain_text("gepauzeerd")
    await expect(
        page.locator(
            "#messages li.notice", has_text="Je hebt het gesprek met de politie gepauzeerd"
        )
    ).to_have_count(1)
    await page.get_by_role("button", name="Verder met de politie").click()
    await officer.next_event("bridge.state", where=lambda e: e["state"] == "joined")
    await expect(banner).to_contain_text("Politie (AVIM) leest mee sinds")

    await page.get_by_role("button", name="Stop met de politie").click()
    ended = await officer.next_event("bridge.state", where=lambda e: e["state"] == "ended")
    assert ended["reason"] == "withdrawn"
    await expect(banner).to_be_hidden()
    stopped = page.locator(
        "#messages li.notice", has_text="Je hebt het gesprek met de politie gestopt"
    )
    await expect(stopped).to_have_count(1)

    # Closing the chat asks once more, then closes it for everyone.
    await page.get_by_role("button", name="Chat afsluiten").click()
    await page.get_by_role("button", name="Ja, sluit de chat").click()
    await counsellor.next_event("conversation.closed")
    await expect(page.locator("#compose")).to_be_hidden()
    await expect(page.get_by_role("button", name="Begin een nieuwe chat")).to_be_visible()

    storage = await victim.storage()
    assert storage == {"session": ["chat"], "local": [], "cookie": "", "idb": []}
    victim.assert_clean()


async def test_the_victim_is_told_when_the_counsellor_had_to_act_under_the_meldcode(
    victim: Victim, bridge: Bridge
) -> None:
    await start_chat(victim, bridge.url)
    conversation_id = await victim.conversation_id()
    counsellor = await bridge.counsellor()
    await counsellor.join(conversation_id)
    await expect(victim.page.locator("#who")).to_contain_text("je hulpverlener")
    await bridge.add_user("supervisor", "supervisor", "fier")
    boss = await SupervisorClient.login(bridge.url, "supervisor", bridge.passwords["supervisor"])
    bridge.clients.append(boss)
    await boss.connect()
    await boss.approve(await counsellor.request_breakglass(conversation_id, "minor_at_risk"))
    told = victim.page.locator(
        "#messages li.notice", has_text="Je hulpverlener heeft iets gemeld, omdat de meldcode"
    )
    await expect(told).to_have_count(1)
    victim.assert_clean()


@pytest.mark.parametrize("how", ["button", "escape"])
async def test_quick_exit_leaves_no_way_back_and_no_storage(
    victim: Victim, bridge: Bridge, how: str
) -> None:
    page = victim.page
    await page.goto(bridge.url + "/healthz")  # page A
    await start_chat(victim, bridge.url)
    conversation_id = await victim.conversation_id()
    counsellor = await bridge.counsellor()
    await counsellor.join(conversation_id)
    await counsellor.propose(conversation_id, "informational")
    await expect(page.locator("#view-consent")).to_be_visible()
    length = await page.evaluate("history.length")

    if how == "button":
        await page.get_by_role("button", name="Snel weg").click()
    else:
        await page.keyboard.press("Escape")
    await page.wait_for_url(EXIT_URL)
    assert victim.elsewhere == [EXIT_URL]
    assert await page.evaluate("history.length") == length  # replaced, not added

    await page.go_back()
    assert page.url == bridge.url + "/healthz"
    storage = await victim.storage()
    assert storage == {"session": [], "local": [], "cookie": "", "idb": []}

    # Leaving answered nothing: the question still waits (or waited) for the victim.
    await asyncio.sleep(0.3)
    states = [e["state"] for name, e in counsellor.received if name == "bridge.state"]
    assert "declined" not in states and "granted" not in states
    assert victim.log.console_errors == []
    assert victim.log.page_errors == []


async def test_security_headers_on_pages_assets_and_api(bridge: Bridge, web_dist: Path) -> None:
    async with aiohttp.ClientSession() as http:

        async def get(path: str) -> tuple[int, dict[str, str], bytes]:
            async with http.get(bridge.url + path) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                return response.status, headers, await response.read()

        for path in ("/", "/assets/victim.js", "/assets/victim.css", "/api/v1/orgs/fier/key"):
            status, headers, _ = await get(path)
            assert status == 200, path
            for name, value in HEADERS.items():
                assert headers.get(name) == value, (path, name)
            assert headers.get("cache-control") == "no-store", path

        status, headers, body = await get("/")
        assert headers["content-type"].startswith("text/html")
        assert b'<script type="module" src="/assets/victim.js">' in body
        assert b"<style" not in body and b" style=" not in body and b"on" + b"click" not in body
        assert (await get("/assets/victim.js"))[1]["content-type"].startswith("text/javascript")
        assert (await get("/assets/victim.css"))[1]["content-type"].startswith("text/css")

        # Unknown assets, directories, other file types and traversal: not_found, with headers.
        # The staff pages: served once built, not_found before; never cached.
        for path, name in PAGES.items():
            status, headers, body = await get(path)
            if (web_dist / name).is_file():
                assert status == 200, path
                assert headers["content-type"].startswith("text/html"), path
            else:
                assert status == 404 and b"not_found" in body, path
            assert headers.get("cache-control") == "no-store", path
            assert headers.get("content-security-policy") == CSP, path

        for path in (
            "/assets/",
            "/assets/missing.js",
            "/assets/manifest.json",
            "/assets/victim.html",
            "/assets/%2e%2e/pages.py",
            "/assets/..%2f..%2fpyproject.toml",
            "/assets/.hidden.js",
        ):
            status, headers, body = await get(path)
            assert status == 404, path
            assert b"not_found" in body, path
            assert headers.get("content-security-policy") == CSP, path


AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"


async def axe_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2 A/AA violations of what is on screen now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())
    found = await page.evaluate(
        """async () => {
            const tags = ["wcag2a", "wcag2aa", "wcag21aa"];
            const result = await axe.run(document, {runOnly: tags});
            return result.violations.map(
                (v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`
            );
        }"""
    )
    return [str(v) for v in found]


async def test_every_view_is_accessible_at_360_px(victim: Victim, bridge: Bridge) -> None:
    page = victim.page
    await page.goto(bridge.url + "/")
    await expect(page.locator("#view-language")).to_be_visible()
    await page.keyboard.press("Tab")  # the way out comes first
    assert await page.evaluate("document.activeElement.id") == "quick-exit"
    assert await axe_violations(page) == []

    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("button", name="Start a chat")).to_be_visible()
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert await axe_violations(page) == []

    await page.get_by_role("button", name="Start a chat").click()
    await expect(page.locator("#compose")).to_be_visible()
    assert await axe_violations(page) == []

    counsellor = await bridge.counsellor()
    await counsellor.join(await victim.conversation_id())
    await counsellor.propose(await victim.conversation_id(), "informational")
    await expect(page.locator("#view-consent")).to_be_visible()
    await expect(page.locator("#consent-text ol li")).to_have_count(2)
    assert await axe_violations(page) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    assert victim.elsewhere == []
