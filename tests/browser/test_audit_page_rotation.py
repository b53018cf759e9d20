"""The auditor's page after ``bridge keys rotate-log``, in headless Chromium.

Given the key the log began with, the page follows the hand-over as ``bridge audit verify``
does: the ``log_key.rotated`` entry and the old key's checkpoint over it lead to the new key,
which signed the latest checkpoint; the page says "intact" and names both keys. A random key, or
the new key as the starting point, is refused. So is a server that changes key without the old
key's hand-over: its answers are forged in the browser with Playwright's routing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from nacl.signing import SigningKey
from playwright.async_api import Page, Route, expect
from test_audit_page import audit_api, b64u
from test_staff_pages import log_in, new_staff_page

from bridge import crypto
from bridge.log.signed_note import key_hash
from browser_support import BrowserPage, Pages
from harness import Bridge, bridge_cli, granted

CHECKPOINT = re.compile(r"/api/v1/audit/checkpoint$")
CHECKPOINTS = re.compile(r"/api/v1/audit/checkpoints\?")
LOG_KEYS = re.compile(r"/api/v1/audit/log-keys$")


async def rotate(bridge: Bridge) -> dict[str, Any]:
    """``bridge keys rotate-log`` on the running bridge's data directory; its printed answer."""
    status, out, err = await bridge_cli(bridge.data_dir, "keys", "rotate-log")
    assert status == 0, out + err
    rotated: dict[str, Any] = json.loads(out)
    return rotated


