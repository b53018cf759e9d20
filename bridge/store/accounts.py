"""Queries of staff accounts and of tokens; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import Account, Token

__all__ = ["by_username", "revoke", "revoke_all_of", "valid_token_hashes"]


async def by_username(session: AsyncSession, username: str) -> Account | None:
    return await session.scalar(select(Account).where(Account.username == username))


async def revoke(session: AsyncSession, token_hash: str) -> None:
    await session.execute(update(Token).where(Token.token_hash == token_hash).values(revoked=True))


async def revoke_all_of(session: AsyncSession, account_id: str) -> None:
    await session.execute(
        update(Token)
        .where(Token.account_id == account_id, Token.revoked.is_(False))
        .values(revoked=True)
    )


async def valid_token_hashes(
    session: AsyncSession, token_hashes: Iterable[str], now: datetime
) -> set[str]:
    """Those of ``token_hashes`` unrevoked, unexpired, and not of a disabled account."""
    rows = await session.scalars(
        select(Token.token_hash)
        .outerjoin(Account, Account.id == Token.account_id)
        .where(
            Token.token_hash.in_(list(token_hashes)),
            Token.revoked.is_(False),
            Token.expires_at > now,
            (Token.account_id.is_(None)) | (Account.disabled.is_(False)),
        )
    )
    return set(rows)
