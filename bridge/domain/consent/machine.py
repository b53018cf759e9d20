"""The consent state machine of a bridge request (DESIGN.md, "Consent").

Everything that decides a bridge's next state lives here, as a table; this module does no I/O and
knows nothing of who asks. A missing entry is an illegal transition: the caller gets
``wrong_state`` and nothing changes.

    proposed --grant--> granted --accept--> joined <--pause/resume--> paused
        |                  |                  joined/paused --withdraw/end/leave/close--> ended
        +--decline--> declined
        +--expire--> expired   +--expire (no officer in time)--> expired
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from bridge.errors import WrongState

__all__ = ["ACTIVE", "Event", "State", "next_state"]


class State(StrEnum):
    PROPOSED = "proposed"
    GRANTED = "granted"
    DECLINED = "declined"
    JOINED = "joined"
    PAUSED = "paused"
    ENDED = "ended"
    EXPIRED = "expired"


class Event(StrEnum):
    GRANT = "grant"
    DECLINE = "decline"
    EXPIRE = "expire"
    ACCEPT = "accept"
    PAUSE = "pause"
    RESUME = "resume"
    COUNSELLOR_AWAY = "counsellor_away"
    COUNSELLOR_BACK = "counsellor_back"
    WITHDRAW = "withdraw"
    END = "end"
    LEAVE = "leave"
    CLOSE = "close"


_STOP = {Event.WITHDRAW: State.ENDED, Event.END: State.ENDED, Event.CLOSE: State.ENDED}

TRANSITIONS: Final[dict[State, dict[Event, State]]] = {
    State.PROPOSED: {
        Event.GRANT: State.GRANTED,
        Event.DECLINE: State.DECLINED,
        Event.EXPIRE: State.EXPIRED,
        Event.END: State.ENDED,
        Event.CLOSE: State.ENDED,
    },
    State.GRANTED: {Event.ACCEPT: State.JOINED, Event.EXPIRE: State.EXPIRED, **_STOP},
    State.JOINED: {
        Event.PAUSE: State.PAUSED,
        Event.COUNSELLOR_AWAY: State.PAUSED,
        Event.LEAVE: State.ENDED,
        **_STOP,
    },
    State.PAUSED: {
        Event.RESUME: State.JOINED,
        Event.COUNSELLOR_BACK: State.JOINED,
        Event.LEAVE: State.ENDED,
        **_STOP,
    },
    State.DECLINED: {},
    State.ENDED: {},
    State.EXPIRED: {},
}

# A request in one of these states is the conversation's bridge in force; at most one at a time.
ACTIVE: Final = frozenset({State.PROPOSED, State.GRANTED, State.JOINED, State.PAUSED})


def next_state(state: State, event: Event) -> State:
    """The state after ``event``, or ``WrongState`` if the table has no such transition."""
    target = TRANSITIONS[state].get(event)
    if target is None:
        raise WrongState(f"cannot {event.value} a bridge that is {state.value}")
    return target
