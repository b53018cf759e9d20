"""Werkafspraken signed by both organisations, applied with ``bridge policy apply`` on a running
bridge (docs/governance.md): refused, changing nothing, unless Fier and AVIM both signed it with
registered keys and it is newer than the policy in force; in force on every node without a
restart; logged with its version, hash, signatures and text, so the log alone shows who agreed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nacl.signing import SigningKey

from bridge.client import Refused
from bridge.log.signed_note import add_signature
from bridge.policy.loader import parse_policy
from bridge.policy.signed import open_signed, sign_policy, signing_vkey
from harness import (
    POLICY_KEYS,
    Bridge,
    Node,
    audit_entries,
    audit_verify,
    bridge_cli,
    db_rows,
    execute,
    policy_text,
    query,
    state_is,
)

FIER, AVIM = POLICY_KEYS["fier"], POLICY_KEYS["avim"]
QUICK = pytest.mark.settings(policy_check_seconds=0.1)


def signed(text: str, *keys: tuple[str, SigningKey]) -> str:
    for org, key in keys:
        text = sign_policy(text, org, key)
    return text


def by_both(text: str) -> str:
    return signed(text, ("fier", FIER), ("avim", AVIM))


async def apply(bridge: Bridge, text: str, tmp_path: Path) -> tuple[int, str, str]:
    path = tmp_path / "policy-to-apply.toml"
    path.write_text(text)
    return await bridge_cli(bridge.data_dir, "policy", "apply", str(path), "--lang", "en")


async def in_force(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url + "/api/v1/policy") as response:
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
        return answer


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for an outcome (never a timing): ``check`` true within a generous deadline."""
    for _ in range(300):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def log_kinds(bridge: Bridge) -> list[str]:
    return [kind for (kind,) in query(bridge.data_dir, "SELECT kind FROM log_entries ORDER BY idx")]


NEWER = policy_text(serial=2, victim_may_share=True)
UNSOUND = {
    "unsigned": NEWER,
    "fier-only": signed(NEWER, ("fier", FIER)),
    "avim-only": signed(NEWER, ("avim", AVIM)),
    "bad-signature": by_both(NEWER).replace("victim_may_share = true", "victim_may_share = false"),
    "unregistered-key": signed(NEWER, ("fier", FIER), ("avim", SigningKey(b"z" * 32))),
    "malformed": add_signature(
        add_signature(NEWER.replace("[history]", "[history"), "fier-werkafspraken", FIER),
        "avim-werkafspraken",
        AVIM,
    ),
    "older": by_both(policy_text(serial=1, victim_may_share=True)),
    "same-serial-as-in-force": by_both(policy_text(victim_may_share=True)),
}
REASONS = {
    "unsigned": "not signed",
    "fier-only": "signature of AVIM is missing",
    "avim-only": "signature of Fier is missing",
    "bad-signature": "does not verify",
    "unregistered-key": "signature of AVIM is missing",
    "malformed": "not a TOML file",
    "older": "not newer than the policy in force",
    "same-serial-as-in-force": "not newer than the policy in force",
}


@pytest.mark.parametrize("case", sorted(UNSOUND))
async def test_apply_refuses_an_unsound_policy_and_changes_nothing(
    bridge: Bridge, tmp_path: Path, case: str
) -> None:
    before = (log_kinds(bridge), await in_force(bridge.url))
    status, out, err = await apply(bridge, UNSOUND[case], tmp_path)
    assert status == 1, out
    assert REASONS[case] in err
    assert (log_kinds(bridge), await in_force(bridge.url)) == before
    assert before[1]["serial"] == 1


@QUICK
async def test_a_policy_signed_by_both_is_in_force_without_a_restart_and_logged(
    bridge: Bridge, tmp_path: Path
) -> None:
    officer, victim, counsellor = (
        await bridge.officer(),
        await bridge.victim(),
        await bridge.counsellor(),
    )
    await counsellor.join(victim.conversation_id)
    earlier = await victim.send("Eerder bericht.")
    await counsellor.propose(victim.conversation_id)
    await victim.next_event("consent.prompt")
    await victim.grant()
    await officer.accept((await officer.next_event("invite"))["invite_id"])
    await victim.next_event("bridge.state", where=state_is("joined"))
    with pytest.raises(Refused) as refused:
        await victim.share_history([earlier])
    assert refused.value.code == "forbidden"

    status, out, err = await apply(bridge, by_both(NEWER), tmp_path)
    assert status == 0, err
    assert "(serial 2) are in force now" in out

    async def taken() -> bool:
        return (await in_force(bridge.url))["serial"] == 2

    await until(taken, "the running server took serial 2")
    assert await victim.share_history([earlier]) == 1  # the new rule, on the same sockets

    # The log alone shows both organisations agreed: the entry holds the signed text, whose
    # signatures hold under the keys the log registered for each organisation.
    entries = [entry for entry in await audit_entries(bridge) if entry["kind"].startswith("policy")]
    registered: dict[str, list[str]] = {}
    for entry in entries:
        if entry["kind"] == "policy_key.registered":
            registered.setdefault(entry["org"], []).append(entry["vkey"])
    changed = [entry for entry in entries if entry["kind"] == "policy.changed"]
    assert [entry["serial"] for entry in changed] == [1, 2]
    for entry in changed:
        opened = open_signed(entry["note"], registered)
        assert (opened.policy.serial, opened.policy.sha256) == (entry["serial"], entry["sha256"])
        assert entry["signed_by"] == dict(opened.signed_by)
    assert changed[1]["actor"] == {"role": "admin", "via": "cli"}
    assert changed[1]["sha256"] == parse_policy(NEWER.encode()).sha256

    status, printed = await audit_verify(bridge, bridge.url)
    assert status == 0, printed


