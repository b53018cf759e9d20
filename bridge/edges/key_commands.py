"""``bridge keys rotate-log`` and ``bridge keys rotate-org``: what they do to the database and
the data directory, and what they print (secrets never: public keys and key ids only)."""

from __future__ import annotations

from typing import Any

from bridge.clock import utc_now
from bridge.config import Settings
from bridge.domain.orgkeys import rotate_org_key
from bridge.domain.roles import CLI_ADMIN
from bridge.log.rotation import rotate_log_key
from bridge.log.writer import open_log
from bridge.store.db import migrated

__all__ = ["rotate_log", "rotate_org"]


async def rotate_log(settings: Settings) -> dict[str, Any]:
    async with migrated(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous) as db:
        rotation = await rotate_log_key(db, settings, utc_now(), CLI_ADMIN)
    return {
        "old": {"key_id": rotation.old.key_id, "ed25519": rotation.old.ed25519},
        "new": {"key_id": rotation.new.key_id, "ed25519": rotation.new.ed25519},
        "origin": rotation.new.origin,
        "index": rotation.index,
        "handover": rotation.handover,
        "retired": str(rotation.retired),
    }


async def rotate_org(settings: Settings, org: str, passphrase: str) -> dict[str, Any]:
    async with migrated(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous) as db:
        old, new = await rotate_org_key(
            db,
            open_log(settings),
            org,
            passphrase,
            opslimit=settings.org_key_opslimit,
            memlimit=settings.org_key_memlimit,
            now=utc_now(),
        )
    return {"org": org, "old_key_id": old.key_id, "key_id": new.key_id, "x25519": new.x25519}
