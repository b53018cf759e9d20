"""The counsellor's console after ``bridge keys rotate-org fier`` in headless Chromium: the
first passphrase opens the version it belongs to, the page asks once more for the version it
did not open, and a conversation sealed to each version reads on one page."""

from __future__ import annotations

import secrets

from playwright.async_api import expect
from test_staff_pages import log_in, new_staff_page, unlock

from browser_support import Pages
from harness import Bridge


async def test_the_console_opens_conversations_of_both_fier_keys(
    pages: Pages, bridge: Bridge
) -> None:
    before = await bridge.victim()
    await before.send("Van voor de nieuwe sleutel.")
    passphrase = secrets.token_urlsafe(16)
    assert (await bridge.rotate_org("fier", passphrase))["key_id"] == "fier-2"
    after = await bridge.victim()
    await after.send("Na de nieuwe sleutel.")

    counsellor = await new_staff_page(pages, bridge, "/counsellor")
    c = counsellor.page
    await log_in(c, "counsellor", bridge.passwords["counsellor"])
    await unlock(c, bridge.passphrases["fier"])
    # fier-1 is open; the page names the version it could not open and asks for its passphrase.
    await expect(c.locator("#unlock-version")).to_contain_text("Sleutel fier-2")
    await expect(c.locator("#unlock-skip")).to_be_visible()
    await unlock(c, "niet de wachtzin")
    await expect(c.locator("#unlock-status")).to_contain_text("Ontgrendelen is niet gelukt")
    await unlock(c, passphrase)
    await expect(c.locator("#conn-status")).to_have_text("Verbonden.", timeout=15_000)

    for victim, text in (
        (before, "Van voor de nieuwe sleutel."),
        (after, "Na de nieuwe sleutel."),
    ):
        item = c.locator(f'#queue li[data-conversation="{victim.conversation_id}"]')
        await item.get_by_role("button", name="Open gesprek").click(timeout=10_000)
        await expect(counsellor.message(text)).to_be_visible()
        await expect(counsellor.message(text)).not_to_contain_text("niet worden gelezen")
    counsellor.assert_clean()


async def test_a_skipped_version_leaves_its_conversations_unread(
    pages: Pages, bridge: Bridge
) -> None:
    await bridge.rotate_org("fier", secrets.token_urlsafe(16))
    after = await bridge.victim()
    await after.send("Na de nieuwe sleutel.")

    counsellor = await new_staff_page(pages, bridge, "/counsellor")
    c = counsellor.page
    await log_in(c, "counsellor", bridge.passwords["counsellor"])
    await unlock(c, bridge.passphrases["fier"])
    await c.locator("#unlock-skip").click()
    await expect(c.locator("#conn-status")).to_have_text("Verbonden.", timeout=15_000)
    item = c.locator(f'#queue li[data-conversation="{after.conversation_id}"]')
    await item.get_by_role("button", name="Open gesprek").click(timeout=10_000)
    await expect(c.locator("#messages li.message")).to_contain_text(
        "Dit bericht kan hier niet worden gelezen."
    )
    assert await counsellor.message("Na de nieuwe sleutel.").count() == 0
    counsellor.assert_clean()
