"""Queries of staff accounts and of tokens; the caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.store.models import Account, Conversation, Token

__all__ = [
    "TokenHolder",
    "by_id",
    "by_username",
    "revoke",
    "revoke_all_of",
    "token_holder",
    "valid_token_hashes",
]


class TokenHolder(NamedTuple):
    """A stored token and whom it speaks for: a staff account (``role`` to ``disabled`` are
    None without one) or a conversation's victim (``victim_device_id``)."""

    expires_at: datetime
    revoked: bool
    account_id: str | None
    conversation_id: str | None
    victim_device_id: str | None
    role: str | None
    org: str | None
    region: str | None
    gender: str | None
    disabled: bool | None


async def by_username(session: AsyncSession, username: str) -> Account | None:
    return await session.scalar(select(Account).where(Account.username == username))


async def by_id(session: AsyncSession, account_id: str) -> Account | None:
    return await session.get(Account, account_id)


async def token_holder(session: AsyncSession, token_hash: str) -> TokenHolder | None:
    """The token with its account or conversation, in one query."""
    row = (
        await session.execute(
            select(
                Token.expires_at,
                Token.revoked,
                Account.id,
                Conversation.id,
                Conversation.victim_device_id,
                Account.role,
                Account.org,
                Account.region,
                Account.gender,
                Account.disabled,
            )
            .outerjoin(Account, Account.id == Token.account_id)
            .outerjoin(Conversation, Conversation.id == Token.conversation_id)
            .where(Token.token_hash == token_hash)
        )
    ).first()
    return None if row is None else TokenHolder._make(row)


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
