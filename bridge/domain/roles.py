"""Who takes part (DESIGN.md, "Roles and scopes"), as one enum the domain compares against."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["IN_CONVERSATION", "STAFF_IN_CHAT", "Role"]


class Role(StrEnum):
    VICTIM = "victim"
    COUNSELLOR = "counsellor"
    OFFICER = "officer"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    # The bridge itself, as the actor of a log entry (an expiry, a pause for an absence).
    SYSTEM = "system"


# The roles that hold a conversation's sockets, and the staff among them.
IN_CONVERSATION: Final = frozenset({Role.VICTIM, Role.COUNSELLOR, Role.OFFICER})
STAFF_IN_CHAT: Final = frozenset({Role.COUNSELLOR, Role.OFFICER})
