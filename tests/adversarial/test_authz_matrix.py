"""Who may do what, when: every role x event x bridge state, tried over a real socket.

The expected answer of each cell is *derived* below from the contract and the data the bridge is
configured with, not from the server's own decisions:

* who may send an event at all: the event table, PROTOCOL.md's table of client events (``WHO``);
* which audience a role may address in which state, and who may send a ``needs_note`` when: the
  policy file (``bridge/policy/default.toml``, read with ``load_policy``);
* which consent moves a state allows: the state table of ``bridge/domain/machine.py``;
* who lifts which pause, and what the officer re-join is: docs/protocol.md;
* which code wins where several apply: PROTOCOL.md's validation order.

Each state is built through the real API in a conversation of its own. A refused event must
change nothing (every table of the database is compared); an accepted event that moves the
conversation on (a new bridge state, a closed conversation, an officer leaving) is followed by a
fresh conversation in the state under test. One test per state; every wrong cell of that state is
listed in one assertion message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from adversary import TALLY

from bridge import crypto
from bridge.client import (
    BridgeClient,
    CounsellorClient,
    OfficerClient,
    SupervisorClient,
    VictimClient,
)
from bridge.domain.machine import TRANSITIONS, Event, State
from bridge.policy.loader import BRIDGE_STATES, load_policy
from bridge.protocol import EVENTS
from harness import Bridge, db_rows, forged, grant_payload, policy_text, query

JSON = dict[str, Any]
OK = "ok"
POLICY = load_policy()  # the packaged default, which the bridge fixture runs with
CARE = ("care",)
BOTH = ("care", "investigation")

# --- the axes -------------------------------------------------------------------------------------

# Who may send each event: the one event table (bridge/protocol.py), which
# tests/unit/test_protocol.py holds to PROTOCOL.md's "Client -> server" table, written out there.
WHO: dict[str, frozenset[str]] = {event.name: event.roles for event in EVENTS}
# message.send is tried once per audience and kind.
SENDS = {
    "message.send care": ("message", CARE),
    "message.send care+investigation": ("message", BOTH),
    "message.send needs_note": ("needs_note", BOTH),
}
EVENTS = [e for e in WHO if e != "message.send"] + list(SENDS)

# The actors: the conversation's own parties, a counsellor and an officer that have nothing to do
# with it (both logged in, registered and, for the officer, on duty), and a Fier supervisor.
ACTORS = ("victim", "counsellor", "officer", "other counsellor", "other officer", "supervisor")
ROLE = {"other counsellor": "counsellor", "other officer": "officer"}

# The states, each with the bridge request's state (None: no request ever) and, for a pause, its
# reason. "closed" is a driegesprek the counsellor closed.
STATES: dict[str, tuple[State | None, str | None]] = {
    "none": (None, None),
    "proposed": (State.PROPOSED, None),
    "granted": (State.GRANTED, None),
    "joined": (State.JOINED, None),
    "paused by victim": (State.PAUSED, "victim"),
    "paused by counsellor": (State.PAUSED, "counsellor"),
    "paused, counsellor away": (State.PAUSED, "counsellor_away"),
    "ended": (State.ENDED, None),
    "declined": (State.DECLINED, None),
    "expired": (State.EXPIRED, None),
    "closed": (State.ENDED, None),
}


# --- the expected table ---------------------------------------------------------------------------


def in_force(state: State | None) -> bool:
    """A request is in force while the state table still lets it move (not declined, ended or
    expired)."""
    return state is not None and bool(TRANSITIONS[state])


def allows(state: State | None, event: Event) -> bool:
    return state is not None and event in TRANSITIONS[state]


def policy_state(state: State | None) -> str:
    """The state the policy's audience rules speak of: no request in force is "none"."""
    return state.value if state is not None and in_force(state) else "none"


def officer_standing(name: str) -> str:
    """The conversation's officer: "never" joined it, "present", or "removed" (after the end of
    the bridge or of the conversation)."""
    state, _ = STATES[name]
    if name == "closed" or state == State.ENDED:
        return "removed"
    return "present" if state in (State.JOINED, State.PAUSED) else "never"


