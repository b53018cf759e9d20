"""Async Python client of the Fier bridge (PROTOCOL.md); see :mod:`bridge.client.base`."""

from bridge.client.base import (
    SERVER_EVENTS,
    BridgeClient,
    ConnectionLost,
    Conversation,
    CounsellorClient,
    DecryptedMessage,
    OfficerClient,
    Refused,
    StaffClient,
    VictimClient,
)

__all__ = [
    "SERVER_EVENTS",
    "BridgeClient",
    "ConnectionLost",
    "Conversation",
    "CounsellorClient",
    "DecryptedMessage",
    "OfficerClient",
    "Refused",
    "StaffClient",
    "VictimClient",
]
