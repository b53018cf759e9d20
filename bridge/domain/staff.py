"""Staff sessions, account administration and the org keys staff fetch: each call is one
transaction, and what must be logged is logged in it.

Logging in and out are no log entries (they say nothing about a conversation); fetching an
org's sealed key is an access record (who may open which scopes), and disabling or enabling an
account is logged with the revocation of its tokens (DESIGN.md principle 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.clock import Clock
from bridge.domain.auth import (
    Credential,
    authenticate,
    bearer_token,
    check_password,
    create_account,
    issue_token,
    revoke_token,
    set_disabled,
    still_valid,
)
from bridge.domain.orgkeys import ORGS
from bridge.domain.roles import CLI_ADMIN, Role
from bridge.errors import Forbidden, NotFound
from bridge.log.writer import Log
from bridge.store import orgkeys
from bridge.store.db import Database
from bridge.store.models import OrgKey

__all__ = ["Staff", "StaffSession"]

# Who may fetch the sealed private key of their own organisation.
_KEY_HOLDERS = frozenset({Role.COUNSELLOR, Role.OFFICER, Role.SUPERVISOR, Role.ADMIN})


@dataclass(frozen=True)
class StaffSession:
    token: str
    expires_at: datetime
    user_id: str
    role: str
    org: str


class Staff:
    def __init__(self, db: Database, log: Log, clock: Clock) -> None:
        self.db = db
        self.log = log
        self.clock = clock

    async def log_in(
        self, username: str, password: str, *, lifetime: timedelta, opslimit: int, memlimit: int
    ) -> StaffSession:
        """A new bearer token for a right password, else ``Unauthenticated``."""
        account = await check_password(
            self.db, username, password, opslimit=opslimit, memlimit=memlimit
        )
        now = self.clock()
        async with self.db.session() as session, session.begin():
            await still_valid(session, account)
            token, expires_at = await issue_token(
                session, now=now, lifetime=lifetime, account_id=account.id
            )
        return StaffSession(token, expires_at, account.id, account.role, account.org)

    async def log_out(self, token: str) -> Credential:
        """Revoke a valid token; its open sockets are the edge's to end."""
        async with self.db.session() as session, session.begin():
            return await revoke_token(session, token, self.clock())

    async def add_account(
        self,
        username: str,
        password: str,
        *,
        role: str,
        org: str,
        region: str | None,
        gender: str | None,
        opslimit: int,
        memlimit: int,
    ) -> str:
        """A new staff account (``bridge user add``, the demo accounts); its id."""
        async with self.db.session() as session, session.begin():
            account = await create_account(
                session,
                username=username,
                password=password,
                role=role,
                org=org,
                region=region,
                gender=gender,
                now=self.clock(),
                opslimit=opslimit,
                memlimit=memlimit,
            )
        return account.id

    async def set_disabled(self, username: str, disabled: bool) -> str:
        """Disable (revoking every token) or enable an account from the command line; its id.

        A running server is another process: it sees the change in the database and ends the
        account's sockets within ``session_check_seconds``."""
        async with self.db.session() as session, session.begin():
            account = await set_disabled(session, username, disabled)
            await self.log.append(
                session,
                "account.disabled" if disabled else "account.enabled",
                at=self.clock(),
                actor=CLI_ADMIN,
                user_id=account.id,
            )
        return account.id

    async def org_keys(self, org: str) -> Sequence[OrgKey]:
        """Every version of the org's key, oldest first; the last is the one to seal to."""
        async with self.db.reading() as session:
            return await _versions(session, org)

    async def sealed_org_key(
        self, authorization: str, org: str, key_id: str | None = None
    ) -> dict[str, object]:
        """A version of the org's private key (the newest unless ``key_id`` names one), sealed
        under its passphrase, for staff of that org whose ``Authorization`` header this is;
        logged. The token is read in the transaction that logs the fetch."""
        token = bearer_token(authorization)
        now = self.clock()
        async with self.db.session() as session, session.begin():
            principal = await authenticate(session, token, now)
            if principal.org != org or principal.role not in _KEY_HOLDERS:
                raise Forbidden("only staff of that organisation may fetch its sealed key")
            keys = await _versions(session, org)
            named = keys[-1:] if key_id is None else [k for k in keys if k.key_id == key_id]
            if not named:
                raise NotFound(f"the {org} key has no version {key_id}")
            key = named[0]
            await self.log.append(
                session,
                "org_key.fetched",
                at=now,
                actor={"role": principal.role, "user_id": principal.account_id},
                org=org,
                key_id=key.key_id,
            )
        return key.sealed


async def _versions(session: AsyncSession, org: str) -> Sequence[OrgKey]:
    if org not in ORGS:
        raise NotFound("no such organisation")
    keys = await orgkeys.versions(session, org)
    if not keys:
        raise NotFound(f"the {org} key has not been made yet (bridge keys init-org {org})")
    return keys