def expected(actor: str, event: str, name: str) -> str:
    """The answer ("ok" or a protocol code) for ``actor`` sending ``event`` in state ``name``."""
    role = ROLE.get(actor, actor)
    state, reason = STATES[name]
    closed = name == "closed"
    base = "message.send" if event in SENDS else event
    # 0. An envelope names its sender's role, and "supervisor" is none a message can have: the
    #    payload is invalid, which ranks before forbidden.
    if base == "message.send" and role == "supervisor":
        return "invalid"
    # 1. The event is not one this role sends (forbidden ranks before any state).
    if role not in WHO[base]:
        return "forbidden"
    # 2. Events about no conversation in particular.
    if event in ("device.register", "queue.list", "invite.list", "breakglass.list"):
        return OK
    # A supervisor decides the break-glass request every case starts with, in any state (the
    # meldcode does not wait on consent), once: the approve cell comes before the refuse cell.
    if event == "breakglass.approve":
        return OK
    if event == "breakglass.refuse":
        return "wrong_state"
    if event == "invite.accept":
        # An invite exists once the victim granted; it is for on-duty officers matching the
        # preferences (female, below): the other officer is not among them. Once accepted, or
        # if the grant was withdrawn or ended, it can no longer be accepted.
        has_invite = state not in (None, State.PROPOSED, State.DECLINED, State.EXPIRED)
        if not has_invite:
            return "not_found"
        if actor == "other officer":
            return "forbidden"
        return OK if allows(state, Event.ACCEPT) else "wrong_state"
    # 3. Whose conversation it is: another counsellor holds nothing here, an officer that never
    #    joined is forbidden, a removed one gets no_consent for every later event.
    if actor in ("other counsellor", "other officer"):
        return "forbidden"
    if role == "officer":
        standing = officer_standing(name)
        if standing == "never":
            return "forbidden"
        if standing == "removed":
            return "no_consent"
    # 4. Refusals of the forbidden rank that the event itself carries.
    if event in SENDS:
        kind, audience = SENDS[event]
        if kind == "needs_note":
            grant_allows = in_force(state) and state != State.PROPOSED  # our grants allow it
            if role not in POLICY.needs_note_roles or not grant_allows:
                return "forbidden"
        elif audience == CARE and not any(POLICY.allows(role, s, CARE) for s in BRIDGE_STATES):
            return "forbidden"  # an audience this role never has
    if event == "history.share" and not POLICY.victim_may_share_history:
        return "forbidden"
    if event == "bridge.resume" and reason == "victim" and role != "victim":
        return "forbidden"  # the victim's pause is lifted by the victim only
    # The disclosure register is kept also after the conversation closed.
    if event == "disclosure.record":
        return OK
    # 5. A closed conversation: only reading goes on.
    if closed:
        return OK if event == "history.fetch" else "wrong_state"
    # 6. The state.
    if event in SENDS:
        kind, audience = SENDS[event]
        pstate = policy_state(state)
        if kind == "needs_note":
            return OK if POLICY.allows_needs_note(role, pstate) else "wrong_state"
        if POLICY.allows(role, pstate, audience):
            return OK
        if "investigation" in audience and pstate != "joined":
            return "no_consent" if pstate in ("none", "proposed") else "wrong_state"
        return "forbidden"
    if event in ("conversation.join", "history.fetch", "conversation.close"):
        return OK
    if event == "breakglass.request":
        return OK  # whatever the police part's state
    if event == "bridge.propose":
        return "wrong_state" if in_force(state) else OK
    if event in ("consent.grant", "consent.decline"):
        if state is None:
            return "not_found"  # no request to answer
        move = Event.GRANT if event == "consent.grant" else Event.DECLINE
        return OK if allows(state, move) else "wrong_state"
    if event == "consent.withdraw":
        return OK if allows(state, Event.WITHDRAW) else "wrong_state"
    if event == "bridge.pause":
        return OK if allows(state, Event.PAUSE) else "wrong_state"
    if event == "bridge.resume":
        if not allows(state, Event.RESUME) or reason == "counsellor_away":
            return "wrong_state"  # a counsellor_away pause ends by the counsellor's return
        return OK
    if event == "bridge.end":
        return (
            OK if allows(state, Event.LEAVE if role == "officer" else Event.END) else "wrong_state"
        )
    raise AssertionError(f"no rule for {event}")


