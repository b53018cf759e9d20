"""The werkafspraken in force, recorded: the log says which policy the bridge runs under."""

from __future__ import annotations

import json

from bridge.domain.core import Core
from bridge.store import log as stored

__all__ = ["record_policy"]


async def record_policy(core: Core) -> bool:
    """Log ``policy.changed`` when the bridge starts with a policy it has not logged before."""
    policy = core.policy
    async with core.db.session() as session, session.begin():
        last = await stored.last_entry_of_kind(session, "policy.changed")
        if last is not None and json.loads(last).get("sha256") == policy.sha256:
            return False
        await core.log.append(
            session, "policy.changed", at=core.clock(), version=policy.version, sha256=policy.sha256
        )
        return True
