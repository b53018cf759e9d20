"""The session check reads the tokens of the open sockets a batch at a time, each query the same
statement of ``sessions.CHECK_BATCH`` parameters, so that what the driver keeps prepared stays
small with tens of thousands of sockets open: a token revoked elsewhere (the CLI, another node)
still ends its sockets, in whichever batch they fall, and only those."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

import pytest
from raw_socket import RawSocket
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.edges.app import DB
from bridge.edges.socket import sessions
from bridge.store import accounts
from harness import Bridge


@pytest.mark.settings(session_check_seconds=0.1)
async def test_a_token_revoked_elsewhere_ends_its_socket_whatever_its_batch(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "CHECK_BATCH", 2)
    asked: list[list[str]] = []
    valid_tokens = sessions.valid_tokens

    async def counted(session: AsyncSession, hashes: Iterable[str], now: datetime) -> set[str]:
        asked.append(list(hashes))
        return await valid_tokens(session, hashes, now)

    monkeypatch.setattr(sessions, "valid_tokens", counted)
    tokens = [await bridge.token("counsellor") for _ in range(5)]
    socks = [await RawSocket.open(bridge.url, token) for token in tokens]
    hashes = [hashlib.sha256(token.encode()).hexdigest() for token in tokens]
    try:
        # Revoked in the database only, as another process does: nothing here is told.
        async with bridge.app[DB].session() as session, session.begin():
            for token_hash in (hashes[0], hashes[4]):
                await accounts.revoke(session, token_hash)
        assert await socks[0].ended()
        assert await socks[4].ended()
        for sock in socks[1:4]:
            # Still connected and authenticated (no device registered yet).
            assert (await sock.call("queue.list", {}))["error"]["code"] == "wrong_state"
    finally:
        for sock in socks:
            await sock.close()
    assert asked
    # Two sockets a query, the last one of five padded: one statement, whatever the count.
    assert {len(batch) for batch in asked} == {2}
    assert set(hashes) <= {token_hash for batch in asked for token_hash in batch}
