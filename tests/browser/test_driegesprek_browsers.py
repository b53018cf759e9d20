"""A whole driegesprek in three browsers: the victim's, the counsellor's and the officer's page.

The victim starts a chat, the counsellor picks it up and proposes, the victim consents on the
consent screen, the officer accepts; messages flow every way and decrypt on all three pages, a
care-only message reaches the counsellor's page marked and never the officer's, and the victim's
stop shows on the officer's page within a second. On the way, axe-core checks every view against
WCAG 2.1 AA (no serious or critical violation), and each page is photographed at phone and
desktop size into ``docs/screenshots/``. The auditor's page then reads the log the flow wrote.
Pages are served by the bridge itself, built with ``make web``; nothing may leave its origin.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page, expect
from test_staff_pages import (
    care_only_passes_the_officer_by,
    log_in,
    new_staff_page,
    unlock,
    victim_writes_to_both,
)
from test_victim_page import AXE, Victim

from browser_support import Pages
from harness import Bridge

ROOT = Path(__file__).parents[2]
SHOTS = ROOT / "docs" / "screenshots"
REGION = "Noord-Holland"
PHONE = {"width": 360, "height": 800}
DESKTOP = {"width": 1280, "height": 800}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def new_victim(pages: Pages, bridge: Bridge) -> Victim:
    """A phone-sized victim context on the bridge's page; off-origin requests are answered here."""
    victim = await pages.open(Victim, viewport=PHONE, origin=bridge.url)
    await victim.page.goto(bridge.url + "/")
    await expect(victim.page.locator("#view-language")).to_be_visible()
    return victim


