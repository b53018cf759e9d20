"""Who an invite goes to (bridge/domain/consent/invites.py) against PROTOCOL.md, "Preferences":

``officer_gender`` is a hard filter; ``same_officer`` sends the invite to the previous officer
alone while it is on duty, else to all matching; ``region`` first, then all regions; with no
matching officer on duty nobody is invited (the invite waits until it expires).
"""

from __future__ import annotations

import pytest

from bridge.domain.consent.invites import invite_recipients
from bridge.domain.delivery import OnDutyOfficer

ANNA = OnDutyOfficer("anna", "Noord-Holland", "female")
BRAM = OnDutyOfficer("bram", "Noord-Holland", "male")
CARO = OnDutyOfficer("caro", "Limburg", "female")
DAAN = OnDutyOfficer("daan", "Limburg", "male")
EVI = OnDutyOfficer("evi", None, None)  # no region or gender on record
ON_DUTY = [DAAN, ANNA, EVI, CARO, BRAM]  # deliberately not in id order


@pytest.mark.parametrize(
    ("gender", "expected"),
    [
        ("female", ["anna", "caro"]),
        ("male", ["bram", "daan"]),
        ("any", ["anna", "bram", "caro", "daan", "evi"]),
        (None, ["anna", "bram", "caro", "daan", "evi"]),
    ],
)
def test_gender_preference_filters_officers(gender: str | None, expected: list[str]) -> None:
    assert invite_recipients({"officer_gender": gender}, ON_DUTY, None) == expected


def test_no_preferences_invites_every_officer_on_duty() -> None:
    assert invite_recipients({}, ON_DUTY, None) == ["anna", "bram", "caro", "daan", "evi"]


def test_gender_is_a_hard_filter_without_fallback() -> None:
    assert invite_recipients({"officer_gender": "female"}, [BRAM, DAAN, EVI], None) == []


def test_region_preference_invites_that_region_only() -> None:
    assert invite_recipients({"region": "Limburg"}, ON_DUTY, None) == ["caro", "daan"]


def test_region_without_anyone_on_duty_falls_back_to_all_regions() -> None:
    assert invite_recipients({"region": "Zeeland-West-Brabant"}, ON_DUTY, None) == [
        "anna",
        "bram",
        "caro",
        "daan",
        "evi",
    ]


def test_region_and_gender_together_pick_matching_officers_of_that_region() -> None:
    prefs = {"region": "Limburg", "officer_gender": "female"}
    assert invite_recipients(prefs, ON_DUTY, None) == ["caro"]


def test_region_fallback_keeps_the_gender_filter() -> None:
    # Noord-Holland has only a male officer on duty here: fall back to female officers anywhere.
    prefs = {"region": "Noord-Holland", "officer_gender": "female"}
    assert invite_recipients(prefs, [BRAM, CARO, DAAN], None) == ["caro"]


def test_same_officer_on_duty_is_invited_alone() -> None:
    assert invite_recipients({"same_officer": True}, ON_DUTY, "daan") == ["daan"]


def test_same_officer_wins_over_region() -> None:
    prefs = {"same_officer": True, "region": "Noord-Holland"}
    assert invite_recipients(prefs, ON_DUTY, "daan") == ["daan"]


def test_same_officer_off_duty_falls_back_to_all_matching() -> None:
    on_duty = [ANNA, BRAM, CARO]
    assert invite_recipients({"same_officer": True}, on_duty, "daan") == ["anna", "bram", "caro"]


def test_same_officer_off_duty_falls_back_to_region_first() -> None:
    prefs = {"same_officer": True, "region": "Noord-Holland"}
    assert invite_recipients(prefs, [ANNA, BRAM, CARO], "daan") == ["anna", "bram"]


def test_same_officer_of_the_wrong_gender_is_not_invited() -> None:
    prefs = {"same_officer": True, "officer_gender": "female"}
    assert invite_recipients(prefs, ON_DUTY, "daan") == ["anna", "caro"]


def test_same_officer_without_a_previous_officer_falls_back() -> None:
    assert invite_recipients({"same_officer": True}, [ANNA, CARO], None) == ["anna", "caro"]


@pytest.mark.parametrize("same", [False, None])
def test_previous_officer_is_ignored_unless_same_officer_is_asked(same: bool | None) -> None:
    assert invite_recipients({"same_officer": same}, [ANNA, CARO], "anna") == ["anna", "caro"]


def test_officer_with_several_devices_is_invited_once() -> None:
    twice = [CARO, ANNA, OnDutyOfficer("anna", "Noord-Holland", "female"), CARO]
    assert invite_recipients({}, twice, None) == ["anna", "caro"]


def test_recipients_are_sorted() -> None:
    result = invite_recipients({}, list(reversed(ON_DUTY)), None)
    assert result == sorted(result)
    assert len(result) == len(set(result)) == 5


@pytest.mark.parametrize(
    "preferences",
    [
        {},
        {"officer_gender": "female"},
        {"officer_gender": "any"},
        {"region": "Limburg"},
        {"same_officer": True},
    ],
    ids=["none", "female", "any", "region", "same_officer"],
)
def test_nobody_on_duty_invites_nobody(preferences: dict[str, object]) -> None:
    assert invite_recipients(preferences, [], "anna") == []