def signed_by(key: SigningKey, key_id: str, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """``checkpoint`` in the name of ``key_id``, signed by ``key``."""
    unsigned = {**{name: checkpoint[name] for name in ("root", "size", "time")}, "key_id": key_id}
    return {**unsigned, "sig": crypto.sign_object(unsigned, key)}


async def forge(page: Page, url: re.Pattern[str], change: Callable[[Any], Any]) -> None:
    """Answer ``url`` in this page with the server's answer changed by ``change``."""

    async def answer(route: Route) -> None:
        response = await route.fetch()
        await route.fulfill(response=response, json=change(await response.json()))

    await page.route(url, answer)


async def check(page: Page, key: str) -> None:
    """Check the log again from ``key`` and wait until the page has its verdict."""
    await page.locator("#trusted-key").fill(key)
    button = page.locator("#verify-log")
    await button.click()  # disables the button at once, until the verdict is drawn
    await expect(button).to_be_enabled(timeout=30_000)


async def rotated_log(bridge: Bridge) -> dict[str, Any]:
    """Consent entries, a rotation of the log key, more consent entries; the rotation."""
    await granted(bridge)
    rotated = await rotate(bridge)
    await granted(bridge)
    return rotated


async def open_audit_page(pages: Pages, bridge: Bridge) -> BrowserPage:
    auditor = await new_staff_page(pages, bridge, "/audit")
    await log_in(auditor.page, "auditor", bridge.passwords["auditor"])
    await expect(auditor.page.locator("#verdict-box")).to_have_attribute(
        "data-intact", re.compile("true|false"), timeout=30_000
    )
    return auditor


async def test_the_page_follows_the_hand_over_from_the_old_key(
    pages: Pages, bridge: Bridge
) -> None:
    rotated = await rotated_log(bridge)
    old, new, index = rotated["old"], rotated["new"], rotated["index"]
    auditor = await open_audit_page(pages, bridge)
    page = auditor.page
    verdict = page.locator("#verdict-box")
    # Without a pasted key the page starts from the key the log began with, and shows that one.
    await expect(verdict).to_have_attribute("data-intact", "true")
    await expect(page.locator("#key-ed25519")).to_have_text(old["ed25519"])
    await expect(page.locator("#key-id")).to_have_text(old["key_id"])

    # The old key pasted: intact, the latest checkpoint being the new key's.
    await check(page, old["ed25519"])
    await expect(verdict).to_have_attribute("data-intact", "true")
    await expect(page.locator("#key-used")).to_have_text("uw vertrouwde sleutel")
    await expect(page.locator("#verdict-reasons li")).to_have_count(0)
    checkpoint = await audit_api(bridge, "/api/v1/audit/checkpoint")
    assert checkpoint["key_id"] == new["key_id"]
    await expect(page.locator("#cp-root")).to_have_text(checkpoint["root"])
    await expect(page.locator("#own-root")).to_have_text(checkpoint["root"])
    keys = page.locator("#key-chain li")
    await expect(keys).to_have_count(2)
    await expect(keys.nth(0)).to_have_attribute("data-key-id", old["key_id"])
    await expect(keys.nth(0)).to_contain_text(f"Sleutel {old['key_id']}: vanaf het begin.")
    await expect(keys.nth(0)).to_contain_text(old["ed25519"])
    await expect(keys.nth(1)).to_have_attribute("data-key-id", new["key_id"])
    await expect(keys.nth(1)).to_contain_text(
        f"Sleutel {new['key_id']}: vanaf regel {index}. De vorige sleutel heeft deze overdracht "
        f"ondertekend (controlepunt van {rotated['handover']['size']} regels); deze browser "
        "heeft dat gecontroleerd."
    )
    await expect(keys.nth(1)).to_contain_text(new["ed25519"])
    # An entry after the rotation is included under the new key's checkpoint.
    last = page.locator("#entries-body tr").last
    await last.locator("button").click()
    await expect(last.locator(".inclusion-result")).to_have_attribute(
        "data-ok", "true", timeout=15_000
    )

    # In English too.
    await page.locator("#lang-switch").click()
    await expect(keys.nth(1)).to_contain_text(
        f"Key {new['key_id']}: from entry {index}. The previous key signed this hand-over",
        timeout=30_000,
    )
    await page.locator("#lang-switch").click()
    await expect(keys.nth(1)).to_contain_text("vanaf regel", timeout=30_000)
    await expect(page.locator("#verify-log")).to_be_enabled(timeout=30_000)

    # A random key: the rotation does not start from it, and the checkpoint is not its.
    random = SigningKey.generate().verify_key
    origin = (await audit_api(bridge, "/api/v1/audit/log-keys"))["origin"]
    random_id = key_hash(origin, bytes(random)).hex()
    await check(page, b64u(bytes(random)))
    await expect(verdict).to_have_attribute("data-intact", "false")
    reasons = page.locator("#verdict-reasons")
    await expect(reasons).to_contain_text(
        f"Regel {index} wisselt van sleutel {old['key_id']}, maar de geldende sleutel is "
        f"{random_id}."
    )
    await expect(reasons).to_contain_text(
        "De handtekening van het controlepunt klopt niet met de sleutel."
    )
    await expect(keys).to_have_count(1)

    # The new key as the starting point: the log did not begin with it.
    await check(page, new["ed25519"])
    await expect(verdict).to_have_attribute("data-intact", "false")
    await expect(reasons).to_contain_text(
        f"Regel {index} wisselt van sleutel {old['key_id']}, maar de geldende sleutel is "
        f"{new['key_id']}."
    )
    auditor.assert_clean()


async def test_a_change_of_key_without_the_old_keys_hand_over_is_refused(
    pages: Pages, bridge: Bridge
) -> None:
    """The server's answers forged in the page as a server holding only the new key, or some
    other key, would give them."""
    rotated = await rotated_log(bridge)
    old, new, index = rotated["old"], rotated["new"], rotated["index"]
    handover = rotated["handover"]
    origin = (await audit_api(bridge, "/api/v1/audit/log-keys"))["origin"]
    auditor = await open_audit_page(pages, bridge)
    page = auditor.page
    verdict, reasons = page.locator("#verdict-box"), page.locator("#verdict-reasons")
    await check(page, old["ed25519"])
    await expect(verdict).to_have_attribute("data-intact", "true")

    # The rotation logged, but the old key's checkpoint over it withheld: the first checkpoint
    # after it is the new key's.
    def without_handover(answer: Any) -> Any:
        assert handover in answer["checkpoints"]
        return {"checkpoints": [c for c in answer["checkpoints"] if c != handover]}

    await forge(page, CHECKPOINTS, without_handover)
    await check(page, old["ed25519"])
    await expect(verdict).to_have_attribute("data-intact", "false")
    await expect(reasons).to_contain_text(
        f"Het eerste controlepunt na de sleutelwissel in regel {index} is niet ondertekend met "
        f"de vorige sleutel {old['key_id']}."
    )
    await expect(page.locator("#key-chain li")).to_have_count(1)
    await page.unroute_all()

    # A hand-over in the old key's name, signed by another key.
    other = SigningKey.generate()

    def handover_by_other(answer: Any) -> Any:
        forged = signed_by(other, old["key_id"], handover)
        return {"checkpoints": [forged if c == handover else c for c in answer["checkpoints"]]}

    await forge(page, CHECKPOINTS, handover_by_other)
    await check(page, old["ed25519"])
    await expect(verdict).to_have_attribute("data-intact", "false")
    await expect(reasons).to_contain_text(
        f"Het controlepunt dat de sleutel overdraagt in regel {index} is niet echt ondertekend "
        f"met de vorige sleutel {old['key_id']}."
    )
    await page.unroute_all()

    # A hand-over the old key signed, but over another tree than these entries (the old key is
    # kept in the data directory after the rotation).
    old_key = SigningKey((bridge.data_dir / "log-keys" / old["key_id"]).read_bytes())

    def handover_of_other_tree(answer: Any) -> Any:
        forged = signed_by(old_key, old["key_id"], {**handover, "root": b64u(bytes(32))})
        return {"checkpoints": [forged if c == handover else c for c in answer["checkpoints"]]}

    await forge(page, CHECKPOINTS, handover_of_other_tree)
    await check(page, old["ed25519"])
    await expect(verdict).to_have_attribute("data-intact", "false")
    await expect(reasons).to_contain_text(
        f"Het controlepunt dat de sleutel overdraagt in regel {index} klopt niet met de regels "
        "tot daar."
    )
    await page.unroute_all()

    # A key the log was never handed over to: the server names it and signs the latest
    # checkpoint with it.
    forger_id = key_hash(origin, bytes(other.verify_key)).hex()
    served = {
        "key_id": forger_id,
        "ed25519": b64u(bytes(other.verify_key)),
        "rotation_index": None,
        "first_size": None,
        "last_size": None,
    }
    await forge(page, LOG_KEYS, lambda answer: {**answer, "keys": [*answer["keys"], served]})
    await forge(page, CHECKPOINT, lambda answer: signed_by(other, forger_id, answer))
    await check(page, old["ed25519"])
    await expect(verdict).to_have_attribute("data-intact", "false")
    await expect(reasons).to_contain_text(
        f"Het laatste controlepunt is ondertekend met sleutel {forger_id}, maar de geldende "
        f"sleutel is {new['key_id']}."
    )
    await expect(reasons).to_contain_text(
        f"De server noemt sleutel {forger_id} als sleutel van het logboek, maar het logboek is "
        "nooit aan die sleutel overgedragen."
    )
    await page.unroute_all()

    # The server's own answers again: intact.
    await check(page, old["ed25519"])
    await expect(verdict).to_have_attribute("data-intact", "true")
    auditor.assert_clean()
