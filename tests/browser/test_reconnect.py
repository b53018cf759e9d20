"""The pages come back by themselves after a dropped connection (the bridge stops and starts again
on the same port): they join again, fetch what they missed, send what was written meanwhile with
the same client_msg_id, and show every message exactly once.
"""

from __future__ import annotations

import asyncio

import pytest_asyncio
from playwright.async_api import Page, expect
from test_staff_pages import StaffPage, open_staff_page

from bridge.client import BridgeClient
from browser_support import BrowserPage, Pages
from harness import Bridge


@pytest_asyncio.fixture(loop_scope="session")
async def victim_page(pages: Pages) -> BrowserPage:
    return await pages.open(BrowserPage, viewport={"width": 360, "height": 740})


def received_once(client: BridgeClient, seq: int) -> bool:
    return [e["seq"] for name, e in client.received if name == "message"].count(seq) == 1


async def shown_once(page: Page, seqs: list[int]) -> None:
    """Each of ``seqs`` is on the page exactly once, and nothing else is shown twice."""
    for seq in seqs:
        await expect(page.locator(f'#messages li.message[data-seq="{seq}"]')).to_have_count(1)
    shown = await page.locator("#messages li.message").evaluate_all(
        "items => items.map((li) => li.dataset.seq)"
    )
    assert len(shown) == len(set(shown))


async def restart_while(bridge: Bridge, meanwhile: asyncio.Future[None] | None = None) -> None:
    await bridge.stop()
    if meanwhile is not None:
        await meanwhile
    await bridge.start()


async def test_victim_page_resumes_with_the_same_police_part_and_each_message_once(
    victim_page: BrowserPage, bridge: Bridge
) -> None:
    page, log = victim_page.page, victim_page.log
    await page.goto(bridge.url + "/")
    await page.get_by_role("button", name="Nederlands").click()
    await page.get_by_role("button", name="Begin een chat").click()
    await expect(page.locator("#compose")).to_be_visible()
    cid = str(await page.evaluate("JSON.parse(sessionStorage.getItem('chat')).conversation_id"))
    counsellor, officer = await bridge.counsellor(), await bridge.officer()
    await counsellor.join(cid)
    await counsellor.propose(cid)
    await page.get_by_role("button", name="Ja", exact=True).click()
    invite = await officer.next_event("invite", timeout=10)
    await officer.accept(invite["invite_id"])
    banner = page.locator("#police-banner")
    await expect(banner).to_contain_text("Politie (AVIM) leest mee sinds")
    before = await counsellor.send(cid, "Voor de onderbreking.")
    await expect(page.locator(f'#messages li[data-seq="{before}"]')).to_have_count(1)

    resumes = counsellor.resumes
    await bridge.stop()
    await expect(page.locator("#chat-status")).to_have_text(
        "De verbinding is even weg. We proberen het opnieuw…"
    )
    # Written while the connection is gone: on the page, and by the counsellor. Care-only: a
    # message for the police is refused if the police part is paused when it goes out again.
    await page.get_by_label("Alleen voor mijn hulpverlener").check()
    await page.get_by_label("Je bericht").fill("Geschreven zonder verbinding.")
    await page.get_by_role("button", name="Verstuur").click()
    await expect(page.locator("#chat-status")).to_have_text(
        "De verbinding is even weg. We proberen het opnieuw… "
        "Je bericht wordt verstuurd als de verbinding terug is."
    )
    meanwhile = [
        asyncio.create_task(counsellor.send(cid, f"Tijdens de onderbreking {n}.", care_only=True))
        for n in range(2)
    ]
    await bridge.start()
    await counsellor.resumed(resumes + 1)
    missed = [await task for task in meanwhile]

    written = await counsellor.next_event(
        "message", timeout=15, where=lambda e: e["text"] == "Geschreven zonder verbinding."
    )
    after = await counsellor.send(cid, "Na de onderbreking.")
    await shown_once(page, [before, *missed, written["seq"], after])
    assert received_once(counsellor, written["seq"])
    await expect(page.locator("#chat-status")).to_have_text("")
    # The same police part: the counsellor's return lifted the restart's pause.
    await expect(banner).to_contain_text("Politie (AVIM) leest mee sinds")
    assert all("ERR_CONNECTION_REFUSED" in error for error in log.console_errors)
    assert log.page_errors == []


async def test_counsellor_page_resumes_after_a_restart(pages: Pages, bridge: Bridge) -> None:
    victim = await bridge.victim()
    staff: StaffPage = await open_staff_page(pages, bridge, "/counsellor", "counsellor", "fier")
    c = staff.page
    item = c.locator(f'#queue li[data-conversation="{victim.conversation_id}"]')
    await item.get_by_role("button", name="Open gesprek").click()
    await expect(c.locator("#conv")).to_be_visible()
    before = await victim.send("Hallo?")
    await expect(staff.message("Hallo?")).to_have_count(1)

    resumes = victim.resumes
    await bridge.stop()
    await expect(c.locator("#conn-status")).to_have_text(
        "Verbinding even weg, we proberen het opnieuw…"
    )
    await c.locator("#compose-text").fill("Ik ben er nog.")
    await c.locator("#send").click()
    await expect(c.locator("#chat-status")).to_have_text(
        "Je bericht gaat weg zodra de verbinding terug is."
    )
    missed = asyncio.create_task(victim.send("Ben je er nog?"))
    await bridge.start()
    await victim.resumed(resumes + 1)
    during = await missed
    await expect(c.locator("#conn-status")).to_have_text("Verbonden.", timeout=15_000)

    written = await victim.next_event(
        "message", timeout=15, where=lambda e: e["text"] == "Ik ben er nog."
    )
    after = await victim.send("Gelukkig.")
    await shown_once(c, [before, during, written["seq"], after])
    assert received_once(victim, written["seq"])
    await expect(c.locator("#chat-status")).to_have_text("")
    # The browser logs each refused attempt while the bridge is down; nothing else.
    assert all("ERR_CONNECTION_REFUSED" in error for error in staff.log.console_errors)
    assert staff.log.page_errors == [] and staff.elsewhere == []
