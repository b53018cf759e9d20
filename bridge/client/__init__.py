"""Async Python client of the Fier bridge: one object per connected party.

Used by the integration tests, the demo, bots and adapters. It speaks PROTOCOL.md and does all
cryptography client-side with ``bridge.crypto``: the server never gets a private key or plaintext.

    wire          the JSON type, the server's event names, ``Refused`` and ``ConnectionLost``
    network       how the client reaches the bridge (trusted certificates, local address)
    http          the HTTP calls over one session
    transport     Socket.IO: calls with an ack, reconnect and resume, the outbox of unacked sends
    conversation  what a client knows of a conversation, and how answers and events change it
    reading       verify a relayed envelope and open it with the reader's key
    writing       audiences, sealed and signed envelopes, the consent grant, history shares
    base          ``BridgeClient``: the above combined, server events queued per name
    victim, staff the role clients
"""

from bridge.client.base import BridgeClient
from bridge.client.conversation import Conversation, DecryptedMessage
from bridge.client.network import Network
from bridge.client.staff import CounsellorClient, OfficerClient, StaffClient, SupervisorClient
from bridge.client.victim import VictimClient
from bridge.client.wire import SERVER_EVENTS, ConnectionLost, Refused

__all__ = [
    "SERVER_EVENTS",
    "BridgeClient",
    "ConnectionLost",
    "Conversation",
    "CounsellorClient",
    "DecryptedMessage",
    "Network",
    "OfficerClient",
    "Refused",
    "StaffClient",
    "SupervisorClient",
    "VictimClient",
]
