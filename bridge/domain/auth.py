"""Staff accounts (Argon2id), bearer tokens, and anonymous victim tokens.

Tokens are 256-bit random strings handed to the client once and stored only as their SHA-256.
A victim token is bound to one conversation and names no person. Password checks run Argon2id
in a worker thread so they never block the event loop, and an unknown user costs the same work
and gets the same answer as a wrong password.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from nacl import pwhash
from nacl.exceptions import InvalidkeyError
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.roles import Role
from bridge.errors import Conflict, Invalid, NotFound, Unauthenticated
from bridge.store import accounts
from bridge.store.db import Database
from bridge.store.models import Account, Token

__all__ = [
    "ORGS_BY_ROLE",
    "Credential",
    "Principal",
    "authenticate",
    "authenticate_bearer",
    "authenticate_token",
    "bearer_token",
    "check_password",
    "create_account",
    "hash_password",
    "issue_token",
    "revoke_token",
    "set_disabled",
    "still_valid",
    "valid_tokens",
]

# Which organisation each staff role belongs to (DESIGN.md, "Roles and scopes").
ORGS_BY_ROLE: Final[dict[str, tuple[str, ...]]] = {
    Role.COUNSELLOR: ("fier",),
    Role.SUPERVISOR: ("fier",),
    Role.OFFICER: ("avim",),
    Role.AUDITOR: ("audit",),
    Role.ADMIN: ("fier", "avim", "audit"),
}
STAFF_ROLES: Final = tuple(ORGS_BY_ROLE)
_LOGIN_FAILED: Final = "unknown user or wrong password"


@dataclass(frozen=True)
class Principal:
    """Who a token speaks for: a staff account, or the victim of one conversation."""

    role: str
    account_id: str | None = None
    org: str | None = None
    region: str | None = None
    gender: str | None = None
    conversation_id: str | None = None
    victim_device_id: str | None = None

    @property
    def is_victim(self) -> bool:
        return self.role == Role.VICTIM


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def hash_password(password: str, opslimit: int, memlimit: int) -> str:
    hashed: bytes = await asyncio.to_thread(
        pwhash.argon2id.str, password.encode(), opslimit=opslimit, memlimit=memlimit
    )
    return hashed.decode()


async def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(
            await asyncio.to_thread(
                pwhash.argon2id.verify, password_hash.encode(), password.encode()
            )
        )
    except InvalidkeyError:
        return False


async def create_account(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: str,
    org: str,
    region: str | None,
    gender: str | None,
    now: datetime,
    opslimit: int,
    memlimit: int,
) -> Account:
    if role not in ORGS_BY_ROLE:
        raise Invalid(f"role must be one of {', '.join(STAFF_ROLES)}")
    if org not in ORGS_BY_ROLE[role]:
        raise Invalid(f"a {role} belongs to {' or '.join(ORGS_BY_ROLE[role])}")
    if role != Role.OFFICER and (region is not None or gender is not None):
        raise Invalid("region and gender are kept for officers only")
    if gender not in (None, "female", "male", "other"):
        raise Invalid("gender must be female, male or other")
    if len(password) < 8:
        raise Invalid("a password has at least 8 characters")
    if await accounts.by_username(session, username) is not None:
        raise Conflict(f"the user {username!r} exists already")
    account = Account(
        id=str(uuid.uuid4()),
        username=username,
        password_hash=await hash_password(password, opslimit, memlimit),
        role=role,
        org=org,
        region=region,
        gender=gender,
        disabled=False,
        created_at=now,
    )
    session.add(account)
    return account


@functools.cache
def _dummy_hash(opslimit: int, memlimit: int) -> str:
    return pwhash.argon2id.str(
        secrets.token_bytes(16), opslimit=opslimit, memlimit=memlimit
    ).decode()


async def check_password(
    db: Database, username: str, password: str, *, opslimit: int, memlimit: int
) -> Account:
    """The account, or ``Unauthenticated`` with one message for every kind of failure.

    Argon2id runs after the read, holding no connection: on SQLite the writer's connection is
    every session's, and a login must not stop the bridge for as long as its hash takes. The
    caller confirms the account with :func:`still_valid` in the transaction that acts on it."""
    async with db.reading() as session:
        account = await accounts.by_username(session, username)
    if account is None:
        # Spend the same Argon2id work on a throwaway hash of the same cost: the response time
        # does not tell whether the user exists.
        dummy = await asyncio.to_thread(_dummy_hash, opslimit, memlimit)
        await _verify(dummy, password)
        raise Unauthenticated(_LOGIN_FAILED)
    if not await _verify(account.password_hash, password) or account.disabled:
        raise Unauthenticated(_LOGIN_FAILED)
    return account


async def still_valid(session: AsyncSession, account: Account) -> None:
    """``Unauthenticated`` if the account was disabled, or its password changed, since
    :func:`check_password` read it."""
    current = await accounts.by_id(session, account.id)
    if current is None or current.disabled or current.password_hash != account.password_hash:
        raise Unauthenticated(_LOGIN_FAILED)


async def issue_token(
    session: AsyncSession,
    *,
    now: datetime,
    lifetime: timedelta,
    account_id: str | None = None,
    conversation_id: str | None = None,
) -> tuple[str, datetime]:
    """A new token for a staff account or a victim's conversation; returns it and its expiry."""
    token = secrets.token_urlsafe(32)
    expires_at = now + lifetime
    session.add(
        Token(
            token_hash=_token_hash(token),
            account_id=account_id,
            conversation_id=conversation_id,
            expires_at=expires_at,
            revoked=False,
        )
    )
    return token, expires_at


