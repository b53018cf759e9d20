"""``bridge audit check``: the agreed rules run offline over an export (``bridge/log/rules.py``).
An honest log passes; a log with entries appended on purpose that break a rule (through the
log's own writer, so the log itself stays intact) is flagged, each breach by its rule and index."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.edges.app import CORE
from harness import CLI, Bridge, bridge_cli, cli_env, http, state_is

Append = Callable[[str, dict[str, Any]], Awaitable[int]]


async def check(bridge: Bridge, tmp_path: Path) -> tuple[int, str]:
    export = tmp_path / "log.jsonl"
    token = await bridge.token("auditor")
    status, out, err = await bridge_cli(
        None, "audit", "export", "--url", bridge.url, f"--token={token}", "--out", str(export)
    )
    assert status == 0, out + err
    status, out, err = await bridge_cli(None, "audit", "check", "--export", str(export))
    return status, out + err


async def honest_driegesprek(bridge: Bridge) -> dict[str, Any]:
    """Grant, join, the officer reads, the victim withdraws: every rule kept."""
    officer, victim, counsellor = (
        await bridge.officer(),
        await bridge.victim(),
        await bridge.counsellor(),
    )
    cid = victim.conversation_id
    await counsellor.join(cid)
    await counsellor.propose(cid)
    await victim.next_event("consent.prompt")
    await victim.grant()
    await officer.accept((await officer.next_event("invite"))["invite_id"])
    await victim.next_event("bridge.state", where=state_is("joined"))
    await victim.send("Met de politie erbij.")
    await officer.history(cid)
    bridge_state = victim.bridge or {}
    joined = {
        "cid": cid,
        "officer": officer.session["user_id"],
        "request": bridge_state["request_id"],
        "epoch": (victim.conversation.epoch or {})["epoch_id"],
    }
    await victim.withdraw()
    await victim.next_event("bridge.state", where=state_is("ended"))
    await counsellor.history(cid)
    return joined


def appender(bridge: Bridge) -> Append:
    core = bridge.app[CORE]

    async def append(kind: str, fields: dict[str, Any]) -> int:
        async with core.db.session() as session, session.begin():
            return await core.log.append(session, kind, at=core.clock(), **fields)

    return append


async def test_an_honest_log_keeps_to_every_rule(bridge: Bridge, tmp_path: Path) -> None:
    await honest_driegesprek(bridge)
    status, printed = await check(bridge, tmp_path)
    assert status == 0, printed
    assert "kept to the agreed rules" in printed


@pytest.mark.parametrize(
    "case",
    [
        "join-without-grant",
        "read-after-withdrawal",
        "withdrawal-without-removal",
        "unsigned-policy",
        "self-approved-breakglass",
    ],
)
async def test_each_rule_broken_on_purpose_is_flagged(
    bridge: Bridge, tmp_path: Path, case: str
) -> None:
    seen = await honest_driegesprek(bridge)
    append = appender(bridge)
    officer = {"role": "officer", "user_id": seen["officer"]}
    where = {"conversation_id": seen["cid"]}
    match case:
        case "join-without-grant":
            index = await append(
                "officer.joined",
                {
                    **where,
                    "actor": officer,
                    "request_id": seen["request"],
                    "epoch_id": seen["epoch"],
                },
            )
            rule = "join-without-grant"
        case "read-after-withdrawal":
            index = await append(
                "transcript.read",
                {
                    **where,
                    "actor": officer,
                    "scope": "investigation",
                    "first_seq": 1,
                    "last_seq": 1,
                },
            )
            rule = "read-outside-consent"
        case "withdrawal-without-removal":
            victim = await bridge.victim()
            await (await bridge.counsellor("counsellor2")).join(victim.conversation_id)
            # A bridge joined in the log, then withdrawn with no removal after it.
            request, epoch = "r-on-purpose", "e-on-purpose"
            on = {"conversation_id": victim.conversation_id}
            await append("consent.requested", {**on, "request_id": request})
            await append("consent.granted", {**on, "request_id": request, "epoch_id": epoch})
            await append(
                "officer.joined", {**on, "actor": officer, "request_id": request, "epoch_id": epoch}
            )
            index = await append("consent.withdrawn", {**on, "request_id": request})
            await append("conversation.closed", on)
            rule = "withdrawal-without-removal"
        case "self-approved-breakglass":
            counsellor = {"role": "counsellor", "user_id": "c-on-purpose"}
            asked = {**where, "breakglass_id": "b-on-purpose", "category": "acute_danger"}
            await append("breakglass.requested", {**asked, "actor": counsellor})
            index = await append("breakglass.approved", {**asked, "actor": counsellor})
            rule = "breakglass-not-by-a-second-person"
        case _:
            index = await append(
                "policy.changed", {"version": "by-hand", "serial": 9, "sha256": "x"}
            )
            rule = "policy-not-signed-by-both"
    status, printed = await check(bridge, tmp_path)
    assert status == 1, printed
    assert f"- index {index} ({rule};" in printed
    assert printed.count("\n- index ") == 1  # that breach, and nothing of the honest part


async def test_a_long_check_shows_progress_on_a_terminal_and_nothing_in_a_script(
    bridge: Bridge, tmp_path: Path
) -> None:
    await honest_driegesprek(bridge)
    export = tmp_path / "log.jsonl"
    token = await bridge.token("auditor")
    status, out, err = await bridge_cli(
        None, "audit", "export", "--url", bridge.url, f"--token={token}", "--out", str(export)
    )
    assert status == 0 and err == "", out + err  # a pipe: no progress
    command = [*CLI, "audit", "check", "--export", str(export)]
    piped = await asyncio.to_thread(subprocess.run, command, capture_output=True, env=cli_env(None))
    assert piped.returncode == 0 and piped.stderr == b""
    on_terminal = await asyncio.to_thread(_on_a_terminal, command)
    assert "entries verified: 1/" in on_terminal
    assert "entries checked: 1/" in on_terminal


def _on_a_terminal(command: list[str]) -> str:
    """What ``command`` writes to stderr when stderr is a terminal (a pseudo-terminal here)."""
    main, side = pty.openpty()
    try:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=side, env=cli_env(None))
        assert done.returncode == 0
        os.close(side)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the other side closed: everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(main)


async def test_the_rules_route_answers_auditors_only(bridge: Bridge) -> None:
    seen = await honest_driegesprek(bridge)
    status, answer = await http(bridge, "GET", "/api/v1/audit/check")
    assert status == 401 and answer["error"]["code"] == "unauthenticated"
    counsellor = await bridge.token("counsellor")
    status, answer = await http(bridge, "GET", "/api/v1/audit/check", token=counsellor)
    assert status == 403 and answer["error"]["code"] == "forbidden"
    auditor = await bridge.token("auditor")
    status, answer = await http(bridge, "GET", "/api/v1/audit/check", token=auditor)
    assert status == 200
    assert answer["breaches"] == [] and answer["rules"][0] == "join-without-grant"
    joined = await appender(bridge)(
        "officer.joined",
        {
            "conversation_id": "c-other",
            "actor": {"role": "officer", "user_id": seen["officer"]},
            "request_id": "r-other",
            "epoch_id": "e-other",
        },
    )
    status, answer = await http(bridge, "GET", "/api/v1/audit/check", token=auditor)
    assert [(b["rule"], b["index"], b["entries"]) for b in answer["breaches"]] == [
        ("join-without-grant", joined, [joined])
    ]
    assert answer["size"] == joined + 1
