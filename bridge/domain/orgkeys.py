"""Org key custody: one X25519 key pair per organisation, kept only sealed under its passphrase.

The private key is made here, sealed (Argon2id13 + SecretBox, PROTOCOL.md "The envelope") and
dropped; the server keeps the sealed form and the public key, and logs the registration.
"""

from __future__ import annotations

from datetime import datetime

from nacl.public import PrivateKey

from bridge import crypto
from bridge.errors import Conflict, Invalid
from bridge.log.writer import Log
from bridge.store import orgkeys
from bridge.store.db import Database
from bridge.store.models import OrgKey

__all__ = ["ORGS", "init_org_key"]

ORGS = ("fier", "avim")


async def init_org_key(
    db: Database,
    log: Log,
    org: str,
    passphrase: str,
    *,
    opslimit: int,
    memlimit: int,
    now: datetime,
) -> OrgKey:
    if org not in ORGS:
        raise Invalid(f"org must be one of {', '.join(ORGS)}")
    if len(passphrase) < 12:
        raise Invalid("an org passphrase has at least 12 characters")
    private = PrivateKey.generate()
    key_id = f"{org}-1"
    sealed = crypto.seal_org_key(
        private, passphrase.encode(), key_id=key_id, opslimit=opslimit, memlimit=memlimit
    )
    async with db.session() as session, session.begin():
        if await orgkeys.of_org(session, org) is not None:
            raise Conflict(f"the {org} key exists already")
        key = OrgKey(
            org=org,
            key_id=key_id,
            x25519=crypto.b64u_encode(bytes(private.public_key)),
            sealed=sealed,
            created_at=now,
        )
        session.add(key)
        await log.append(
            session, "org_key.registered", at=now, org=org, key_id=key_id, x25519=key.x25519
        )
    return key
