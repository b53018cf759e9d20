"""The policy loader (bridge/policy/loader.py): the packaged werkafspraken and malformed files.

DESIGN.md, "Roles and scopes": the policy is data, loaded from a versioned file whose hash is
logged; a malformed file is refused (``PolicyError``) so the bridge never starts with it.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import resources
from pathlib import Path

import pytest

from bridge.domain.consent.texts import LANGS as TEXT_LANGS
from bridge.domain.consent.texts import PURPOSES, ConsentTexts
from bridge.policy.loader import BRIDGE_STATES, ROLES, Policy, PolicyError, load_policy

CARE = ("care",)
BOTH = ("care", "investigation")

VALID = """\
version = "test-1"
serial = 3

[consent]
prompt_expiry_seconds = 900
invite_expiry_seconds = 1800

[consent_texts.report]
nl = { version = "report-nl-7", sha256 = "abc" }

[breakglass]
categories = ["acute_danger", "minor_at_risk"]
approver_orgs = ["fier"]

[history]
victim_may_share = false

[audience.none]
victim = [["care"]]
counsellor = [["care"]]
officer = []

[audience.proposed]
victim = [["care"]]
counsellor = [["care"]]
officer = []

[audience.granted]
victim = [["care"]]
counsellor = [["care"]]
officer = []

[audience.joined]
victim = [["care"], ["care", "investigation"]]
counsellor = [["care"], ["care", "investigation"]]
officer = [["care", "investigation"]]

[audience.paused]
victim = [["care"]]
counsellor = [["care"]]
officer = []

[needs_note]
roles = ["counsellor"]
states = ["granted", "joined"]

