"""Worlds shared by the refusals of one module (``harness.shared_world``): tests marked
``ON_SHARED_WORLD`` take one of these instead of building their own on the ``bridge`` fixture. A
test that changes its world, or adds a party to it, builds its own."""

from __future__ import annotations

from harness import chatting, closed, joined, proposed, shared_world

chatting_world = shared_world(chatting)
proposed_world = shared_world(proposed)
joined_world = shared_world(joined)
closed_world = shared_world(closed)