# --- building the states ----------------------------------------------------------------------


@dataclass
class Staff:
    counsellor: CounsellorClient
    officer: OfficerClient
    other_counsellor: CounsellorClient
    other_officer: OfficerClient
    supervisor: SupervisorClient


@dataclass
class Case:
    """One conversation in the state under test."""

    victim: VictimClient
    breakglass_id: str = ""
    request_id: str | None = None
    invite_id: str | None = None

    @property
    def cid(self) -> str:
        return self.victim.conversation_id


PREFERENCES = {"officer_gender": "female"}  # the officer, not the other officer (male)


def state_is(state: str) -> Callable[[JSON], bool]:
    return lambda event: event["state"] == state


async def build(bridge: Bridge, staff: Staff, name: str) -> Case:
    """A fresh conversation in state ``name``, reached through the real API."""
    victim = await bridge.victim()
    case = Case(victim)
    counsellor, officer = staff.counsellor, staff.officer
    await counsellor.join(case.cid)
    case.breakglass_id = await counsellor.request_breakglass(case.cid, "acute_danger")
    if name == "none":
        return case
    case.request_id = await counsellor.propose(case.cid, "informational", PREFERENCES)
    await victim.next_event("consent.prompt")
    if name == "proposed":
        return case
    if name == "declined":
        await victim.decline()
        return case
    if name == "expired":
        await victim.next_event("bridge.state", timeout=10, where=state_is("expired"))
        return case
    officer.drain("invite")
    await victim.grant(share_needs_note=True)
    case.invite_id = (await officer.next_event("invite"))["invite_id"]
    await victim.next_event("bridge.state", where=state_is("granted"))
    if name == "granted":
        return case
    await officer.accept(case.invite_id)
    await victim.next_event("bridge.state", where=state_is("joined"))
    if name == "paused by victim":
        await victim.pause()
    elif name == "paused by counsellor":
        await counsellor.pause(case.cid)
    elif name == "paused, counsellor away":
        # The counsellor's socket goes; it comes back without joining, so the pause stays.
        await counsellor.disconnect()
        await victim.next_event("bridge.state", where=state_is("paused"))
        await counsellor.connect()
        await counsellor.register_device()
        return case
    elif name == "ended":
        await counsellor.end(case.cid)
    elif name == "closed":
        await counsellor.close(case.cid)
    if name != "joined":
        await victim.next_event("bridge.state", where=lambda e: e["state"] != "joined")
    return case


async def payload(case: Case, client: BridgeClient, event: str) -> tuple[str, JSON]:
    """The event name and a valid payload for it in this case."""
    ref = {"conversation_id": case.cid}
    if event in SENDS:
        kind, audience = SENDS[event]
        sent = forged(client, case.victim, list(audience), kind=kind, text="matrix")
        return "message.send", {"envelope": sent}
    if event == "device.register":
        return event, client.keys.registration()
    if event in ("queue.list", "invite.list", "breakglass.list"):
        return event, {}
    if event == "breakglass.request":
        return event, {**ref, "category": "acute_danger"}
    if event in ("breakglass.approve", "breakglass.refuse"):
        return event, {"breakglass_id": case.breakglass_id}
    if event == "disclosure.record":
        return event, {
            **ref,
            "agency": "veilig_thuis",
            "basis": "agreement",
            "shared": ["concerns"],
        }
    if event == "history.fetch":
        return event, {**ref, "after_seq": 0}
    if event == "bridge.propose":
        return event, {**ref, "purpose": "informational", "preferences": PREFERENCES}
    if event == "consent.grant":
        return event, await grant_payload(case.victim, request_id=case.request_id)
    if event == "consent.decline":
        return event, {"request_id": case.request_id or str(uuid.uuid4())}
    if event == "invite.accept":
        return event, {"invite_id": case.invite_id or str(uuid.uuid4())}
    if event == "history.share":
        victim = case.victim
        epoch = victim.conversation.epoch or {
            "epoch_id": str(uuid.uuid4()),
            "public": crypto.ScopeKey.generate().public,
        }
        share: JSON = {
            **ref,
            "epoch_id": epoch["epoch_id"],
            "items": [{"seq": 1, "key": crypto.seal(bytes(32), str(epoch["public"]))}],
        }
        share["sig"] = victim.keys.sign(share)
        return event, share
    return event, ref


