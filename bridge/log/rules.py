"""The agreed rules, run over the log (DESIGN.md, "The log": "auditors also run the agreed rules
over it"). Integrity (:mod:`bridge.log.verify`) says the log is the one the bridge signed; these
rules say whether what it records kept to what Fier and AVIM agreed:

- ``join-without-grant``: every ``officer.joined`` follows a ``consent.granted`` of the same
  request and epoch that nothing ended since;
- ``read-outside-consent``: every read or export of an investigation scope is by the officer who
  joined, while the bridge is joined or paused, or, for a grant that chose to retain the
  transcript for a case file, after it ended;
- ``withdrawal-without-removal``: a withdrawal while an officer is present is followed, in the
  same transaction (the very next entry: one transaction's entries are appended together), by
  that officer's removal;
- ``policy-not-signed-by-both``: every ``policy.changed`` carries a policy text with a valid
  signature of Fier and of AVIM, each by a key the log registered for it and had not revoked,
  and the hash and serial the entry names;
- ``breakglass-not-by-a-second-person``: every ``breakglass.approved`` or ``breakglass.refused``
  decides a ``breakglass.requested`` of the same conversation that nobody decided before, and
  its actor is another person than the one who asked;
- ``disclosure-without-basis``: every ``disclosure.recorded`` on the meldcode basis cites a
  break-glass request of the same conversation that a second person approved.

Entries are read as logged; a conversation is followed by its pseudonym only, and nothing here
needs content. Each breach names its entries, so an auditor can look them up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.policy.loader import PolicyError
from bridge.policy.signed import open_signed

__all__ = ["RULES", "Breach", "check_rules"]

RULES = (
    "join-without-grant",
    "read-outside-consent",
    "withdrawal-without-removal",
    "policy-not-signed-by-both",
    "breakglass-not-by-a-second-person",
    "disclosure-without-basis",
)

_ENDED = ("consent.declined", "consent.expired", "bridge.ended")
_READS = ("transcript.read", "transcript.exported")


@dataclass(frozen=True)
class Breach:
    rule: str
    index: int  # the entry that breaks the rule
    entries: tuple[int, ...]  # it and the entries it is judged against
    text: str


@dataclass
class _Bridge:
    """A conversation's bridge request as the log has told it so far."""

    request_id: str
    state: str = "proposed"
    epoch_id: str | None = None
    retain: bool = False
    granted_at: int | None = None
    officer: str | None = None  # the user id of the officer present
    joined_by: str | None = None  # the officer who joined, present or not
    joined_at: int | None = None


