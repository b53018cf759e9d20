"""The auditor's page in headless Chromium against a real bridge with a log in it.

A driegesprek fills the log; the page logs in as the auditor, verifies the signed checkpoint and
recomputes the tree head from every entry in the browser, and says "intact" with the same size
and root as ``GET /api/v1/audit/checkpoint``. Filtering by kind shows exactly the grants; an
entry's inclusion proof verifies; a wrong trusted key makes the checkpoint fail to verify. The
page is served by the bridge itself, built with ``make web``; nothing may leave its origin.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from nacl.signing import SigningKey
from playwright.async_api import expect

from bridge.edges.app import CORE
from browser_support import BrowserPage, Pages
from harness import Bridge, driegesprek, granted

ROOT = Path(__file__).parents[2]


@pytest_asyncio.fixture(loop_scope="session")
async def bridge(bridge: Bridge) -> Bridge:
    """The bridge of conftest, whose log holds a whole driegesprek."""
    await driegesprek(bridge)
    return bridge


async def audit_api(bridge: Bridge, path: str) -> Any:
    """``GET path`` as the auditor."""
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{bridge.url}/api/v1/session",
            json={"username": "auditor", "password": bridge.passwords["auditor"]},
        ) as response:
            token = (await response.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{bridge.url}{path}", headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_audit_page(pages: Pages, bridge: Bridge) -> None:
    auditor = await pages.open(
        BrowserPage, viewport={"width": 1280, "height": 900}, origin=bridge.url
    )
    page = auditor.page
    await page.goto(bridge.url + "/audit")
    await page.wait_for_selector("body[data-ready]", state="attached")
    await expect(page.locator("#login-title")).to_have_text("Inloggen")

    await page.locator("#login-username").fill("auditor")
    await page.locator("#login-password").fill(bridge.passwords["auditor"])
    await page.locator("#login-submit").click()
    await expect(page.locator("#view-audit")).to_be_visible()

    # The log key is shown for comparison with the one got out of band.
    key = await audit_api(bridge, "/api/v1/audit/log-key")
    await expect(page.locator("#key-ed25519")).to_have_text(key["ed25519"])
    await expect(page.locator("#key-id")).to_have_text(key["key_id"])

    # Intact, with the server's size and root (no entries were added since the driegesprek).
    verdict = page.locator("#verdict-box")
    await expect(verdict).to_have_attribute("data-intact", "true", timeout=30_000)
    await expect(page.locator("#verdict")).to_contain_text("Intact")
    checkpoint = await audit_api(bridge, "/api/v1/audit/checkpoint")
    await expect(page.locator("#cp-size")).to_have_text(str(checkpoint["size"]))
    await expect(page.locator("#cp-root")).to_have_text(checkpoint["root"])
    await expect(page.locator("#own-root")).to_have_text(checkpoint["root"])
    await expect(page.locator("#verdict-reasons li")).to_have_count(0)

    # The agreed rules, kept by an honest driegesprek.
    await expect(page.locator("#rules-box")).to_have_attribute("data-breaches", "0")
    await expect(page.locator("#rules-status")).to_have_text(
        f"Alle afspraken nageleefd, in alle {checkpoint['size']} regels van het logboek."
    )

    # Every entry is listed; filtering by kind shows exactly the grants.
    size = checkpoint["size"]
    listed = await audit_api(bridge, f"/api/v1/audit/entries?start=0&count={size}")
    await expect(page.locator("#entries-body tr")).to_have_count(size)
    grants = [e["index"] for e in listed["entries"] if e["entry"]["kind"] == "consent.granted"]
    assert grants
    await page.locator("#filter-kind").select_option("consent.granted")
    rows = page.locator("#entries-body tr")
    await expect(rows).to_have_count(len(grants))
    assert [int(i) for i in await rows.evaluate_all("rs => rs.map(r => r.dataset.index)")] == (
        grants
    )
    await expect(rows.first.locator("td.kind")).to_have_text("consent.granted")

    # Filtering by conversation as well.
    conversation = listed["entries"][grants[0]]["entry"]["conversation"]
    in_conversation = [
        e["index"] for e in listed["entries"] if e["entry"].get("conversation") == conversation
    ]
    await page.locator("#filter-kind").select_option("")
    await page.locator("#filter-conversation").fill(conversation)
    await expect(rows).to_have_count(len(in_conversation))
    await page.locator("#filter-kind").select_option("consent.granted")
    await expect(rows).to_have_count(len(grants))

    # The grant's inclusion proof verifies against the verified checkpoint.
    result = rows.first.locator(".inclusion-result")
    await rows.first.locator("button").click()
    await expect(result).to_have_attribute("data-ok", "true", timeout=15_000)
    await expect(result).to_have_text("Opgenomen onder het controlepunt.")

    # Every entry's inclusion proof verifies (proofs of every shape the log has).
    await page.locator("#filter-conversation").fill("")
    await page.locator("#filter-kind").select_option("")
    await expect(rows).to_have_count(size)
    for button in await rows.locator("button").all():
        await button.click()
    await expect(page.locator('.inclusion-result[data-ok="true"]')).to_have_count(
        size, timeout=30_000
    )

    # A trusted key other than the log's: the checkpoint does not verify.
    wrong = b64u(bytes(SigningKey.generate().verify_key))
    await page.locator("#trusted-key").fill(wrong)
    await page.locator("#verify-log").click()
    await expect(verdict).to_have_attribute("data-intact", "false", timeout=30_000)
    await expect(page.locator("#verdict")).to_contain_text("Niet intact")
    await expect(page.locator("#verdict-reasons")).to_contain_text(
        "De handtekening van het controlepunt klopt niet met de sleutel."
    )
    await expect(page.locator("#key-used")).to_have_text("uw vertrouwde sleutel")
    # And inclusion is then not shown against an unverified checkpoint.
    first = page.locator("#entries-body tr").first
    await first.locator("button").click()
    await expect(first.locator(".inclusion-result")).to_have_attribute("data-ok", "false")

    # The right key pasted: intact again.
    await page.locator("#trusted-key").fill(key["ed25519"])
    await page.locator("#verify-log").click()
    await expect(verdict).to_have_attribute("data-intact", "true", timeout=30_000)

    auditor.assert_clean()


async def logged_in_auditor(pages: Pages, bridge: Bridge) -> BrowserPage:
    auditor = await pages.open(
        BrowserPage, viewport={"width": 1280, "height": 900}, origin=bridge.url
    )
    page = auditor.page
    await page.goto(bridge.url + "/audit")
    await page.wait_for_selector("body[data-ready]", state="attached")
    await page.locator("#login-username").fill("auditor")
    await page.locator("#login-password").fill(bridge.passwords["auditor"])
    await page.locator("#login-submit").click()
    await expect(page.locator("#verdict-box")).to_have_attribute(
        "data-intact", "true", timeout=30_000
    )
    return auditor


async def test_audit_page_lists_each_breach_of_the_agreed_rules(
    pages: Pages, bridge: Bridge
) -> None:
    core = bridge.app[CORE]
    async with core.db.session() as session, session.begin():
        officer = {"role": "officer", "user_id": "someone"}
        joined = await core.log.append(
            session,
            "officer.joined",
            at=core.clock(),
            conversation_id="c-never-granted",
            actor=officer,
            request_id="r-never-asked",
            epoch_id="e-none",
        )
        unsigned = await core.log.append(
            session, "policy.changed", at=core.clock(), version="by-hand", serial=9, sha256="x"
        )
    auditor = await logged_in_auditor(pages, bridge)
    page = auditor.page
    await expect(page.locator("#rules-box")).to_have_attribute("data-breaches", "2", timeout=30_000)
    breaches = page.locator("#breaches li")
    await expect(breaches).to_have_count(2)
    assert await breaches.evaluate_all(
        "items => items.map(i => [i.dataset.rule, +i.dataset.index])"
    ) == [
        ["join-without-grant", joined],
        ["policy-not-signed-by-both", unsigned],
    ]
    await expect(breaches.first).to_contain_text(
        "Een agent deed mee zonder toestemming van het slachtoffer."
    )
    await expect(page.locator("#rules-status")).to_contain_text(
        "2 keer is een afspraak niet nageleefd"
    )
    # The page says it in English too.
    await page.locator("#lang-switch").click()
    await expect(breaches.first).to_contain_text(
        "An officer joined without the victim's consent.", timeout=30_000
    )
    auditor.assert_clean()


async def test_audit_page_shows_one_conversations_timeline_and_filters_by_region_and_time(
    pages: Pages, bridge: Bridge
) -> None:
    # A second conversation whose bridge asked for an officer of Noord-Holland.
    victim, _counsellor, _request = await granted(bridge, region="Noord-Holland")
    listed = (await audit_api(bridge, "/api/v1/audit/entries?start=0&count=1000"))["entries"]
    auditor = await logged_in_auditor(pages, bridge)
    page = auditor.page

    # The timeline: that conversation's consent steps, in order, in plain words.
    first = next(
        e["entry"]["conversation"] for e in listed if e["entry"]["kind"] == "officer.joined"
    )
    await expect(page.locator("#timeline-box")).to_be_hidden()
    await page.locator("#filter-conversation").fill(first)
    steps = page.locator("#timeline li")
    await expect(page.locator("#timeline-box")).to_be_visible()
    kinds = await steps.evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds[:1] == ["conversation.started"]
    assert kinds.index("consent.requested") < kinds.index("consent.granted")
    assert kinds.index("consent.granted") < kinds.index("officer.joined")
    granted_step = steps.nth(kinds.index("consent.granted"))
    await expect(granted_step).to_contain_text(
        "Het slachtoffer gaf toestemming, na tekst informational-nl-1."
    )
    await expect(granted_step).to_contain_text("Notitie over communicatie delen: ja.")

    # By region: only the second conversation's entries.
    await page.locator("#filter-conversation").fill("")
    await expect(page.locator("#timeline-box")).to_be_hidden()
    await page.locator("#filter-region").select_option("Noord-Holland")
    rows = page.locator("#entries-body tr")
    in_region = [e for e in listed if e["entry"].get("conversation") == victim.conversation_id]
    await expect(rows).to_have_count(len(in_region))
    # By time: nothing before the log began.
    await page.locator("#filter-region").select_option("")
    await page.locator("#filter-to").fill("2001-01-01T00:00")
    await page.locator("#filter-to").dispatch_event("change")
    await expect(rows).to_have_count(0)
    await expect(page.locator("#entries-count")).to_have_text(f"0 van {len(listed)} regels")
    auditor.assert_clean()


async def test_audit_page_draws_a_large_log_a_page_at_a_time(pages: Pages, bridge: Bridge) -> None:
    core = bridge.app[CORE]
    async with core.db.session() as session, session.begin():
        for n in range(250):
            await core.log.append(
                session, "org_key.fetched", at=core.clock(), org="fier", key_id=f"fier-{n}"
            )
    size = (await audit_api(bridge, "/api/v1/audit/checkpoint"))["size"]
    auditor = await logged_in_auditor(pages, bridge)
    page = auditor.page
    rows = page.locator("#entries-body tr")
    await expect(rows).to_have_count(200)
    await expect(page.locator("#entries-count")).to_have_text(f"{size} van {size} regels")
    await page.locator("#entries-more").click()
    await expect(rows).to_have_count(size)
    await expect(page.locator("#entries-more")).to_be_hidden()
    auditor.assert_clean()
