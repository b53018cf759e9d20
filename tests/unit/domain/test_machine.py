"""The consent state machine (bridge/domain/machine.py) against DESIGN.md, "Consent".

The expected table is written out here from the documents, never read from ``TRANSITIONS``, so
a changed table fails until the documents and this file agree again.
"""

from __future__ import annotations

import copy
import itertools

import pytest

from bridge.domain import machine
from bridge.domain.machine import (
    ACTIVE,
    BREAKGLASS,
    BreakglassEvent,
    BreakglassState,
    Event,
    State,
    next_state,
)
from bridge.errors import WrongState

P, G, D, J, Z, E, X = (
    State.PROPOSED,
    State.GRANTED,
    State.DECLINED,
    State.JOINED,
    State.PAUSED,
    State.ENDED,
    State.EXPIRED,
)

# DESIGN.md, "Consent" (its second line moved left to fit):
#
#     proposed --grant--> granted --officer accepts--> joined <--pause/resume--> paused
#                                    joined/paused --withdraw/end/leave/close--> ended
#         |                  |
#         +--decline--> declined         +--expire (no officer in time)--> expired
#         +--expire--> expired
EXPECTED: dict[tuple[State, Event], State] = {
    (P, Event.GRANT): G,
    (P, Event.DECLINE): D,
    (P, Event.EXPIRE): X,
    (G, Event.ACCEPT): J,
    (G, Event.EXPIRE): X,
    (J, Event.PAUSE): Z,
    (Z, Event.RESUME): J,
    **{(s, e): E for s in (J, Z) for e in (Event.WITHDRAW, Event.END, Event.LEAVE, Event.CLOSE)},
    # PROTOCOL.md, "Socket.IO events": the counsellor dropping out pauses a joined bridge with
    # reason counsellor_away; it goes back to joined by itself when the counsellor rejoins.
    (J, Event.COUNSELLOR_AWAY): Z,
    (Z, Event.COUNSELLOR_BACK): J,
    # DESIGN.md principle 6 ("the victim can ... stop it, or end the chat at any moment") and the
    # counsellor's "end the bridge, close" (Roles and scopes): before an officer is there, the
    # request can still be closed or ended, and a grant withdrawn. The diagram leaves these out.
    (P, Event.END): E,
    (P, Event.CLOSE): E,
    (G, Event.WITHDRAW): E,
    (G, Event.END): E,
    (G, Event.CLOSE): E,
}

ALL_PAIRS = list(itertools.product(State, Event))
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in EXPECTED]
TERMINAL = (D, E, X)


def _id(pair: tuple[State, Event]) -> str:
    return f"{pair[0].value}-{pair[1].value}"


def test_states_are_the_seven_of_the_bridge_state_event() -> None:
    # PROTOCOL.md, bridge.state: "proposed"|"granted"|"declined"|"joined"|"paused"|"ended"|"expired"
    assert {s.value for s in State} == {
        "proposed",
        "granted",
        "declined",
        "joined",
        "paused",
        "ended",
        "expired",
    }


@pytest.mark.parametrize(("pair", "target"), list(EXPECTED.items()), ids=[_id(p) for p in EXPECTED])
def test_legal_transition_gives_documented_target(pair: tuple[State, Event], target: State) -> None:
    state, event = pair
    assert next_state(state, event) is target


@pytest.mark.parametrize("pair", ILLEGAL, ids=[_id(p) for p in ILLEGAL])
def test_illegal_transition_raises_wrong_state_and_changes_nothing(
    pair: tuple[State, Event],
) -> None:
    state, event = pair
    before = copy.deepcopy(machine.TRANSITIONS)
    with pytest.raises(WrongState) as caught:
        next_state(state, event)
    assert caught.value.code == "wrong_state"
    assert event.value in caught.value.message and state.value in caught.value.message
    assert before == machine.TRANSITIONS


def test_every_event_has_a_documented_transition() -> None:
    assert {event for _, event in EXPECTED} == set(Event)


@pytest.mark.parametrize("state", TERMINAL, ids=lambda s: s.value)
@pytest.mark.parametrize("event", list(Event), ids=lambda e: e.value)
def test_terminal_state_accepts_no_event(state: State, event: Event) -> None:
    with pytest.raises(WrongState):
        next_state(state, event)


def test_active_is_exactly_proposed_granted_joined_paused() -> None:
    assert frozenset({P, G, J, Z}) == ACTIVE


def test_every_state_is_either_active_or_terminal() -> None:
    assert set(ACTIVE) | set(TERMINAL) == set(State)
    assert not set(ACTIVE) & set(TERMINAL)


@pytest.mark.parametrize("state", sorted(ACTIVE), ids=lambda s: s.value)
def test_every_active_state_can_still_end(state: State) -> None:
    """DESIGN.md principle 6: the victim can end the chat at any moment."""
    assert next_state(state, Event.CLOSE) is E


@pytest.mark.parametrize(
    ("event", "target"),
    [
        (BreakglassEvent.APPROVE, BreakglassState.APPROVED),
        (BreakglassEvent.REFUSE, BreakglassState.REFUSED),
    ],
)
def test_a_break_glass_request_is_decided_once(
    event: BreakglassEvent, target: BreakglassState
) -> None:
    assert BREAKGLASS.next(BreakglassState.REQUESTED, event) == target
    for again in BreakglassEvent:
        with pytest.raises(WrongState):
            BREAKGLASS.next(target, again)
    assert BREAKGLASS.start == BreakglassState.REQUESTED
    assert BREAKGLASS.kinds[event] == f"breakglass.{target.value}"