@dataclass
class _Rules:
    breaches: list[Breach] = field(default_factory=list)
    bridges: dict[str, _Bridge] = field(default_factory=dict)  # conversation -> its last request
    # break-glass id -> (index of its request, conversation, who asked), until it is decided
    breakglass: dict[str, tuple[int, str, str | None]] = field(default_factory=dict)
    approved: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (index, conv.)
    keys: dict[str, list[str]] = field(default_factory=dict)  # org -> registered, not revoked
    # (index, conversation, request) of a withdrawal whose removal must come next
    removal_due: tuple[int, str, str] | None = None

    def breach(self, rule: str, index: int, text: str, *others: int | None) -> None:
        involved = tuple(sorted({index, *(i for i in others if i is not None)}))
        self.breaches.append(Breach(rule, index, involved, text))

    def entry(self, index: int, entry: Mapping[str, Any]) -> None:
        kind = entry.get("kind")
        conversation = entry.get("conversation")
        if self.removal_due is not None:
            self._removal(index, entry)
        if kind == "policy_key.registered":
            self.keys.setdefault(str(entry.get("org")), []).append(str(entry.get("vkey")))
        elif kind == "policy_key.revoked":
            held = self.keys.get(str(entry.get("org")), [])
            if entry.get("vkey") in held:
                held.remove(str(entry.get("vkey")))
        elif kind == "policy.changed":
            self._policy(index, entry)
        elif kind in ("breakglass.requested", "breakglass.approved", "breakglass.refused"):
            self._breakglass(index, str(kind), entry)
        elif kind == "disclosure.recorded":
            self._disclosure(index, entry)
        elif isinstance(conversation, str):
            self._conversation(index, str(kind), conversation, entry)

    def _conversation(
        self, index: int, kind: str, conversation: str, entry: Mapping[str, Any]
    ) -> None:
        request_id = entry.get("request_id")
        bridge = self.bridges.get(conversation)
        if kind == "consent.requested" and isinstance(request_id, str):
            self.bridges[conversation] = _Bridge(request_id)
        elif bridge is None or (request_id is not None and request_id != bridge.request_id):
            if kind == "officer.joined":
                self.breach("join-without-grant", index, "an officer joined with no grant asked")
            elif kind in _READS and entry.get("scope") == "investigation":
                self.breach("read-outside-consent", index, "the police part read with no consent")
        elif kind == "consent.granted":
            grant = entry.get("grant")
            choices = grant.get("choices", {}) if isinstance(grant, dict) else {}
            bridge.state, bridge.epoch_id, bridge.granted_at = (
                "granted",
                entry.get("epoch_id"),
                index,
            )
            bridge.retain = bool(isinstance(choices, dict) and choices.get("retain_for_case_file"))
        elif kind == "officer.joined":
            if bridge.state != "granted" or entry.get("epoch_id") != bridge.epoch_id:
                self.breach(
                    "join-without-grant",
                    index,
                    f"an officer joined a bridge that was {bridge.state}, not granted for it",
                    bridge.granted_at,
                )
            bridge.state, bridge.joined_at = "joined", index
            bridge.officer = bridge.joined_by = _user(entry)
        elif kind == "bridge.paused":
            bridge.state = "paused"
        elif kind == "bridge.resumed":
            bridge.state = "joined"
        elif kind in ("officer.left", "officer.removed"):
            bridge.officer = None
        elif kind == "consent.withdrawn":
            if bridge.officer is not None:
                self.removal_due = (index, conversation, bridge.request_id)
            bridge.state = "ended"
        elif kind in _ENDED:
            bridge.state = "ended"
        elif kind in _READS and entry.get("scope") == "investigation":
            self._read(index, kind, entry, bridge)

    def _read(self, index: int, kind: str, entry: Mapping[str, Any], bridge: _Bridge) -> None:
        reader = _user(entry)
        present = bridge.state in ("joined", "paused") and reader == bridge.officer
        retained = bridge.state == "ended" and bridge.retain and reader == bridge.joined_by
        if not (present or retained):
            what = "read" if kind == "transcript.read" else "exported"
            self.breach(
                "read-outside-consent",
                index,
                f"the police part was {what} while the bridge was {bridge.state}"
                + ("" if reader == bridge.joined_by else ", by someone other than its officer"),
                bridge.joined_at,
            )

    def _removal(self, index: int, entry: Mapping[str, Any]) -> None:
        assert self.removal_due is not None
        due, conversation, request_id = self.removal_due
        self.removal_due = None
        removed = (
            entry.get("kind") == "officer.removed"
            and entry.get("conversation") == conversation
            and entry.get("request_id") == request_id
        )
        if not removed:
            self.breach(
                "withdrawal-without-removal",
                due,
                "consent was withdrawn and the officer was not removed in the same transaction",
                index,
            )

    def _breakglass(self, index: int, kind: str, entry: Mapping[str, Any]) -> None:
        rule = "breakglass-not-by-a-second-person"
        which = str(entry.get("breakglass_id"))
        if kind == "breakglass.requested":
            self.breakglass[which] = (index, str(entry.get("conversation")), _user(entry))
            return
        asked = self.breakglass.pop(which, None)
        if asked is None or asked[1] != entry.get("conversation"):
            self.breach(rule, index, "a break-glass decision with no open request of its own")
        elif _user(entry) is None or _user(entry) == asked[2]:
            self.breach(rule, index, "a break-glass request decided by the one who asked", asked[0])
        elif kind == "breakglass.approved":
            self.approved[which] = (index, asked[1])

    def _disclosure(self, index: int, entry: Mapping[str, Any]) -> None:
        if entry.get("basis") != "meldcode":
            return
        approval = self.approved.get(str(entry.get("breakglass_id")))
        if approval is None or approval[1] != entry.get("conversation"):
            self.breach(
                "disclosure-without-basis",
                index,
                "a disclosure under the meldcode with no approved break-glass request behind it",
            )

    def _policy(self, index: int, entry: Mapping[str, Any]) -> None:
        note = entry.get("note")
        if not isinstance(note, str):
            self.breach(
                "policy-not-signed-by-both", index, "a policy put in force without its signed text"
            )
            return
        try:
            signed = open_signed(note, self.keys)
        except PolicyError as exc:
            self.breach("policy-not-signed-by-both", index, f"a policy put in force {exc}")
            return
        policy = signed.policy
        if (policy.sha256, policy.serial) != (entry.get("sha256"), entry.get("serial")):
            self.breach(
                "policy-not-signed-by-both",
                index,
                "the policy's hash or serial is not the one its entry names",
            )

    def end(self) -> None:
        if self.removal_due is not None:
            due = self.removal_due[0]
            self.removal_due = None
            self.breach(
                "withdrawal-without-removal",
                due,
                "consent was withdrawn and the officer was not removed (the log ends there)",
            )


def check_rules(entries: Iterable[tuple[int, Mapping[str, Any]]]) -> list[Breach]:
    """Every breach of :data:`RULES` in ``entries`` (``(index, entry)`` in log order)."""
    rules = _Rules()
    for index, entry in entries:
        rules.entry(index, entry)
    rules.end()
    return rules.breaches


def _user(entry: Mapping[str, Any]) -> str | None:
    actor = entry.get("actor")
    user = actor.get("user_id") if isinstance(actor, dict) else None
    return user if isinstance(user, str) else None