async def test_every_node_takes_a_new_policy_without_a_restart_and_refuses_a_forged_one(
    bridge: Bridge, tmp_path: Path
) -> None:
    await bridge.stop()
    env = {"BRIDGE_POLICY_CHECK_SECONDS": "0.1"}
    nodes = [Node(bridge.data_dir, name=name, env=env) for name in ("a", "b")]
    try:
        for node in nodes:
            await node.start()
        assert [(await in_force(node.url))["serial"] for node in nodes] == [1, 1]
        status, _out, err = await apply(bridge, by_both(NEWER), tmp_path)
        assert status == 0, err

        async def both_took() -> bool:
            return [(await in_force(node.url))["serial"] for node in nodes] == [2, 2]

        await until(both_took, "both nodes took serial 2")
        answer = await in_force(nodes[1].url)
        assert answer["note"] == by_both(NEWER)
        assert answer["signed_by"] == {
            "fier": signing_vkey("fier", FIER),
            "avim": signing_vkey("avim", AVIM),
        }

        # A policy written into the database behind the bridge's back, signed by Fier alone:
        # each node refuses it, says so, and keeps enforcing the one both signed.
        forged = signed(policy_text(serial=3), ("fier", FIER)).replace("'", "''")
        execute(
            bridge.data_dir,
            "INSERT INTO policies (serial, version, sha256, note, applied_at) "
            f"VALUES (3, 'forged', 'x', '{forged}', '2026-01-01 00:00:00')",
        )

        async def both_refused() -> bool:
            return all("policy.refused" in node.errors() for node in nodes)

        await until(both_refused, "both nodes refused the forged policy")
        assert [(await in_force(node.url))["serial"] for node in nodes] == [2, 2]
        assert all("signature of AVIM is missing" in node.errors() for node in nodes)
    finally:
        await asyncio.gather(*(node.stop() for node in nodes))
    for node in nodes:
        assert "Traceback" not in node.errors()


@pytest.mark.parametrize("case", ["unsigned", "fier-only", "bad-signature"])
async def test_a_node_configured_with_an_unsound_policy_does_not_start(
    bridge: Bridge, tmp_path: Path, case: str
) -> None:
    path = tmp_path / "configured.toml"
    path.write_text(UNSOUND[case])
    env = {"BRIDGE_POLICY_FILE": str(path), "BRIDGE_PORT": "0"}
    status, _out, err = await asyncio.wait_for(
        bridge_cli(bridge.data_dir, "serve", env=env), timeout=60
    )
    assert status == 1
    assert REASONS[case] in err
    assert (await in_force(bridge.url))["serial"] == 1


async def test_a_bridge_with_no_policy_in_force_does_not_start(tmp_path: Path) -> None:
    env = {"BRIDGE_PORT": "0"}
    status, _out, err = await asyncio.wait_for(
        bridge_cli(tmp_path / "fresh", "serve", env=env), timeout=60
    )
    assert status == 1
    assert "no werkafspraken are in force" in err
    assert "bridge policy apply" in err


async def test_a_revoked_key_signs_nothing_new_and_what_it_signed_stays_in_force(
    bridge: Bridge, tmp_path: Path
) -> None:
    status, out, err = await bridge_cli(
        bridge.data_dir, "policy", "key", "revoke", signing_vkey("avim", AVIM)
    )
    assert status == 0, err
    assert json.loads(out)["revoked"] is True
    status, _out, err = await apply(bridge, by_both(NEWER), tmp_path)
    assert status == 1
    assert "signature of AVIM is missing" in err
    await bridge.restart()  # the policy in force was signed before the revocation: it holds
    assert (await in_force(bridge.url))["serial"] == 1
    assert log_kinds(bridge).count("policy_key.revoked") == 1


def without_english_texts(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("en = {"))


@pytest.mark.policy(without_english_texts(policy_text()))
async def test_a_consent_text_the_policy_does_not_approve_is_never_offered(bridge: Bridge) -> None:
    counsellor = await bridge.counsellor()
    english, dutch = await bridge.victim("en"), await bridge.victim("nl")
    for victim in (english, dutch):
        await counsellor.join(victim.conversation_id)
    before = db_rows(bridge)
    with pytest.raises(Refused) as refused:
        await counsellor.propose(english.conversation_id)
    assert refused.value.code == "forbidden"
    assert "no consent text for informational in en" in refused.value.message
    assert db_rows(bridge) == before
    await counsellor.propose(dutch.conversation_id)
    prompt = await dutch.next_event("consent.prompt")
    assert prompt["text"]["lang"] == "nl"


@QUICK
async def test_a_grant_under_a_text_the_policy_no_longer_approves_is_refused(
    bridge: Bridge, tmp_path: Path
) -> None:
    counsellor, victim = await bridge.counsellor(), await bridge.victim("en")
    await counsellor.join(victim.conversation_id)
    await counsellor.propose(victim.conversation_id)
    await victim.next_event("consent.prompt")
    status, _out, err = await apply(
        bridge, by_both(without_english_texts(policy_text(serial=2))), tmp_path
    )
    assert status == 0, err

    async def taken() -> bool:
        return (await in_force(bridge.url))["serial"] == 2

    await until(taken, "the running server took serial 2")
    before = db_rows(bridge)
    with pytest.raises(Refused) as refused:
        await victim.grant()
    assert refused.value.code == "forbidden"
    assert db_rows(bridge) == before
