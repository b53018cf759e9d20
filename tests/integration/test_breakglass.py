"""Break-glass under the meldcode, end to end over real sockets (DESIGN.md, "Consent"): a
counsellor asks with a category, a supervisor decides once, the victim is told in plain words,
the officer in the same chat learns nothing, and the log holds who asked and who decided, no
reason and no victim identity."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.client import Refused, SupervisorClient
from bridge.domain.access import Caller
from bridge.domain.auth import Principal
from bridge.domain.consent.breakglass import Breakglass
from bridge.domain.machine import BreakglassEvent
from bridge.edges.app import CORE
from bridge.errors import Forbidden
from bridge.protocol import BreakglassRef
from harness import Bridge, audit_verify, db_rows, driegesprek, policy_text, query


async def supervisor(bridge: Bridge, username: str = "supervisor") -> SupervisorClient:
    if username not in bridge.passwords:
        await bridge.add_user(username, "supervisor", "fier")
    client = await SupervisorClient.login(bridge.url, username, bridge.passwords[username])
    bridge.clients.append(client)
    await client.connect()
    return client


def entries(bridge: Bridge, prefix: str) -> list[dict[str, Any]]:
    rows = query(bridge.data_dir, "SELECT entry FROM log_entries ORDER BY idx")
    return [e for e in (json.loads(r) for (r,) in rows) if e["kind"].startswith(prefix)]


async def test_a_supervisor_approves_and_the_victim_is_told_while_the_officer_learns_nothing(
    bridge: Bridge,
) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    boss = await supervisor(bridge)
    cid = victim.conversation_id
    officer_events = len(officer.received)

    asked = await counsellor.request_breakglass(cid, "acute_danger")
    told = await boss.next_event("breakglass.requested")
    assert told == {
        "breakglass_id": asked,
        "conversation_id": cid,
        "category": "acute_danger",
        "state": "requested",
    }
    assert [r["breakglass_id"] for r in await boss.breakglass_requests()] == [asked]

    decided = await boss.approve(asked)
    assert decided["state"] == "approved"
    assert (await counsellor.next_event("breakglass.decided"))["state"] == "approved"
    shown = await victim.next_event("notice")
    assert shown["notice"].startswith("Je hulpverlener heeft iets gemeld, omdat de meldcode")
    assert await boss.breakglass_requests() == []

    # The officer in the same chat: nothing of it, not even the notice.
    await victim.send("Gaat het verder?")
    await officer.next_event("message")
    later = [name for name, _ in officer.received[officer_events:]]
    assert "notice" not in later and not any(name.startswith("breakglass") for name in later)

    logged = entries(bridge, "breakglass.")
    assert [e["kind"] for e in logged] == ["breakglass.requested", "breakglass.approved"]
    assert logged[0]["actor"] == {"role": "counsellor", "user_id": counsellor.session["user_id"]}
    assert logged[1]["actor"] == {"role": "supervisor", "user_id": boss.session["user_id"]}
    assert {e["category"] for e in logged} == {"acute_danger"}
    assert all(
        set(e)
        <= {"kind", "at", "prev_checkpoint", "conversation", "actor", "breakglass_id", "category"}
        for e in logged
    )
    status, printed = await audit_verify(bridge, bridge.url)
    assert status == 0, printed


async def test_a_refusal_is_told_to_the_counsellor_and_not_to_the_victim(bridge: Bridge) -> None:
    victim, counsellor, _officer = await driegesprek(bridge)
    boss = await supervisor(bridge)
    asked = await counsellor.request_breakglass(victim.conversation_id, "other_victims")
    assert (await boss.refuse(asked))["state"] == "refused"
    assert (await counsellor.next_event("breakglass.decided"))["state"] == "refused"
    assert not [name for name, _ in victim.received if name == "notice"]
    assert [e["kind"] for e in entries(bridge, "breakglass.")][-1] == "breakglass.refused"


async def refused(call: Any) -> str:
    with pytest.raises(Refused) as info:
        await call
    return str(info.value.code)


async def test_each_wrong_call_is_refused_and_changes_nothing(bridge: Bridge) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    boss = await supervisor(bridge)
    cid = victim.conversation_id
    asked = await counsellor.request_breakglass(cid, "minor_at_risk")
    other = await bridge.counsellor("counsellor2")
    before = db_rows(bridge)
    ask = {"conversation_id": cid, "category": "acute_danger"}
    cases = {
        # wrong role
        "victim asks": (victim.call("breakglass.request", ask), "forbidden"),
        "officer asks": (officer.call("breakglass.request", ask), "forbidden"),
        "counsellor approves": (
            counsellor.call("breakglass.approve", {"breakglass_id": asked}),
            "forbidden",
        ),
        "another counsellor asks": (other.request_breakglass(cid, "acute_danger"), "forbidden"),
        # malformed
        "unknown category": (
            counsellor.call("breakglass.request", {**ask, "category": "curious"}),
            "invalid",
        ),
        "no id": (boss.call("breakglass.approve", {}), "invalid"),
        # not found
        "unknown request": (boss.approve("no-such-request"), "not_found"),
    }
    for what, (call, code) in cases.items():
        assert await refused(call) == code, what
    assert db_rows(bridge) == before

    # Replayed, or decided twice: the request is decided once.
    await boss.approve(asked)
    after = db_rows(bridge)
    assert await refused(boss.approve(asked)) == "wrong_state"
    assert await refused(boss.refuse(asked)) == "wrong_state"
    assert db_rows(bridge) == after
    # A closed conversation takes no request.
    await counsellor.close(cid)
    assert await refused(counsellor.request_breakglass(cid, "acute_danger")) == "wrong_state"


async def test_a_request_is_never_decided_by_the_one_who_asked(bridge: Bridge) -> None:
    victim, counsellor, _officer = await driegesprek(bridge)
    asked = await counsellor.request_breakglass(victim.conversation_id, "acute_danger")
    # Should one person ever hold both roles, the decision still checks who asked.
    same_person = Caller(
        Principal(role="supervisor", account_id=counsellor.session["user_id"], org="fier"), None
    )
    breakglass = Breakglass(bridge.app[CORE])
    before = db_rows(bridge)
    with pytest.raises(Forbidden):
        await breakglass.decide(same_person, BreakglassRef(asked), BreakglassEvent.APPROVE)
    assert db_rows(bridge) == before


@pytest.mark.policy(
    policy_text()
    .replace('approver_orgs = ["fier"]', 'approver_orgs = ["avim"]')
    .replace(
        'categories = ["acute_danger", "minor_at_risk", "other_victims"]',
        'categories = ["acute_danger"]',
    )
)
async def test_the_policy_says_what_may_be_asked_and_whose_supervisors_decide(
    bridge: Bridge,
) -> None:
    victim, counsellor, _officer = await driegesprek(bridge)
    boss = await supervisor(bridge)
    cid = victim.conversation_id
    assert await refused(counsellor.request_breakglass(cid, "other_victims")) == "forbidden"
    asked = await counsellor.request_breakglass(cid, "acute_danger")
    before = db_rows(bridge)
    assert await refused(boss.approve(asked)) == "forbidden"  # Fier's supervisors may not
    assert db_rows(bridge) == before


async def test_the_disclosure_register_names_agency_basis_and_what_kind_was_shared(
    bridge: Bridge,
) -> None:
    victim, counsellor, officer = await driegesprek(bridge)
    boss = await supervisor(bridge)
    cid = victim.conversation_id
    asked = await counsellor.request_breakglass(cid, "minor_at_risk")
    pending = await counsellor.request_breakglass(cid, "acute_danger")
    before = db_rows(bridge)
    wrong = {
        "meldcode, not yet approved": (
            counsellor.record_disclosure(cid, "veilig_thuis", "meldcode", ["concerns"], asked),
            "wrong_state",
        ),
        "meldcode, no request named": (
            counsellor.record_disclosure(cid, "veilig_thuis", "meldcode", ["concerns"]),
            "invalid",
        ),
        "agreement naming a request": (
            counsellor.record_disclosure(cid, "politie", "agreement", ["identity"], asked),
            "invalid",
        ),
        "a kind twice": (
            counsellor.record_disclosure(cid, "politie", "agreement", ["identity", "identity"]),
            "invalid",
        ),
        "unknown request": (
            counsellor.record_disclosure(cid, "veilig_thuis", "meldcode", ["concerns"], "nope"),
            "not_found",
        ),
        "officer records": (
            officer.call(
                "disclosure.record",
                {
                    "conversation_id": cid,
                    "agency": "politie",
                    "basis": "consent",
                    "shared": ["messages"],
                },
            ),
            "forbidden",
        ),
    }
    for what, (call, code) in wrong.items():
        assert await refused(call) == code, what
    assert db_rows(bridge) == before

    await boss.approve(asked)
    index = await counsellor.record_disclosure(
        cid, "veilig_thuis", "meldcode", ["whereabouts", "concerns"], asked
    )
    entry = json.loads(
        query(bridge.data_dir, "SELECT entry FROM log_entries WHERE idx = ?", index)[0][0]
    )
    assert {k: entry[k] for k in ("kind", "agency", "basis", "shared", "breakglass_id")} == {
        "kind": "disclosure.recorded",
        "agency": "veilig_thuis",
        "basis": "meldcode",
        "shared": ["concerns", "whereabouts"],
        "breakglass_id": asked,
    }
    # Also once the conversation is closed.
    await counsellor.close(cid)
    await counsellor.record_disclosure(cid, "jeugdbescherming", "agreement", ["identity"])
    assert pending not in {e.get("breakglass_id") for e in entries(bridge, "disclosure.")}
    status, printed = await audit_verify(bridge, bridge.url)
    assert status == 0, printed
