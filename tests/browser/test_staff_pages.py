"""The counsellor's and the officer's consoles in headless Chromium against a real bridge.

A Python victim (``bridge.victim()``) talks with a browser counsellor and a browser officer: the
driegesprek is proposed and granted, messages flow every way and decrypt, a care-only message
reaches the counsellor's page marked as such and never the officer's, and a withdrawal shows on
the officer's page as a removal. A counsellor page also holds two victims' conversations at once,
each keeping its own messages when switching. The pages are served by the bridge itself, built with
``make web``; every request that would leave the bridge's origin is answered in the browser and
recorded (there must be none).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from playwright.async_api import Page, ViewportSize, expect

from browser_support import BrowserPage, Pages
from harness import Bridge

ROOT = Path(__file__).parents[2]
REGION = "Noord-Holland"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


class StaffPage(BrowserPage):
    async def send(self, text: str) -> None:
        await self.page.locator("#compose-text").fill(text)
        await self.page.locator("#send").click()
        await expect(self.page.locator("#compose-text")).to_have_value("")


class SendsText(Protocol):
    """A victim, in a browser or in Python."""

    async def send(self, text: str, *, care_only: bool = False) -> Any: ...


def text_is(text: str) -> Callable[[dict[str, Any]], bool]:
    """For ``next_event``: a message event whose decrypted text is ``text``."""
    return lambda event: event.get("text") == text


async def new_staff_page(pages: Pages, bridge: Bridge, path: str) -> StaffPage:
    """Open ``path`` in a fresh context, logging from the start; nothing may leave the origin."""
    staff = await pages.open(StaffPage, viewport=DESKTOP, origin=bridge.url)
    await staff.page.goto(bridge.url + path)
    await staff.page.wait_for_selector("body[data-ready]", state="attached")
    return staff


async def log_in(page: Page, username: str, password: str) -> None:
    await page.locator("#login-username").fill(username)
    await page.locator("#login-password").fill(password)
    await page.locator("#login-submit").click()


async def unlock(page: Page, passphrase: str) -> None:
    await page.locator("#unlock-passphrase").fill(passphrase)
    await page.locator("#unlock-submit").click()


async def log_in_and_unlock(page: Page, bridge: Bridge, username: str, org: str) -> None:
    """Log in as ``username``, unlock with ``org``'s passphrase, wait for the connection."""
    await log_in(page, username, bridge.passwords[username])
    await expect(page.locator("#view-unlock")).to_be_visible()
    await unlock(page, bridge.passphrases[org])
    await expect(page.locator("#conn-status")).to_have_text("Verbonden.", timeout=15_000)


async def open_staff_page(
    pages: Pages, bridge: Bridge, path: str, username: str, org: str
) -> StaffPage:
    """Open ``path``, log in as ``username`` and unlock with ``org``'s passphrase."""
    staff = await new_staff_page(pages, bridge, path)
    await log_in_and_unlock(staff.page, bridge, username, org)
    return staff


async def victim_writes_to_both(
    victim: SendsText, counsellor: StaffPage, officer: StaffPage
) -> None:
    """Once the officer is in: it has nothing of before, and the victim's next message
    decrypts on both pages, marked for the police on the counsellor's."""
    assert await officer.message("Fijn dat je er bent.").count() == 0
    await victim.send("Hallo allebei.")
    await expect(counsellor.message("Hallo allebei.")).to_contain_text("Ook voor de politie")
    await expect(officer.message("Hallo allebei.")).to_be_visible()


async def care_only_passes_the_officer_by(
    victim: SendsText, counsellor: StaffPage, officer: StaffPage
) -> None:
    """A care-only message is marked on the counsellor's page and never reaches the officer's;
    the message after it, for both, reaches both."""
    await victim.send("Dit is alleen voor jou.", care_only=True)
    mark = counsellor.message("Dit is alleen voor jou.").locator(".message-mark")
    await expect(mark).to_have_text("Alleen hulpverlening: de politie ziet dit niet")
    await victim.send("En dit mag de agent ook lezen.")
    await expect(officer.message("En dit mag de agent ook lezen.")).to_be_visible()
    await expect(counsellor.message("En dit mag de agent ook lezen.")).to_be_visible()
    assert await officer.message("Dit is alleen voor jou.").count() == 0
    assert "Dit is alleen voor jou." not in await officer.page.locator("body").inner_text()


