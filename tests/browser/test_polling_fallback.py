"""The victim's page on a network that lets no websocket through: the chat runs over Socket.IO's
long-polling. The page's websockets are taken over in the browser (Playwright's
``route_web_socket``) and either closed at once, as a proxy that refuses them, or left open with
nothing answering, as a middlebox that swallows them; neither ever reaches the bridge.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Request, WebSocketRoute, expect
from test_victim_page import Victim, start_chat

from browser_support import Pages
from harness import Bridge

POLLING_PATIENCE_MS = 20_000


@pytest.mark.parametrize("blocked", ["refused", "silent"])
async def test_the_victims_page_chats_over_long_polling_when_websockets_are_blocked(
    pages: Pages, bridge: Bridge, blocked: str
) -> None:
    victim = await pages.open(Victim, viewport={"width": 360, "height": 740}, origin=bridge.url)
    page = victim.page
    tried: list[str] = []

    async def block(ws: WebSocketRoute) -> None:
        tried.append(ws.url)
        if blocked == "refused":
            await ws.close(code=1008, reason="no websockets")
        # "silent": never connected to the bridge, and nothing answers the page

    polls: list[str] = []

    def on_request(request: Request) -> None:
        if "/socket.io/" in request.url and request.method == "POST":
            polls.append(request.url)

    await page.route_web_socket("**/socket.io/**", block)
    page.on("request", on_request)

    await start_chat(victim, bridge.url)
    cid = await victim.conversation_id()
    counsellor = await bridge.counsellor()
    await counsellor.join(cid)
    await counsellor.send(cid, "Hoi, ik ben er. Waar wil je over praten?")
    # Each delivery over long-polling waits for the page's next poll: more patience than for a
    # websocket on a busy machine.
    await expect(victim.message("Hoi, ik ben er. Waar wil je over praten?")).to_have_count(
        1, timeout=POLLING_PATIENCE_MS
    )

    posted = len(polls)
    await victim.send("Ik weet niet goed waar ik moet beginnen.")
    got = await counsellor.next_event(
        "message",
        timeout=POLLING_PATIENCE_MS / 1000,
        where=lambda e: e["sender_role"] == "victim",
    )
    assert got["verified"] is True
    assert got["text"] == "Ik weet niet goed waar ik moet beginnen."

    # The page did try a websocket, which never got through: everything went by long-polling.
    assert tried and all("transport=websocket" in url for url in tried)
    assert len(polls) > posted
    assert all("transport=polling" in url for url in polls)
    victim.assert_clean()