@dataclass(frozen=True)
class Credential:
    """A valid token: whom it speaks for, its hash (how open sockets find it again) and expiry."""

    principal: Principal
    token_hash: str
    expires_at: datetime


async def authenticate_token(session: AsyncSession, token: object, now: datetime) -> Credential:
    """The credential of a valid, unexpired token, or ``Unauthenticated``."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise Unauthenticated("a valid token is needed")
    token_hash = _token_hash(token)
    holder = await accounts.token_holder(session, token_hash)
    if holder is None or holder.revoked or holder.expires_at <= now:
        raise Unauthenticated("a valid token is needed")
    if holder.conversation_id is not None:
        principal = Principal(
            role=Role.VICTIM.value,
            conversation_id=holder.conversation_id,
            victim_device_id=holder.victim_device_id,
        )
        return Credential(principal, token_hash, holder.expires_at)
    if holder.role is None or holder.disabled:  # no such account, or a disabled one
        raise Unauthenticated("a valid token is needed")
    principal = Principal(
        role=holder.role,
        account_id=holder.account_id,
        org=holder.org,
        region=holder.region,
        gender=holder.gender,
    )
    return Credential(principal, token_hash, holder.expires_at)


async def authenticate(session: AsyncSession, token: object, now: datetime) -> Principal:
    """The principal of a valid, unexpired token, or ``Unauthenticated``."""
    return (await authenticate_token(session, token, now)).principal


async def revoke_token(session: AsyncSession, token: object, now: datetime) -> Credential:
    """Revoke a valid token (a logout); ``Unauthenticated`` if it is not one."""
    credential = await authenticate_token(session, token, now)
    await accounts.revoke(session, credential.token_hash)
    return credential


async def set_disabled(session: AsyncSession, username: str, disabled: bool) -> Account:
    """Disable (revoking every token of the account) or enable a staff account."""
    account = await accounts.by_username(session, username)
    if account is None:
        raise NotFound(f"no user {username!r}")
    account.disabled = disabled
    if disabled:
        await accounts.revoke_all_of(session, account.id)
    return account


async def valid_tokens(
    session: AsyncSession, token_hashes: Iterable[str], now: datetime
) -> set[str]:
    """Those of ``token_hashes`` that are still valid: one query for every open socket."""
    return await accounts.valid_token_hashes(session, token_hashes, now)


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ``Unauthenticated``."""
    if not header.startswith("Bearer "):
        raise Unauthenticated("a bearer token is needed")
    return header[len("Bearer ") :]


async def authenticate_bearer(db: Database, header: str, now: datetime) -> Principal:
    """The principal of an ``Authorization: Bearer <token>`` header."""
    token = bearer_token(header)
    async with db.reading() as session:
        return await authenticate(session, token, now)