async def test_driegesprek_with_browser_staff(pages: Pages, bridge: Bridge) -> None:
    victim = await bridge.victim()
    counsellor = await open_staff_page(pages, bridge, "/counsellor", "counsellor", "fier")
    officer = await open_staff_page(pages, bridge, "/officer", "officer", "avim")
    c, o = counsellor.page, officer.page

    # The counsellor picks the victim's conversation from the queue.
    item = c.locator(f'#queue li[data-conversation="{victim.conversation_id}"]')
    await item.get_by_role("button", name="Open gesprek").click()
    await expect(c.locator("#conv")).to_be_visible()
    await expect(c.locator("#queue li")).to_have_count(0)
    await expect(c.locator("#police-indicator")).to_have_text("Geen politie in dit gesprek.")
    await expect(o.locator("#invites-empty")).to_be_visible()

    # A care message before any bridge; the victim reads it.
    await counsellor.send("Fijn dat je er bent.")
    got = await victim.next_event("message", timeout=10, where=text_is("Fijn dat je er bent."))
    assert got["verified"] and got["sender_role"] == "counsellor"
    assert got["audience"] == ["care"]

    # Propose; the Python victim is asked and consents.
    await c.locator("#purpose-report").check()
    await c.locator("#propose-gender").select_option("female")
    await c.locator("#propose-region").fill(REGION)
    await c.locator("#propose-submit").click()
    prompt = await victim.next_event("consent.prompt", timeout=10)
    assert prompt["purpose"] == "report"
    assert prompt["preferences"]["officer_gender"] == "female"
    await expect(c.locator("#bridge-state")).to_contain_text("wacht op antwoord")
    await expect(c.locator("#propose")).to_be_hidden()
    await victim.grant(share_needs_note=True)
    await expect(c.locator("#bridge-state")).to_contain_text("toestemming gegeven")

    # The needs note: how to talk, never what happened (the page says so by the field).
    await expect(c.locator("#note-hint")).to_contain_text("Nooit wat er is gebeurd")
    await c.locator("#note-text").fill("Eenvoudige taal, korte vragen.")
    await c.locator("#note-submit").click()
    await expect(c.locator("#note-status")).to_contain_text("De notitie is verstuurd")

    # The officer sees the invite: purpose, preferences, expiry; no content.
    invite = o.locator("#invites li.invite")
    await expect(invite).to_have_count(1, timeout=10_000)
    await expect(invite).to_contain_text("Doel: Aangifte")
    await expect(invite).to_contain_text("vrouwelijke agent")
    await expect(invite).to_contain_text(f"Regio: {REGION}")
    await expect(invite).to_contain_text("Geldig tot")
    for secret in ("Eenvoudige taal", "Fijn dat je er bent"):
        assert secret not in await o.locator("body").inner_text()
    await invite.get_by_role("button", name="Accepteer").click()

    # The officer's scope is stated plainly; the needs note is there, nothing earlier.
    await expect(o.locator("#view-chat")).to_be_visible()
    await expect(o.locator("#scope-since")).to_have_text(
        re.compile(r"^U ziet berichten vanaf \d\d:\d\d\.$")
    )
    await expect(o.locator("#messages li.message.needs-note")).to_contain_text(
        "Eenvoudige taal, korte vragen."
    )
    await victim.next_event("bridge.state", timeout=10, where=lambda e: e["state"] == "joined")
    await expect(c.locator("#police-indicator")).to_contain_text("Politie leest mee vanaf")
    await expect(c.locator("#bridge-state")).to_contain_text("agent is in het gesprek")
    await victim_writes_to_both(victim, counsellor, officer)

    # The browser counsellor and officer write; the Python victim reads both.
    await counsellor.send("Welkom, de agent leest nu mee.")
    welcome = "Welkom, de agent leest nu mee."
    got = await victim.next_event("message", timeout=10, where=text_is(welcome))
    assert got["verified"] and got["sender_role"] == "counsellor"
    assert got["audience"] == ["care", "investigation"]
    await expect(officer.message("Welkom, de agent leest nu mee.")).to_be_visible()
    await officer.send("Goedemiddag, ik ben van AVIM.")
    got = await victim.next_event(
        "message", timeout=10, where=text_is("Goedemiddag, ik ben van AVIM.")
    )
    assert got["verified"] and got["sender_role"] == "officer"
    await expect(counsellor.message("Goedemiddag, ik ben van AVIM.")).to_be_visible()
    await expect(officer.message("Goedemiddag, ik ben van AVIM.")).to_have_class(
        re.compile(r"\bown\b")
    )

    # A care-only message: marked on the counsellor's page, never on the officer's.
    await care_only_passes_the_officer_by(victim, counsellor, officer)

    # The counsellor pauses and resumes the police part; the officer's page says so.
    await c.locator("#steer-pause").click()
    await expect(o.locator("#officer-state")).to_contain_text(
        "De hulpverlener heeft het gesprek met u gepauzeerd"
    )
    await expect(o.locator("#send")).to_be_disabled()
    await expect(c.locator("#police-indicator")).to_contain_text("gepauzeerd")
    await c.locator("#steer-resume").click()
    await expect(o.locator("#officer-state")).to_be_hidden()
    await expect(o.locator("#send")).to_be_enabled()
    await expect(c.locator("#police-indicator")).to_contain_text("Politie leest mee")

    # The victim withdraws: the officer's page says it was removed and why; no more sending.
    await victim.withdraw()
    state = o.locator("#officer-state")
    await expect(state).to_be_visible()
    await expect(state).to_contain_text("De cliënt heeft de toestemming ingetrokken")
    await expect(state).to_contain_text("u kunt niets meer sturen")
    await expect(o.locator("#compose")).to_be_hidden()
    await expect(o.locator("#leave")).to_be_hidden()
    await expect(c.locator("#bridge-state")).to_contain_text("beëindigd")
    await expect(c.locator("#police-indicator")).to_have_text("Geen politie in dit gesprek.")
    await expect(c.locator("#propose")).to_be_visible()

    counsellor.assert_clean()
    officer.assert_clean()