[retention]
care_days = 365
investigation_days = 730
"""


def _variant(old: str, new: str) -> str:
    """VALID with ``old`` replaced once; fails loudly if ``old`` is not there."""
    assert VALID.count(old) == 1, f"{old!r} must occur exactly once in VALID"
    return VALID.replace(old, new)


def _section(state: str) -> str:
    start = VALID.index(f"[audience.{state}]")
    return VALID[start : VALID.index("\n\n", start) + 2]


def _load(tmp_path: Path, text: str | bytes) -> Policy:
    path = tmp_path / "policy.toml"
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return load_policy(path)


def _b64u_sha256(raw: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode("ascii")


# --- the packaged default ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy()


def test_default_policy_loads_with_a_version(default: Policy) -> None:
    assert isinstance(default.version, str) and default.version


def test_default_policy_keeps_history_in_care(default: Policy) -> None:
    # DOMAIN.md, question 6: sharing earlier messages is off unless the policy allows it.
    assert default.victim_may_share_history is False


def test_default_policy_expiry_times(default: Policy) -> None:
    assert default.prompt_expiry_seconds == 900
    assert default.invite_expiry_seconds == 1800


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("state", [s for s in BRIDGE_STATES if s != "joined"])
def test_default_policy_opens_investigation_only_when_joined(
    default: Policy, role: str, state: str
) -> None:
    assert not default.allows(role, state, BOTH)


@pytest.mark.parametrize("role", ROLES)
def test_default_policy_lets_everyone_address_investigation_when_joined(
    default: Policy, role: str
) -> None:
    assert default.allows(role, "joined", BOTH)


@pytest.mark.parametrize("role", ["victim", "counsellor"])
@pytest.mark.parametrize("state", BRIDGE_STATES)
def test_default_policy_allows_care_only_for_victim_and_counsellor(
    default: Policy, role: str, state: str
) -> None:
    assert default.allows(role, state, CARE)


@pytest.mark.parametrize("state", BRIDGE_STATES)
def test_default_policy_officer_sends_only_care_and_investigation(
    default: Policy, state: str
) -> None:
    # DESIGN.md, Roles and scopes: "officer messages are always {care, investigation}".
    assert not default.allows("officer", state, CARE)
    assert default.allows("officer", state, BOTH) is (state == "joined")


def test_default_policy_needs_note_is_the_counsellors_once_granted(default: Policy) -> None:
    assert default.needs_note_roles == {"counsellor"}
    assert default.needs_note_states == {"granted", "joined"}
    assert default.allows_needs_note("counsellor", "granted")
    assert not default.allows_needs_note("victim", "joined")
    assert not default.allows_needs_note("counsellor", "proposed")


def test_default_policy_approves_every_packaged_consent_text(default: Policy) -> None:
    texts = ConsentTexts()
    for purpose in PURPOSES:
        for lang in TEXT_LANGS:
            text = texts.get(purpose, lang)
            assert default.approves_text(purpose, lang, text.version, text.sha256), text.version
    assert len(default.consent_texts) == len(PURPOSES) * len(TEXT_LANGS)


def test_default_policy_lets_fiers_supervisors_decide_every_meldcode_category(
    default: Policy,
) -> None:
    assert default.breakglass_categories == ("acute_danger", "minor_at_risk", "other_victims")
    assert default.breakglass_approver_orgs == {"fier"}


def test_default_policy_hash_is_b64u_sha256_of_the_file(default: Policy) -> None:
    raw = resources.files("bridge.policy").joinpath("default.toml").read_bytes()
    assert default.sha256 == _b64u_sha256(raw)
    assert len(default.sha256) == 43 and "=" not in default.sha256


# --- a policy file -------------------------------------------------------------------------------


def test_valid_policy_file_loads(tmp_path: Path) -> None:
    policy = _load(tmp_path, VALID)
    assert policy.version == "test-1"
    assert policy.serial == 3
    assert policy.sha256 == _b64u_sha256(VALID.encode())
    assert policy.care_retention_days == 365
    assert policy.investigation_retention_days == 730
    assert policy.consent_texts == {("report", "nl"): ("report-nl-7", "abc")}
    assert policy.breakglass_categories == ("acute_danger", "minor_at_risk")
    assert policy.breakglass_approver_orgs == {"fier"}
    assert policy.approves_text("report", "nl", "report-nl-7", "abc")
    assert not policy.approves_text("report", "nl", "report-nl-7", "abd")
    assert not policy.approves_text("informational", "nl", "report-nl-7", "abc")


def test_a_policy_may_approve_no_consent_text_at_all(tmp_path: Path) -> None:
    text = _variant(
        '[consent_texts.report]\nnl = { version = "report-nl-7", sha256 = "abc" }\n',
        "[consent_texts]\n",
    )
    assert _load(tmp_path, text).consent_texts == {}


def test_policy_hash_changes_with_any_byte(tmp_path: Path) -> None:
    first = _load(tmp_path, VALID).sha256
    second = _load(tmp_path, VALID + "# a comment\n").sha256
    assert first != second


def test_policy_may_allow_history_sharing(tmp_path: Path) -> None:
    text = _variant("victim_may_share = false", "victim_may_share = true")
    assert _load(tmp_path, text).victim_may_share_history is True


MALFORMED = {
    "not-toml": "version = \n[consent",
    "not-utf8": b'version = "\xff"\n',
    "empty-file": "",
    "version-missing": _variant('version = "test-1"\n', ""),
    "version-empty": _variant('version = "test-1"', 'version = ""'),
    "version-not-a-string": _variant('version = "test-1"', "version = 1"),
    "serial-missing": _variant("serial = 3\n", ""),
    "breakglass-missing": _variant(
        '[breakglass]\ncategories = ["acute_danger", "minor_at_risk"]\napprover_orgs = ["fier"]\n',
        "",
    ),
    "breakglass-unknown-category": _variant('"minor_at_risk"]', '"minor_at_risk", "curiosity"]'),
    "breakglass-no-category": _variant(
        'categories = ["acute_danger", "minor_at_risk"]', "categories = []"
    ),
    "breakglass-unknown-org": _variant('approver_orgs = ["fier"]', 'approver_orgs = ["audit"]'),
    "breakglass-no-org": _variant('approver_orgs = ["fier"]', "approver_orgs = []"),
    "consent-texts-missing": _variant(
        '[consent_texts.report]\nnl = { version = "report-nl-7", sha256 = "abc" }\n', ""
    ),
    "consent-text-not-a-table": _variant(
        'nl = { version = "report-nl-7", sha256 = "abc" }', 'nl = "report-nl-7"'
    ),
    "consent-text-without-hash": _variant(
        'nl = { version = "report-nl-7", sha256 = "abc" }', 'nl = { version = "report-nl-7" }'
    ),
    "consent-text-empty-version": _variant('version = "report-nl-7"', 'version = ""'),
    "consent-texts-purpose-not-a-table": _variant(
        '[consent_texts.report]\nnl = { version = "report-nl-7", sha256 = "abc" }\n',
        "[consent_texts]\nreport = 5\n",
    ),
    "serial-zero": _variant("serial = 3", "serial = 0"),
    "serial-not-a-number": _variant("serial = 3", 'serial = "3"'),
    "state-missing": VALID.replace(_section("paused"), ""),
    "state-none-missing": VALID.replace(_section("none"), ""),
    "role-missing": _variant(
        '[audience.joined]\nvictim = [["care"], ["care", "investigation"]]\n', "[audience.joined]\n"
    ),
    "unknown-role": _variant("[audience.none]\n", '[audience.none]\nauditor = [["care"]]\n'),
    "audience-investigation-alone": _variant(
        'officer = [["care", "investigation"]]', 'officer = [["investigation"]]'
    ),
    "audience-unsorted": _variant(
        'officer = [["care", "investigation"]]', 'officer = [["investigation", "care"]]'
    ),
    "audience-unknown-scope": _variant(
        'officer = [["care", "investigation"]]', 'officer = [["care", "police"]]'
    ),
    "audience-not-a-list": _variant('officer = [["care", "investigation"]]', 'officer = ["care"]'),
    "audience-rules-not-a-list": _variant('officer = [["care", "investigation"]]', "officer = 5"),
    "audience-not-a-table": VALID[: VALID.index("[audience.none]")].replace(
        'version = "test-1"\n', 'version = "test-1"\naudience = 5\n'
    )
    + VALID[VALID.index("[needs_note]") :],
    "consent-not-a-table": _variant(
        "[consent]\nprompt_expiry_seconds = 900\ninvite_expiry_seconds = 1800\n",
        "",
    ).replace('version = "test-1"\n', 'version = "test-1"\nconsent = 5\n'),
    "history-not-a-table": _variant("[history]\nvictim_may_share = false\n", "").replace(
        'version = "test-1"\n', 'version = "test-1"\nhistory = "off"\n'
    ),
    "prompt-expiry-zero": _variant("prompt_expiry_seconds = 900", "prompt_expiry_seconds = 0"),
    "invite-expiry-negative": _variant(
        "invite_expiry_seconds = 1800", "invite_expiry_seconds = -1"
    ),
    "prompt-expiry-missing": _variant("prompt_expiry_seconds = 900\n", ""),
    "prompt-expiry-bool": _variant("prompt_expiry_seconds = 900", "prompt_expiry_seconds = true"),
    "invite-expiry-float": _variant(
        "invite_expiry_seconds = 1800", "invite_expiry_seconds = 1800.0"
    ),
    "invite-expiry-string": _variant(
        "invite_expiry_seconds = 1800", 'invite_expiry_seconds = "1800"'
    ),
    "retention-zero": _variant("care_days = 365", "care_days = 0"),
    "retention-bool": _variant("investigation_days = 730", "investigation_days = false"),
    "history-share-missing": _variant("victim_may_share = false\n", ""),
    "history-share-string": _variant("victim_may_share = false", 'victim_may_share = "no"'),
    "needs-note-unknown-state": _variant(
        'states = ["granted", "joined"]', 'states = ["granted", "everywhere"]'
    ),
    "needs-note-before-grant": _variant(
        'states = ["granted", "joined"]', 'states = ["proposed", "joined"]'
    ),
    "needs-note-unknown-role": _variant('roles = ["counsellor"]', 'roles = ["auditor"]'),
    "needs-note-roles-nested": _variant('roles = ["counsellor"]', 'roles = [["counsellor"]]'),
    # DESIGN.md, "Roles and scopes": officer messages are always care + investigation.
    "officer-care-only": _variant(
        'officer = [["care", "investigation"]]', 'officer = [["care"], ["care", "investigation"]]'
    ),
}


@pytest.mark.parametrize("text", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_policy_is_refused(tmp_path: Path, text: str | bytes) -> None:
    with pytest.raises(PolicyError):
        _load(tmp_path, text)


@pytest.mark.parametrize("state", ["none", "proposed", "granted", "paused"])
@pytest.mark.parametrize("role", ROLES)
def test_investigation_outside_joined_is_refused(tmp_path: Path, state: str, role: str) -> None:
    """DESIGN.md principle 1: no officer without consent, so no investigation audience before
    an officer joined, whatever the file says."""
    section = _section(state)
    lines = section.splitlines(keepends=True)
    opened = [
        f'{role} = [["care"], ["care", "investigation"]]\n'
        if line.startswith(f"{role} =")
        else line
        for line in lines
    ]
    text = VALID.replace(section, "".join(opened))
    assert text != VALID
    with pytest.raises(PolicyError, match="investigation"):
        _load(tmp_path, text)


def test_missing_policy_file_is_not_silently_replaced_by_the_default(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_policy(tmp_path / "absent.toml")
