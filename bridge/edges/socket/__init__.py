"""The Socket.IO edge, one job a module: ``transport`` (engine.io and python-socketio as the
bridge runs them, and the guards on what clients send), ``packets`` (reading a packet safely),
``sessions`` (open sockets, their owners and presence), ``table`` (the one event table and the
validation order), ``handlers`` (one domain call an event) and ``edge`` (the wiring)."""

from bridge.edges.socket.edge import SocketEdge
from bridge.edges.socket.handlers import Domain
from bridge.edges.socket.sessions import Connections

__all__ = ["Connections", "Domain", "SocketEdge"]
