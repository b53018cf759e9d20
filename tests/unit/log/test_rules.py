"""The agreed rules over a log's entries (``bridge/log/rules.py``), on entry sequences written
here: each rule kept, and each broken the ways an auditor must catch."""

from __future__ import annotations

from typing import Any

import pytest
from nacl.signing import SigningKey

from bridge.log.rules import check_rules
from bridge.policy.loader import default_text, parse_policy
from bridge.policy.signed import sign_policy, signing_vkey

FIER, AVIM = SigningKey(b"f" * 32), SigningKey(b"a" * 32)
OFFICER = {"role": "officer", "user_id": "o1"}
OTHER_OFFICER = {"role": "officer", "user_id": "o2"}
C = {"conversation": "c1"}
R = {"request_id": "r1"}


def keys() -> list[dict[str, Any]]:
    return [
        {"kind": "policy_key.registered", "org": "fier", "vkey": signing_vkey("fier", FIER)},
        {"kind": "policy_key.registered", "org": "avim", "vkey": signing_vkey("avim", AVIM)},
    ]


def policy_entry(note: str) -> dict[str, Any]:
    policy = parse_policy(default_text().encode())
    return {"kind": "policy.changed", "note": note, "sha256": policy.sha256, "serial": 1}


def both() -> str:
    return sign_policy(sign_policy(default_text(), "fier", FIER), "avim", AVIM)


def joined(retain: bool = False) -> list[dict[str, Any]]:
    return [
        {"kind": "consent.requested", **C, **R},
        {
            "kind": "consent.granted",
            **C,
            **R,
            "epoch_id": "e1",
            "grant": {"choices": {"retain_for_case_file": retain}},
        },
        {"kind": "invite.accepted", **C, "actor": OFFICER},
        {"kind": "officer.joined", **C, **R, "epoch_id": "e1", "actor": OFFICER},
    ]


def read(actor: dict[str, str] = OFFICER, kind: str = "transcript.read") -> dict[str, Any]:
    return {"kind": kind, **C, "actor": actor, "scope": "investigation"}


WITHDRAWN = [
    {"kind": "consent.withdrawn", **C, **R, "actor": {"role": "victim"}},
    {"kind": "officer.removed", **C, **R, "officer": OFFICER},
]


def rules(entries: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(b.rule, b.index) for b in check_rules(enumerate(entries))]


def test_an_honest_bridge_breaks_no_rule() -> None:
    honest = [
        *keys(),
        policy_entry(both()),
        *joined(),
        read(),
        {"kind": "bridge.paused", **C, **R},
        read(),
        {"kind": "bridge.resumed", **C, **R},
        *WITHDRAWN,
        {"kind": "transcript.read", **C, "actor": {"role": "counsellor"}, "scope": "care"},
    ]
    assert rules(honest) == []


def test_a_join_with_no_grant_or_after_it_ended_or_for_another_epoch() -> None:
    no_request = [{"kind": "officer.joined", **C, **R, "epoch_id": "e1", "actor": OFFICER}]
    assert rules(no_request) == [("join-without-grant", 0)]
    proposed_only = [{"kind": "consent.requested", **C, **R}, *no_request]
    assert rules(proposed_only) == [("join-without-grant", 1)]
    declined = [*joined()[:2], {"kind": "consent.expired", **C, **R}, joined()[3]]
    assert rules(declined) == [("join-without-grant", 3)]
    other_epoch = [*joined()[:2], {**joined()[3], "epoch_id": "e2"}]
    assert rules(other_epoch) == [("join-without-grant", 2)]


def test_reads_of_the_police_part_only_by_its_officer_while_consent_holds() -> None:
    assert rules([*joined(), read(OTHER_OFFICER)]) == [("read-outside-consent", 4)]
    assert rules([*joined(), *WITHDRAWN, read()]) == [("read-outside-consent", 6)]
    assert rules([*joined()[:2], read()]) == [("read-outside-consent", 2)]
    assert rules([read()]) == [("read-outside-consent", 0)]


def test_a_grant_that_retains_for_a_case_file_lets_its_officer_export_after_the_end() -> None:
    after = [*joined(retain=True), *WITHDRAWN, read(kind="transcript.exported")]
    assert rules(after) == []
    assert rules([*after, read(OTHER_OFFICER, "transcript.exported")]) == [
        ("read-outside-consent", 7)
    ]