async def test_wrong_account_and_passphrase_then_officer_leaves(
    pages: Pages, bridge: Bridge
) -> None:
    victim = await bridge.victim()
    counsellor = await new_staff_page(pages, bridge, "/counsellor")
    officer = await open_staff_page(pages, bridge, "/officer", "officer", "avim")
    c, o = counsellor.page, officer.page
    # An officer's account does not open the counsellor's console.
    await log_in(c, "officer", bridge.passwords["officer"])
    await expect(c.locator("#login-status")).to_have_text(
        "Dit account is geen hulpverleneraccount. Gebruik de console die bij uw rol hoort."
    )
    await expect(c.locator("#view-login")).to_be_visible()
    # A wrong passphrase is refused in the browser; the right one opens the console.
    await log_in(c, "counsellor", bridge.passwords["counsellor"])
    await expect(c.locator("#view-unlock")).to_be_visible()
    await unlock(c, "niet de wachtzin")
    await expect(c.locator("#unlock-status")).to_contain_text("Ontgrendelen is niet gelukt")
    await unlock(c, bridge.passphrases["fier"])
    await expect(c.locator("#conn-status")).to_have_text("Verbonden.", timeout=15_000)

    item = c.locator(f'#queue li[data-conversation="{victim.conversation_id}"]')
    await item.get_by_role("button", name="Open gesprek").click()
    await c.locator("#propose-submit").click()
    await victim.next_event("consent.prompt", timeout=10)
    await victim.grant(share_needs_note=False)
    await o.locator("#invites li.invite").get_by_role("button", name="Accepteer").click()
    await expect(o.locator("#scope-since")).to_contain_text("U ziet berichten vanaf")
    await expect(c.locator("#bridge-state")).to_contain_text("agent is in het gesprek")

    # Without the victim's choice the needs note is refused, and the page says why.
    await c.locator("#note-text").fill("Rustig aan.")
    await c.locator("#note-submit").click()
    await expect(c.locator("#note-status")).to_have_text(
        "De cliënt heeft niet gekozen voor een notitie aan de agent."
    )

    # The officer leaves: its page says so and offers the invites again.
    await o.locator("#leave").click()
    await expect(o.locator("#officer-state")).to_contain_text("U heeft het gesprek verlaten")
    await expect(o.locator("#compose")).to_be_hidden()
    await expect(c.locator("#bridge-notice")).to_contain_text("De agent heeft het gesprek verlaten")
    await expect(c.locator("#police-indicator")).to_have_text("Geen politie in dit gesprek.")
    await o.locator("#back").click()
    await expect(o.locator("#view-invites")).to_be_visible()
    await expect(o.locator("#invites-empty")).to_be_visible()

    counsellor.assert_clean()
    officer.assert_clean()


