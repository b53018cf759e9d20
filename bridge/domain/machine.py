"""The state machines of the domain: a bridge request (its consent), an invite, a conversation,
a break-glass request.

Everything that decides a next state lives here, as tables, with the log kind that records each
move; this module does no I/O and knows nothing of who asks (h11's ``_state.py`` is the model).
A missing entry is an illegal transition: the caller gets ``wrong_state`` and nothing changes.
:mod:`bridge.domain.transitions` is the one place that applies these tables.

A bridge request (DESIGN.md, "Consent"):

    proposed --grant--> granted --accept--> joined <--pause/resume--> paused
        |                  |                  joined/paused --withdraw/end/leave/close--> ended
        +--decline--> declined
        +--expire--> expired   +--expire (no officer in time)--> expired

An invite: ``pending`` until an officer accepts it, it expires, or the bridge it belongs to ends
(``cancelled``). A conversation: ``waiting`` for a counsellor, ``open`` once one picked it up,
``closed`` by the victim or the counsellor. A break-glass request (meldcode, DESIGN.md
"Consent"): ``requested`` by a counsellor, then ``approved`` or ``refused`` once, by another
person whom the policy lets decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Generic, TypeVar

from bridge.errors import WrongState

__all__ = [
    "ACTIVE",
    "BREAKGLASS",
    "BRIDGE",
    "CONVERSATION",
    "INVITE",
    "TRANSITIONS",
    "BreakglassEvent",
    "BreakglassState",
    "ConversationEvent",
    "ConversationState",
    "Event",
    "InviteEvent",
    "InviteState",
    "Machine",
    "State",
    "next_state",
]


class State(StrEnum):
    """The state of a bridge request (PROTOCOL.md, ``bridge.state``)."""

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


class InviteState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class InviteEvent(StrEnum):
    ACCEPT = "accept"
    EXPIRE = "expire"
    CANCEL = "cancel"


class BreakglassState(StrEnum):
    """A counsellor's break-glass request (meldcode): decided once, by a second person."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REFUSED = "refused"


class BreakglassEvent(StrEnum):
    APPROVE = "approve"
    REFUSE = "refuse"


class ConversationState(StrEnum):
    WAITING = "waiting"
    OPEN = "open"
    CLOSED = "closed"


class ConversationEvent(StrEnum):
    PICK_UP = "pick_up"
    CLOSE = "close"


S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class Machine(Generic[S, E]):
    """One state table, the state a new row starts in, and the log kind of every move.

    A kind of ``None`` marks a move that the entry of the move causing it already records (an
    invite is cancelled when its bridge ends, and ``consent.withdrawn`` or ``bridge.ended``
    says so); a counsellor picking a conversation up is not an entry either (PROTOCOL.md, "Log
    entries", lists none for it)."""

    name: str
    table: Mapping[S, Mapping[E, S]]
    start: S
    start_kind: str
    kinds: Mapping[E, str | None]

    def next(self, state: S, event: E) -> S:
        """The state after ``event``, or ``WrongState`` if the table has no such transition."""
        target = self.table[state].get(event)
        if target is None:
            raise WrongState(f"cannot {event.value} a {self.name} that is {state.value}")
        return target


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

BRIDGE: Final = Machine[State, Event](
    name="bridge",
    table=TRANSITIONS,
    start=State.PROPOSED,
    start_kind="consent.requested",
    kinds={
        Event.GRANT: "consent.granted",
        Event.DECLINE: "consent.declined",
        Event.EXPIRE: "consent.expired",
        Event.ACCEPT: "officer.joined",
        Event.PAUSE: "bridge.paused",
        Event.COUNSELLOR_AWAY: "bridge.paused",
        Event.RESUME: "bridge.resumed",
        Event.COUNSELLOR_BACK: "bridge.resumed",
        Event.WITHDRAW: "consent.withdrawn",
        Event.END: "bridge.ended",
        Event.LEAVE: "bridge.ended",
        Event.CLOSE: "bridge.ended",
    },
)

INVITE: Final = Machine[InviteState, InviteEvent](
    name="invite",
    table={
        InviteState.PENDING: {
            InviteEvent.ACCEPT: InviteState.ACCEPTED,
            InviteEvent.EXPIRE: InviteState.EXPIRED,
            InviteEvent.CANCEL: InviteState.CANCELLED,
        },
        InviteState.ACCEPTED: {},
        InviteState.EXPIRED: {},
        InviteState.CANCELLED: {},
    },
    start=InviteState.PENDING,
    start_kind="invite.created",
    kinds={
        InviteEvent.ACCEPT: "invite.accepted",
        InviteEvent.EXPIRE: "invite.expired",
        InviteEvent.CANCEL: None,
    },
)

CONVERSATION: Final = Machine[ConversationState, ConversationEvent](
    name="conversation",
    table={
        ConversationState.WAITING: {
            ConversationEvent.PICK_UP: ConversationState.OPEN,
            ConversationEvent.CLOSE: ConversationState.CLOSED,
        },
        ConversationState.OPEN: {ConversationEvent.CLOSE: ConversationState.CLOSED},
        ConversationState.CLOSED: {},
    },
    start=ConversationState.WAITING,
    start_kind="conversation.started",
    kinds={ConversationEvent.PICK_UP: None, ConversationEvent.CLOSE: "conversation.closed"},
)

BREAKGLASS: Final = Machine[BreakglassState, BreakglassEvent](
    name="break-glass request",
    table={
        BreakglassState.REQUESTED: {
            BreakglassEvent.APPROVE: BreakglassState.APPROVED,
            BreakglassEvent.REFUSE: BreakglassState.REFUSED,
        },
        BreakglassState.APPROVED: {},
        BreakglassState.REFUSED: {},
    },
    start=BreakglassState.REQUESTED,
    start_kind="breakglass.requested",
    kinds={
        BreakglassEvent.APPROVE: "breakglass.approved",
        BreakglassEvent.REFUSE: "breakglass.refused",
    },
)

# A request in one of these states is the conversation's bridge in force; at most one at a time.
ACTIVE: Final = frozenset({State.PROPOSED, State.GRANTED, State.JOINED, State.PAUSED})


def next_state(state: State, event: Event) -> State:
    """The bridge request's state after ``event``, or ``WrongState``."""
    return BRIDGE.next(state, event)
