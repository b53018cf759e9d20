"""How a participant is shown to the others: enough to verify every signature it makes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.clock import iso
from bridge.store import participants
from bridge.store.models import Device, Participant

__all__ = ["participant_view", "present_participants", "victim_device_view"]


def participant_view(participant: Participant, device: Device) -> dict[str, object]:
    """PROTOCOL.md: ``{role, device_id, ed25519, x25519, since}``."""
    return {
        "role": participant.role,
        "device_id": device.id,
        "ed25519": device.ed25519,
        "x25519": device.x25519,
        "since": iso(participant.joined_at),
    }


async def present_participants(
    session: AsyncSession, conversation_id: str
) -> list[dict[str, object]]:
    """Every participant that has not left or been removed, the victim included."""
    rows = await participants.present_with_devices(session, conversation_id)
    return [participant_view(p, d) for p, d in rows]


def victim_device_view(device: Device) -> dict[str, object]:
    """The victim's device, to which every content key is sealed."""
    return {"device_id": device.id, "ed25519": device.ed25519, "x25519": device.x25519}
