"""What the server sends to whom once a transaction has committed.

The core returns effects instead of emitting: nothing reaches a socket before the state it
reports is durable, and the core knows rooms but not sockets. Rooms of a conversation:
``care`` holds the victim's and the counsellor's sockets (every message has care in its audience
and the victim reads everything), ``investigation`` holds the sockets of the officer of the
current epoch, and only them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

__all__ = [
    "COUNSELLORS",
    "SUPERVISORS",
    "CloseRoom",
    "Effect",
    "Emit",
    "OnDutyOfficer",
    "Outcome",
    "Presence",
    "account_room",
    "care_room",
    "counsellor_room",
    "investigation_room",
    "victim_room",
]

COUNSELLORS: Final = "counsellors"
# Every supervisor's socket: told of break-glass requests and their decisions.
SUPERVISORS: Final = "supervisors"


def care_room(conversation_id: str) -> str:
    return f"conv:{conversation_id}:care"


def investigation_room(conversation_id: str) -> str:
    return f"conv:{conversation_id}:investigation"


def victim_room(conversation_id: str) -> str:
    return f"conv:{conversation_id}:victim"


def counsellor_room(conversation_id: str) -> str:
    return f"conv:{conversation_id}:counsellor"


def account_room(account_id: str) -> str:
    return f"account:{account_id}"


@dataclass(frozen=True)
class Emit:
    event: str
    payload: Mapping[str, object]
    rooms: tuple[str, ...]
    skip_sid: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CloseRoom:
    """Every socket leaves the room: how an officer is removed from a conversation at once."""

    room: str


Effect = Emit | CloseRoom


@dataclass
class Outcome:
    """What one core call yields: the ack, the effects to deliver after the commit, and the
    rooms the calling socket enters before they are delivered."""

    ack: dict[str, object]
    effects: list[Effect] = field(default_factory=list)
    enter: tuple[str, ...] = ()


@dataclass(frozen=True)
class OnDutyOfficer:
    account_id: str
    region: str | None
    gender: str | None


class Presence(Protocol):
    """Who is connected right now, on any node; read by the core."""

    async def counsellor_present(self, conversation_id: str) -> bool: ...

    async def victim_present(self, conversation_id: str) -> bool: ...

    async def officers_on_duty(self) -> list[OnDutyOfficer]: ...
