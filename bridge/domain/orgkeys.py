"""Org key custody: X25519 key pairs per organisation, kept only sealed under a passphrase.

The private key is made here, sealed (Argon2id13 + SecretBox, PROTOCOL.md "The envelope") and
dropped; the server keeps the sealed form and the public key, and logs it. A rotation adds a
version (``fier-2``, ...) under the passphrase given for it: new scopes are sealed to the newest,
and the older versions stay, sealed as before, so that the scopes sealed to them still open.
Making a version needs no older passphrase: the server never opens a key.
"""

from __future__ import annotations

from datetime import datetime

from nacl.public import PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession

from bridge import crypto
from bridge.domain.roles import CLI_ADMIN
from bridge.errors import Conflict, Invalid, NotFound
from bridge.log.writer import Log
from bridge.store import orgkeys
from bridge.store.db import Database
from bridge.store.models import OrgKey

__all__ = ["ORGS", "init_org_key", "rotate_org_key", "sealed_to"]

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
    """The org's first key, ``<org>-1``; ``Conflict`` if it has one."""
    _check(org, passphrase)
    return await _add_version(db, log, org, passphrase, 1, opslimit, memlimit, now)


async def rotate_org_key(
    db: Database,
    log: Log,
    org: str,
    passphrase: str,
    *,
    opslimit: int,
    memlimit: int,
    now: datetime,
) -> tuple[OrgKey, OrgKey]:
    """A new version of the org's key, sealed under ``passphrase``; the one it follows and it."""
    _check(org, passphrase)
    async with db.reading() as session:
        current = await orgkeys.newest(session, org)
    if current is None:
        raise NotFound(f"the {org} key has not been made yet (bridge keys init-org {org})")
    version = current.version + 1
    return current, await _add_version(db, log, org, passphrase, version, opslimit, memlimit, now)


async def sealed_to(session: AsyncSession, org: str, named: str | None, what: str) -> str | None:
    """The key id a scope key handed in now is sealed to: the org's newest version, which the
    client's ``named`` must be if it names one (None while the org has no key)."""
    newest = await orgkeys.newest(session, org)
    current = None if newest is None else newest.key_id
    if named is not None and named != current:
        raise Invalid(
            f"{what} is sealed to {named}, not to the current {org} key {current} "
            f"(GET /api/v1/orgs/{org}/key)"
        )
    return current


def _check(org: str, passphrase: str) -> None:
    if org not in ORGS:
        raise Invalid(f"org must be one of {', '.join(ORGS)}")
    if len(passphrase) < 12:
        raise Invalid("an org passphrase has at least 12 characters")


async def _add_version(
    db: Database,
    log: Log,
    org: str,
    passphrase: str,
    version: int,
    opslimit: int,
    memlimit: int,
    now: datetime,
) -> OrgKey:
    private = PrivateKey.generate()
    key_id = f"{org}-{version}"
    # Argon2id before the transaction: nothing waits on its locks meanwhile.
    sealed = crypto.seal_org_key(
        private, passphrase.encode(), key_id=key_id, opslimit=opslimit, memlimit=memlimit
    )
    async with db.session() as session, session.begin():
        old = await orgkeys.newest(session, org)
        if (0 if old is None else old.version) != version - 1:
            raise Conflict(
                f"the {org} key exists already" if version == 1 else "the key changed meanwhile"
            )
        key = OrgKey(
            key_id=key_id,
            org=org,
            version=version,
            x25519=crypto.b64u_encode(bytes(private.public_key)),
            sealed=sealed,
            created_at=now,
        )
        session.add(key)
        if old is None:
            await log.append(
                session, "org_key.registered", at=now, org=org, key_id=key_id, x25519=key.x25519
            )
        else:
            await log.append(
                session,
                "org_key.rotated",
                at=now,
                actor=CLI_ADMIN,
                org=org,
                old_key_id=old.key_id,
                new_key_id=key_id,
                x25519=key.x25519,
            )
    return key
