"""Read and check a policy's text; the per-message path only reads the result.

Whether a text may be put in force (both organisations' signatures, newer than the one in force)
is :mod:`bridge.policy.signed`'s question; this module answers what the text says.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from bridge.crypto import b64u_encode, sha256

__all__ = [
    "BRIDGE_STATES",
    "ROLES",
    "Policy",
    "PolicyError",
    "default_text",
    "load_policy",
    "parse_policy",
]

ROLES: Final = ("victim", "counsellor", "officer")
# "none": no bridge request in force. The rest are the consent states of DESIGN.md that the
# audience rules speak of; declined, ended and expired count as "none".
BRIDGE_STATES: Final = ("none", "proposed", "granted", "joined", "paused")
_AUDIENCES: Final = (("care",), ("care", "investigation"))


class PolicyError(ValueError):
    """A policy that is malformed, or may not be put in force (unsigned, signed by one side,
    older than the one in force); nothing is changed."""


@dataclass(frozen=True)
class Policy:
    version: str
    # Each agreed version has a higher serial than the one before: an older text is refused.
    serial: int
    sha256: str
    prompt_expiry_seconds: int
    invite_expiry_seconds: int
    victim_may_share_history: bool
    audiences: dict[tuple[str, str], frozenset[tuple[str, ...]]]
    needs_note_roles: frozenset[str]
    needs_note_states: frozenset[str]
    # (purpose, lang) -> (version, sha256) of each consent text both organisations approved: a
    # bridge is proposed, and granted, only with one of these.
    consent_texts: dict[tuple[str, str], tuple[str, str]]
    # Break-glass (meldcode): the categories a counsellor may name, and the organisations whose
    # supervisors may decide a request (never the one who asked).
    breakglass_categories: tuple[str, ...]
    breakglass_approver_orgs: frozenset[str]
    care_retention_days: int
    investigation_retention_days: int

    def allows(self, role: str, state: str, audience: tuple[str, ...]) -> bool:
        return audience in self.audiences[(role, state)]

    def allows_needs_note(self, role: str, state: str) -> bool:
        return role in self.needs_note_roles and state in self.needs_note_states

    def approves_text(self, purpose: str, lang: str, version: str, sha256: str) -> bool:
        return self.consent_texts.get((purpose, lang)) == (version, sha256)


def _positive_int(table: dict[str, Any], key: str) -> int:
    value = table.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise PolicyError(f"{key} must be a positive integer")
    return value


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise PolicyError(f"[{name}] must be a table")
    return table


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of strings")
    return value


def _strings_lists(value: object, where: str) -> list[list[str]]:
    if not isinstance(value, list):
        raise PolicyError(f"{where} must be a list of audiences")
    return [_strings(item, where) for item in value]


def _consent_texts(data: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    if "consent_texts" not in data:
        raise PolicyError("[consent_texts] must name the consent texts in force (it may be empty)")
    approved: dict[tuple[str, str], tuple[str, str]] = {}
    for purpose, langs in _table(data, "consent_texts").items():
        if not isinstance(langs, dict):
            raise PolicyError(f"consent_texts.{purpose} must be a table of languages")
        for lang, ref in langs.items():
            if (
                not isinstance(ref, dict)
                or set(ref) != {"version", "sha256"}
                or not all(isinstance(value, str) and value for value in ref.values())
            ):
                raise PolicyError(f"consent_texts.{purpose}.{lang} must be {{ version, sha256 }}")
            approved[(purpose, lang)] = (ref["version"], ref["sha256"])
    return approved


_BREAKGLASS_CATEGORIES: Final = ("acute_danger", "minor_at_risk", "other_victims")


def _breakglass(data: dict[str, Any]) -> dict[str, Any]:
    table = _table(data, "breakglass")
    categories = _strings(table.get("categories"), "breakglass.categories")
    orgs = _strings(table.get("approver_orgs"), "breakglass.approver_orgs")
    if not categories or not set(categories) <= set(_BREAKGLASS_CATEGORIES):
        raise PolicyError(
            f"breakglass.categories must name some of {', '.join(_BREAKGLASS_CATEGORIES)}"
        )
    if not orgs or not set(orgs) <= {"fier", "avim"}:
        raise PolicyError("breakglass.approver_orgs must name fier, avim or both")
    return {"breakglass_categories": tuple(categories), "breakglass_approver_orgs": frozenset(orgs)}


def parse_policy(raw: bytes) -> Policy:
    """What the policy text ``raw`` says; PolicyError naming the first thing wrong."""
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"not a TOML file: {exc}") from None
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise PolicyError("version must be a non-empty string")
    consent, history, table = (_table(data, name) for name in ("consent", "history", "audience"))
    share = history.get("victim_may_share")
    if not isinstance(share, bool):
        raise PolicyError("history.victim_may_share must be true or false")
    audiences: dict[tuple[str, str], frozenset[tuple[str, ...]]] = {}
    for state in BRIDGE_STATES:
        rules = table.get(state)
        if not isinstance(rules, dict) or set(rules) != set(ROLES):
            raise PolicyError(f"audience.{state} must name exactly the roles {', '.join(ROLES)}")
        for role in ROLES:
            listed = _strings_lists(rules[role], f"audience.{state}.{role}")
            allowed = {tuple(a) for a in listed}
            if len(allowed) != len(listed) or not allowed <= set(_AUDIENCES):
                raise PolicyError(f"audience.{state}.{role} holds an audience that does not exist")
            # Principle 1: nothing reaches the investigation scope without a joined officer.
            if state != "joined" and ("care", "investigation") in allowed:
                raise PolicyError(f"audience.{state} may not open the investigation scope")
            # DESIGN.md, "Roles and scopes": officer messages are always care + investigation.
            if role == "officer" and ("care",) in allowed:
                raise PolicyError("an officer's messages always go to care and investigation")
            audiences[(role, state)] = frozenset(allowed)
    needs_note = _table(data, "needs_note")
    roles = _strings(needs_note.get("roles", []), "needs_note.roles")
    states = _strings(needs_note.get("states", []), "needs_note.states")
    if not set(roles) <= set(ROLES) or not set(states) <= {"granted", "joined"}:
        raise PolicyError("needs_note names an unknown role or a state other than granted/joined")
    retention = _table(data, "retention")
    return Policy(
        version=version,
        serial=_positive_int(data, "serial"),
        sha256=b64u_encode(sha256(raw)),
        prompt_expiry_seconds=_positive_int(consent, "prompt_expiry_seconds"),
        invite_expiry_seconds=_positive_int(consent, "invite_expiry_seconds"),
        victim_may_share_history=share,
        audiences=audiences,
        needs_note_roles=frozenset(roles),
        needs_note_states=frozenset(states),
        consent_texts=_consent_texts(data),
        **_breakglass(data),
        care_retention_days=_positive_int(retention, "care_days"),
        investigation_retention_days=_positive_int(retention, "investigation_days"),
    )


def default_text() -> str:
    """The packaged default policy's text (unsigned: the demo signs it with its own keys)."""
    return resources.files("bridge.policy").joinpath("default.toml").read_text("utf-8")


def load_policy(path: Path | None = None) -> Policy:
    """What the policy text at ``path``, or the packaged default, says (signatures unchecked)."""
    raw = default_text().encode() if path is None else path.read_bytes()
    return parse_policy(raw)