def moved_on(bridge: Bridge, cid: str) -> Callable[[], tuple[Any, ...]]:
    """What says which state a conversation is in: its own state, its requests, invites and
    participants (messages and reads may come and go)."""
    sqls = (
        "SELECT state, closed_at FROM conversations WHERE id = ?",
        "SELECT id, state, reason FROM bridge_requests WHERE conversation_id = ?",
        "SELECT id, state FROM invites WHERE conversation_id = ?",
        "SELECT id, ended_at FROM participants WHERE conversation_id = ?",
    )
    return lambda: tuple(query(bridge.data_dir, sql, cid) for sql in sqls)


def code_of(ack: Any) -> str:
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    return OK if ack["ok"] else str(ack["error"]["code"])


async def staffed(bridge: Bridge) -> Staff:
    await bridge.add_user("supervisor", "supervisor", "fier")
    supervisor = await SupervisorClient.login(
        bridge.url, "supervisor", bridge.passwords["supervisor"]
    )
    bridge.clients.append(supervisor)
    await supervisor.connect()
    return Staff(
        counsellor=await bridge.counsellor(),
        officer=await bridge.officer(),
        other_counsellor=await bridge.counsellor("counsellor2"),
        other_officer=await bridge.officer("officer2"),
        supervisor=supervisor,
    )


async def run_matrix(bridge: Bridge, name: str) -> None:
    staff = await staffed(bridge)
    clients: dict[str, Callable[[Case], BridgeClient]] = {
        "victim": lambda case: case.victim,
        "counsellor": lambda _: staff.counsellor,
        "officer": lambda _: staff.officer,
        "other counsellor": lambda _: staff.other_counsellor,
        "other officer": lambda _: staff.other_officer,
        "supervisor": lambda _: staff.supervisor,
    }
    case = await build(bridge, staff, name)
    wrong: list[str] = []
    for actor in ACTORS:
        for event in EVENTS:
            want = expected(actor, event, name)
            client = clients[actor](case)
            sent, body = await payload(case, client, event)
            state_now = moved_on(bridge, case.cid)
            before, rows = state_now(), db_rows(bridge)
            got = code_of(await client.call_raw(sent, body))
            TALLY["authorization cells"] += 1
            if got != want:
                wrong.append(f"{actor:16} {event:34} expected {want:11} got {got}")
            if got != OK and db_rows(bridge) != rows:
                wrong.append(f"{actor:16} {event:34} was refused ({got}) but changed the database")
            if got == OK and state_now() != before:
                case = await build(bridge, staff, name)
    assert not wrong, f"state {name!r}: {len(wrong)} wrong cells:\n" + "\n".join(wrong)


SETTLED = pytest.mark.settings(checkpoint_seconds=86400.0)  # no periodic checkpoint mid-cell


@SETTLED
@pytest.mark.parametrize("name", [n for n in STATES if n != "expired"])
async def test_every_role_and_event_in_state(bridge: Bridge, name: str) -> None:
    await run_matrix(bridge, name)


@SETTLED
@pytest.mark.policy(policy_text(prompt_expiry_seconds=1))
async def test_every_role_and_event_after_the_question_expired(bridge: Bridge) -> None:
    await run_matrix(bridge, "expired")


def test_the_table_covers_every_event_of_the_contract() -> None:
    assert {("message.send" if e in SENDS else e) for e in EVENTS} == set(WHO)
