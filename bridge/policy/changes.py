"""What one policy changes against another, as lines an admin of either organisation can read
before signing or applying it (``bridge policy check``).

Each change is a translation key of ``bridge/i18n`` (``policy.change.*``) with its old and new
value already in words; the caller renders it in the reader's language.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from bridge.i18n import notice
from bridge.policy.loader import BRIDGE_STATES, ROLES, Policy

__all__ = ["Change", "changes"]

_V = TypeVar("_V")


@dataclass(frozen=True)
class Change:
    key: str  # policy.change.<key> in the translation files
    values: dict[str, str]

    def text(self, lang: str) -> str:
        return notice(f"policy.change.{self.key}", lang, values=self.values)


def changes(old: Policy, new: Policy, lang: str) -> list[Change]:
    """Every rule ``new`` sets differently from ``old``, in the order of the policy file."""

    def word(key: str) -> str:
        return notice(f"policy.word.{key}", lang)

    def yes_no(value: bool) -> str:
        return word("yes" if value else "no")

    def listed(items: Iterable[str], prefix: str) -> str:
        names = [word(f"{prefix}.{item}") for item in sorted(items)]
        return ", ".join(names) if names else word("nobody")

    def audiences(allowed: frozenset[tuple[str, ...]]) -> str:
        names = [word("audience." + "+".join(a)) for a in sorted(allowed, key=len)]
        return "; ".join(names) if names else word("nothing")

    found: list[Change] = []

    def compare(key: str, a: _V, b: _V, say: Callable[[_V], str], **extra: str) -> None:
        if a != b:
            found.append(Change(key, {"old": say(a), "new": say(b), **extra}))

    compare("prompt_expiry_seconds", old.prompt_expiry_seconds, new.prompt_expiry_seconds, str)
    compare("invite_expiry_seconds", old.invite_expiry_seconds, new.invite_expiry_seconds, str)
    compare(
        "victim_may_share",
        old.victim_may_share_history,
        new.victim_may_share_history,
        yes_no,
    )
    for state in BRIDGE_STATES:
        for role in ROLES:
            compare(
                "audience",
                old.audiences[(role, state)],
                new.audiences[(role, state)],
                audiences,
                role=word(f"role.{role}"),
                state=word(f"state.{state}"),
            )
    compare(
        "needs_note_roles",
        old.needs_note_roles,
        new.needs_note_roles,
        lambda v: listed(v, "role"),
    )
    compare(
        "needs_note_states",
        old.needs_note_states,
        new.needs_note_states,
        lambda v: listed(v, "state"),
    )
    for purpose, lang in sorted(old.consent_texts.keys() | new.consent_texts.keys()):
        compare(
            "consent_text",
            old.consent_texts.get((purpose, lang)),
            new.consent_texts.get((purpose, lang)),
            lambda ref: ref[0] if ref else word("none"),
            purpose=word(f"purpose.{purpose}"),
            lang=lang,
        )
    compare(
        "breakglass_categories",
        old.breakglass_categories,
        new.breakglass_categories,
        lambda v: listed(v, "category"),
    )
    compare(
        "breakglass_approver_orgs",
        old.breakglass_approver_orgs,
        new.breakglass_approver_orgs,
        lambda v: listed(v, "org"),
    )
    compare("care_days", old.care_retention_days, new.care_retention_days, str)
    compare(
        "investigation_days",
        old.investigation_retention_days,
        new.investigation_retention_days,
        str,
    )
    return found
