"""``bridge keys rotate-log`` and ``bridge keys rotate-org``: what they do to the database and
the data directory, and what they print (secrets never: public keys and key ids only)."""

from __future__ import annotations

from typing import Any

from bridge.clock import utc_now
from bridge.config import Settings
from bridge.domain.roles import Role
from bridge.log.rotation import rotate_log_key
from bridge.store.db import Database, upgrade

__all__ = ["CLI_ACTOR", "rotate_log"]

CLI_ACTOR = {"role": Role.ADMIN.value, "via": "cli"}


async def rotate_log(settings: Settings) -> dict[str, Any]:
    db = Database(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await upgrade(db)
        rotation = await rotate_log_key(db, settings, utc_now(), CLI_ACTOR)
    finally:
        await db.dispose()
    return {
        "old": {"key_id": rotation.old.key_id, "ed25519": rotation.old.ed25519},
        "new": {"key_id": rotation.new.key_id, "ed25519": rotation.new.ed25519},
        "origin": rotation.new.origin,
        "index": rotation.index,
        "handover": rotation.handover,
        "retired": str(rotation.retired),
    }