async def test_counsellor_holds_two_conversations(pages: Pages, bridge: Bridge) -> None:
    first = await bridge.victim()
    second = await bridge.victim("en")
    counsellor = await new_staff_page(pages, bridge, "/counsellor")
    c = counsellor.page
    mine = c.locator("#mine li.mine-item")
    fetched: list[str] = []  # history.fetch calls the page sends over its socket
    c.on(
        "websocket",
        lambda ws: ws.on(
            "framesent",
            lambda frame: fetched.append(str(frame)) if "history.fetch" in str(frame) else None,
        ),
    )
    await log_in_and_unlock(c, bridge, "counsellor", "fier")

    # The counsellor picks up both conversations; the second one is on screen.
    for victim in (first, second):
        item = c.locator(f'#queue li[data-conversation="{victim.conversation_id}"]')
        await item.get_by_role("button", name="Open gesprek").click(timeout=10_000)
        on_screen = c.locator(
            f'#mine li[data-conversation="{victim.conversation_id}"] [aria-current="true"]'
        )
        await expect(on_screen).to_have_count(1)
    await expect(mine).to_have_count(2)
    await expect(c.locator("#queue li")).to_have_count(0)
    one = c.locator(f'#mine li[data-conversation="{first.conversation_id}"]')
    two = c.locator(f'#mine li[data-conversation="{second.conversation_id}"]')
    await expect(one).to_contain_text("Stand: nog niet gevraagd")

    # Each victim writes; each message lands in its own conversation only.
    await second.send("Hier is de tweede.")
    await expect(counsellor.message("Hier is de tweede.")).to_be_visible()
    await first.send("Hier is de eerste.")
    await expect(one.locator(".mine-new")).to_have_text("1 nieuw")
    await expect(two.locator(".mine-new")).to_have_count(0)
    assert await counsellor.message("Hier is de eerste.").count() == 0
    await counsellor.send("Antwoord aan de tweede.")
    got = await second.next_event("message", timeout=10, where=text_is("Antwoord aan de tweede."))
    assert got["verified"] and got["sender_role"] == "counsellor"

    # Switching: the first conversation's message is there, without the second's.
    await one.get_by_role("button").click()
    await expect(one.locator('[aria-current="true"]')).to_have_count(1)
    await expect(one.locator(".mine-new")).to_have_count(0)
    await expect(counsellor.message("Hier is de eerste.")).to_be_visible()
    assert await counsellor.message("Hier is de tweede.").count() == 0
    await counsellor.send("Antwoord aan de eerste.")
    got = await first.next_event("message", timeout=10, where=text_is("Antwoord aan de eerste."))
    assert got["verified"]
    await second.send("Nog iets van de tweede.")
    await expect(two.locator(".mine-new")).to_have_text("1 nieuw")

    # Back to the second: its earlier messages are kept, no refetch, plus the new one.
    fetches = len(fetched)
    assert fetches >= 2  # opening each conversation fetched its history
    await two.get_by_role("button").click()
    for text in ("Hier is de tweede.", "Antwoord aan de tweede.", "Nog iets van de tweede."):
        await expect(counsellor.message(text)).to_have_count(1)
    assert await counsellor.message("Hier is de eerste.").count() == 0
    assert len(fetched) == fetches  # switching needs no refetch
    counsellor.assert_clean()