def test_a_withdrawal_must_remove_the_officer_in_its_own_transaction() -> None:
    late = [*joined(), WITHDRAWN[0], read(), WITHDRAWN[1]]
    assert ("withdrawal-without-removal", 4) in rules(late)
    assert rules([*joined(), WITHDRAWN[0]]) == [("withdrawal-without-removal", 4)]
    # With no officer present (it left before), there is nobody to remove.
    left = [*joined(), {"kind": "officer.left", **C, **R}, WITHDRAWN[0]]
    assert rules(left) == []


@pytest.mark.parametrize(
    ("note", "registered"),
    [
        (default_text(), True),
        (sign_policy(default_text(), "fier", FIER), True),
        (sign_policy(default_text(), "avim", AVIM), True),
        (both(), False),
        (both().replace("care_days = 365", "care_days = 366"), True),
    ],
    ids=["unsigned", "fier-only", "avim-only", "keys-never-registered", "changed-after-signing"],
)
def test_a_policy_change_without_both_valid_signatures_is_flagged(
    note: str, registered: bool
) -> None:
    entries = [*(keys() if registered else []), policy_entry(note)]
    assert rules(entries) == [("policy-not-signed-by-both", len(entries) - 1)]


def test_a_policy_change_needs_its_text_and_the_hash_it_names() -> None:
    assert rules([*keys(), {"kind": "policy.changed", "sha256": "x", "serial": 1}]) == [
        ("policy-not-signed-by-both", 2)
    ]
    assert rules([*keys(), {**policy_entry(both()), "sha256": "other"}]) == [
        ("policy-not-signed-by-both", 2)
    ]


def test_a_key_revoked_before_the_change_signs_nothing() -> None:
    revoked = {"kind": "policy_key.revoked", "org": "avim", "vkey": signing_vkey("avim", AVIM)}
    assert rules([*keys(), revoked, policy_entry(both())]) == [("policy-not-signed-by-both", 3)]
    assert rules([*keys(), policy_entry(both()), revoked]) == []


COUNSELLOR = {"role": "counsellor", "user_id": "c1"}
SUPERVISOR = {"role": "supervisor", "user_id": "s1"}
ASKED = {"kind": "breakglass.requested", **C, "breakglass_id": "b1", "actor": COUNSELLOR}


def decided(
    kind: str = "breakglass.approved", actor: dict[str, str] = SUPERVISOR
) -> dict[str, Any]:
    return {"kind": kind, **C, "breakglass_id": "b1", "actor": actor}


def test_a_break_glass_decided_by_a_second_person_breaks_no_rule() -> None:
    assert rules([ASKED, decided()]) == []
    assert rules([ASKED, decided("breakglass.refused")]) == []


def test_a_break_glass_decided_by_its_own_requester_is_flagged() -> None:
    assert rules([ASKED, decided(actor=COUNSELLOR)]) == [("breakglass-not-by-a-second-person", 1)]
    assert rules([ASKED, decided(actor={"role": "system"})]) == [
        ("breakglass-not-by-a-second-person", 1)
    ]


def test_a_break_glass_decision_needs_its_own_open_request() -> None:
    assert rules([decided()]) == [("breakglass-not-by-a-second-person", 0)]
    twice = [ASKED, decided(), decided("breakglass.refused")]
    assert rules(twice) == [("breakglass-not-by-a-second-person", 2)]
    elsewhere = [ASKED, {**decided(), "conversation": "c2"}]
    assert rules(elsewhere) == [("breakglass-not-by-a-second-person", 1)]


def disclosed(breakglass_id: str | None = "b1", basis: str = "meldcode") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "disclosure.recorded",
        **C,
        "actor": COUNSELLOR,
        "agency": "veilig_thuis",
        "basis": basis,
        "shared": ["concerns"],
    }
    if breakglass_id is not None:
        entry["breakglass_id"] = breakglass_id
    return entry


def test_a_meldcode_disclosure_rests_on_an_approved_break_glass_of_its_conversation() -> None:
    assert rules([ASKED, decided(), disclosed()]) == []
    assert rules([disclosed(None, "agreement")]) == []  # another basis cites nothing
    assert rules([ASKED, disclosed()]) == [("disclosure-without-basis", 1)]
    refused = [ASKED, decided("breakglass.refused"), disclosed()]
    assert rules(refused) == [("disclosure-without-basis", 2)]
    self_approved = [ASKED, decided(actor=COUNSELLOR), disclosed()]
    assert rules(self_approved) == [
        ("breakglass-not-by-a-second-person", 1),
        ("disclosure-without-basis", 2),
    ]
    elsewhere = [ASKED, decided(), {**disclosed(), "conversation": "c2"}]
    assert rules(elsewhere) == [("disclosure-without-basis", 2)]
