"""How a participant is shown to the others: enough to verify every signature it makes."""

from __future__ import annotations

from bridge.clock import iso
from bridge.store.participants import Present

__all__ = ["participant_view", "victim_device_view", "victim_of"]


def participant_view(participant: Present) -> dict[str, object]:
    """PROTOCOL.md: ``{role, device_id, ed25519, x25519, since}``."""
    return {
        "role": participant.role,
        "device_id": participant.device_id,
        "ed25519": participant.ed25519,
        "x25519": participant.x25519,
        "since": iso(participant.joined_at),
    }


def victim_of(present: list[Present], victim_device_id: str) -> Present:
    """The victim among the present participants: there until the conversation is closed."""
    for participant in present:
        if participant.device_id == victim_device_id:
            return participant
    raise LookupError("the victim's device takes no part in this conversation")


def victim_device_view(victim: Present) -> dict[str, object]:
    """The victim's device, to which every content key is sealed."""
    return {"device_id": victim.device_id, "ed25519": victim.ed25519, "x25519": victim.x25519}