async def serious_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations of impact serious or critical, on screen now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())
    found = await page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: tags});
            return result.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target).join(", ")}`);
        }""",
        AXE_TAGS,
    )
    return [str(v) for v in found]


async def assert_accessible(page: Page, view: str) -> None:
    violations = await serious_violations(page)
    assert violations == [], f"{view}: {violations}"


async def switch_language(page: Page, lang: str) -> None:
    """Press the page's language switch; it names the other language, in that language."""
    name = "English" if lang == "en" else "Nederlands"
    await page.locator("#lang-switch").get_by_text(name, exact=True).click()
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    await expect(page.locator("#lang-switch")).to_have_attribute(
        "lang", "nl" if lang == "en" else "en"
    )


async def shoot(page: Page, name: str) -> None:
    """Save the top of the page as ``docs/screenshots/{name}-{phone,desktop}.png``; restore size."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    for size in ("phone", "desktop"):
        await page.set_viewport_size(PHONE if size == "phone" else DESKTOP)
        await page.evaluate(
            "() => { window.scrollTo(0, 0); return new Promise((r) => requestAnimationFrame(r)); }"
        )
        await page.screenshot(path=SHOTS / f"{name}-{size}.png")
    if before is not None:
        await page.set_viewport_size(before)


def assert_pngs(names: list[str]) -> None:
    for name in names:
        path = SHOTS / name
        assert path.is_file(), name
        data = path.read_bytes()
        assert len(data) > len(PNG_MAGIC) and data.startswith(PNG_MAGIC), name


async def accessible_and_shot(page: Page, view: str, name: str) -> None:
    """The page as it is now: accessible (``view`` names it), and photographed as ``name``."""
    await assert_accessible(page, view)
    await shoot(page, name)


async def test_driegesprek_in_three_browsers(pages: Pages, bridge: Bridge) -> None:
    victim = await new_victim(pages, bridge)
    counsellor = await new_staff_page(pages, bridge, "/counsellor")
    officer = await new_staff_page(pages, bridge, "/officer")
    auditor = await new_staff_page(pages, bridge, "/audit")
    v, c, o, a = victim.page, counsellor.page, officer.page, auditor.page
    for staff in (counsellor, officer, auditor):
        await staff.page.set_viewport_size(DESKTOP)

    # The victim chooses Dutch and starts a chat.
    await assert_accessible(v, "victim language")
    await v.get_by_role("button", name="Nederlands").click()
    await expect(v.get_by_role("button", name="Begin een chat")).to_be_visible()
    await assert_accessible(v, "victim start")
    await v.get_by_role("button", name="Begin een chat").click()
    await expect(v.locator("#compose")).to_be_visible()
    await assert_accessible(v, "victim chat")
    conversation_id = await victim.conversation_id()

    # The staff log in and unlock, in the browser.
    logins = ((counsellor, "counsellor", "fier"), (officer, "officer", "avim"))
    for staff, username, org in logins:
        page = staff.page
        await assert_accessible(page, f"{username} login")
        await log_in(page, username, bridge.passwords[username])
        await expect(page.locator("#view-unlock")).to_be_visible()
        await assert_accessible(page, f"{username} unlock")
        await unlock(page, bridge.passphrases[org])
        await expect(page.locator("#conn-status")).to_have_text("Verbonden.", timeout=15_000)
        await assert_accessible(page, f"{username} console")

    # The counsellor picks the chat up and writes; the victim's page decrypts it.
    item = c.locator(f'#queue li[data-conversation="{conversation_id}"]')
    await item.get_by_role("button", name="Open gesprek").click(timeout=10_000)
    await expect(c.locator("#conv")).to_be_visible()
    await counsellor.send("Fijn dat je er bent.")
    await expect(victim.message("Fijn dat je er bent.")).to_have_count(1)
    await expect(v.locator("#who")).to_contain_text("je hulpverlener")
    await victim.send("Hallo, ik wil aangifte doen.")
    await expect(counsellor.message("Hallo, ik wil aangifte doen.")).to_be_visible()
    await assert_accessible(c, "counsellor conversation")

    # The counsellor proposes; the victim consents on the consent screen.
    await c.locator("#purpose-report").check()
    await c.locator("#propose-gender").select_option("female")
    await c.locator("#propose-region").fill(REGION)
    await c.locator("#propose-submit").click()
    consent = v.locator("#view-consent")
    await expect(consent).to_be_visible()
    await expect(consent.locator("#consent-text li").first).to_be_visible()
    await expect(c.locator("#bridge-state")).to_contain_text("wacht op antwoord")
    await accessible_and_shot(v, "victim consent", "victim-consent-nl")
    await v.get_by_role("button", name="Ja", exact=True).click()
    await expect(consent).to_be_hidden()
    await expect(c.locator("#bridge-state")).to_contain_text("toestemming gegeven")

    # The officer sees the invite, without content, and accepts it.
    invite = o.locator("#invites li.invite")
    await expect(invite).to_have_count(1, timeout=10_000)
    await expect(invite).to_contain_text("Doel: Aangifte")
    assert "Fijn dat je er bent" not in await o.locator("body").inner_text()
    await assert_accessible(o, "officer invites")
    await invite.get_by_role("button", name="Accepteer").click()
    await expect(o.locator("#view-chat")).to_be_visible()
    await expect(o.locator("#scope-since")).to_contain_text("U ziet berichten vanaf")
    banner = v.locator("#police-banner")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Politie (AVIM) leest mee sinds")
    await expect(c.locator("#police-indicator")).to_contain_text("Politie leest mee vanaf")

    # Messages every way; each decrypts on the other two pages.
    await victim_writes_to_both(victim, counsellor, officer)
    await counsellor.send("Welkom, de agent leest nu mee.")
    await expect(victim.message("Welkom, de agent leest nu mee.")).to_have_count(1)
    await expect(officer.message("Welkom, de agent leest nu mee.")).to_be_visible()
    await officer.send("Goedemiddag, ik ben van AVIM.")
    from_officer = victim.message("Goedemiddag, ik ben van AVIM.")
    await expect(from_officer).to_have_count(1)
    await expect(from_officer).to_have_attribute("data-sender", "officer")
    await expect(counsellor.message("Goedemiddag, ik ben van AVIM.")).to_be_visible()
    await expect(officer.message("Goedemiddag, ik ben van AVIM.")).to_have_class(
        re.compile(r"\bown\b")
    )

    # Care-only: marked on the counsellor's page, never on the officer's.
    await care_only_passes_the_officer_by(victim, counsellor, officer)
    shown = victim.message("Dit is alleen voor jou.")
    await expect(shown).to_have_attribute("data-audience", "care")

    # Each page mid-conversation: accessible, and photographed.
    await accessible_and_shot(v, "victim chat with police", "victim-chat-nl")
    await accessible_and_shot(c, "counsellor chat with police", "counsellor-chat-nl")
    await accessible_and_shot(o, "officer chat", "officer-chat-nl")

    # The staff pages in English: checked and photographed, then back to Dutch.
    await switch_language(c, "en")
    await expect(c.locator("#bridge-state")).to_contain_text("officer in the conversation")
    await expect(
        counsellor.message("Dit is alleen voor jou.").locator(".message-mark")
    ).to_have_text(re.compile(r"^Care only"))
    await switch_language(o, "en")
    await expect(o.locator("#scope-since")).to_contain_text("You see messages from")
    await accessible_and_shot(c, "counsellor chat with police (en)", "counsellor-chat-en")
    await accessible_and_shot(o, "officer chat (en)", "officer-chat-en")
    await switch_language(c, "nl")
    await switch_language(o, "nl")
    await expect(c.locator("#bridge-state")).to_contain_text("agent is in het gesprek")

    # The victim taps stop: the officer's page shows the removal within a second.
    await v.get_by_role("button", name="Stop met de politie").click()
    state = o.locator("#officer-state")
    await expect(state).to_be_visible(timeout=1000)
    await expect(state).to_contain_text("De cliënt heeft de toestemming ingetrokken")
    await expect(o.locator("#compose")).to_be_hidden()
    await expect(banner).to_be_hidden()
    await expect(c.locator("#police-indicator")).to_have_text("Geen politie in dit gesprek.")
    await assert_accessible(o, "officer removed")
    await assert_accessible(v, "victim after stop")

    # The auditor's page reads the log this flow wrote.
    await assert_accessible(a, "audit login")
    await a.locator("#login-username").fill("auditor")
    await a.locator("#login-password").fill(bridge.passwords["auditor"])
    await a.locator("#login-submit").click()
    await expect(a.locator("#view-audit")).to_be_visible()
    await expect(a.locator("#verdict-box")).to_have_attribute("data-intact", "true", timeout=30_000)
    await accessible_and_shot(a, "audit verdict", "audit-nl")
    await switch_language(a, "en")
    await expect(a.locator("#audit-title")).to_have_text("Log audit")
    await expect(a.locator("#verdict")).to_have_text(
        re.compile(r"^Intact: the log"), timeout=30_000
    )
    await expect(a.locator("#verdict-box")).to_have_attribute("data-intact", "true")
    await accessible_and_shot(a, "audit verdict (en)", "audit-en")

    assert_pngs(
        [
            f"{name}-nl-{size}.png"
            for name in ("victim-consent", "victim-chat", "counsellor-chat", "officer-chat")
            for size in ("phone", "desktop")
        ]
        + [
            f"{name}-en-{size}.png"
            for name in ("counsellor-chat", "officer-chat", "audit")
            for size in ("phone", "desktop")
        ]
        + ["audit-nl-phone.png", "audit-nl-desktop.png"]
    )
    for party in (victim, counsellor, officer, auditor):
        party.assert_clean()


async def test_victim_page_in_english(pages: Pages, bridge: Bridge) -> None:
    victim = await new_victim(pages, bridge)
    v = victim.page
    await v.get_by_role("button", name="English").click()
    await expect(v.get_by_role("button", name="Start a chat")).to_be_visible()
    assert await v.evaluate("document.documentElement.lang") == "en"
    await assert_accessible(v, "victim start (en)")
    await v.get_by_role("button", name="Start a chat").click()
    await expect(v.locator("#compose")).to_be_visible()
    await assert_accessible(v, "victim chat (en)")

    counsellor = await bridge.counsellor()
    conversation_id = await victim.conversation_id()
    await counsellor.join(conversation_id)
    await counsellor.propose(conversation_id, "report")
    await expect(v.locator("#view-consent")).to_be_visible()
    await expect(v.locator("#consent-text li").first).to_be_visible()
    await accessible_and_shot(v, "victim consent (en)", "victim-consent-en")
    await v.get_by_role("button", name="Yes", exact=True).click()
    await expect(v.locator("#view-consent")).to_be_hidden()
    await expect(v.locator("#compose")).to_be_visible()
    await accessible_and_shot(v, "victim chat after consent (en)", "victim-chat-en")

    assert_pngs(
        [
            f"victim-{view}-en-{size}.png"
            for view in ("consent", "chat")
            for size in ("phone", "desktop")
        ]
    )
    victim.assert_clean()
