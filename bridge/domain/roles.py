"""Who takes part (DESIGN.md, "Roles and scopes"), as one enum the domain compares against."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CLI_ADMIN", "Role"]


class Role(StrEnum):
    VICTIM = "victim"
    COUNSELLOR = "counsellor"
    OFFICER = "officer"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    # The bridge itself, as the actor of a log entry (an expiry, a pause for an absence).
    SYSTEM = "system"


# The actor of what an admin does through the ``bridge`` command (no account is logged in there).
CLI_ADMIN = {"role": Role.ADMIN.value, "via": "cli"}
