"""Which on-duty officers an invite goes to (PROTOCOL.md, "Preferences"). Pure functions.

``officer_gender`` is a hard filter. ``same_officer`` sends the invite to the previous officer
alone while it is on duty, else to all matching. ``region`` goes first; with nobody of that region
on duty, the invite goes to every matching officer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bridge.delivery import OnDutyOfficer

__all__ = ["invite_recipients"]


def invite_recipients(
    preferences: Mapping[str, object],
    on_duty: Sequence[OnDutyOfficer],
    previous_officer: str | None,
) -> list[str]:
    """Account ids of the on-duty officers that should see the invite now."""
    gender = preferences.get("officer_gender")
    matching = [o for o in on_duty if gender in (None, "any") or o.gender == gender]
    if preferences.get("same_officer") and any(o.account_id == previous_officer for o in matching):
        return [str(previous_officer)]
    region = preferences.get("region")
    if region is not None:
        local = [o for o in matching if o.region == region]
        if local:
            matching = local
    return sorted({o.account_id for o in matching})
