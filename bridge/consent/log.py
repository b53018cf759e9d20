"""The append-only log of consent decisions and accesses (DESIGN.md, "The log").

Every entry is the canonical JSON (JCS) of an object ``{kind, at, conversation?, actor?, ...}``
with no content and no victim-identifying data. Entries are appended inside the caller's
transaction, so a state change and its entry commit together or not at all. Each entry carries
its RFC 9162 leaf hash, ``SHA-256(0x00 || JCS(entry))``, and a chain hash over all entries before
it, so that a change, removal or reordering of any entry shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.crypto import b64u_encode, jcs, sha256
from bridge.store.models import LogEntry

__all__ = ["append", "iso", "leaf_hash"]

_EMPTY_CHAIN = b64u_encode(sha256(b""))


def iso(moment: datetime) -> str:
    """The log's time format: UTC, whole seconds, ``Z`` (no floats in a log entry)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def leaf_hash(entry_jcs: bytes) -> bytes:
    """RFC 9162, section 2.1.1: a leaf is hashed with a 0x00 prefix."""
    return sha256(b"\x00" + entry_jcs)


async def append(
    session: AsyncSession,
    kind: str,
    *,
    at: datetime,
    conversation_id: str | None = None,
    actor: Mapping[str, object] | None = None,
    **fields: object,
) -> int:
    """Append one entry in the caller's transaction and return its 0-based index."""
    last = (
        await session.execute(
            select(LogEntry.idx, LogEntry.chain_hash).order_by(LogEntry.idx.desc()).limit(1)
        )
    ).first()
    index, previous_chain = (0, _EMPTY_CHAIN) if last is None else (last[0] + 1, last[1])
    entry: dict[str, object] = {"kind": kind, "at": iso(at), "prev_checkpoint": None}
    if conversation_id is not None:
        entry["conversation"] = conversation_id
    if actor is not None:
        entry["actor"] = dict(actor)
    entry.update(fields)
    encoded = jcs(entry)
    leaf = leaf_hash(encoded)
    chain = sha256(previous_chain.encode() + leaf)
    session.add(
        LogEntry(
            idx=index,
            kind=kind,
            conversation_id=conversation_id,
            entry=encoded.decode(),
            leaf_hash=b64u_encode(leaf),
            chain_hash=b64u_encode(chain),
        )
    )
    return index
