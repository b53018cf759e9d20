"""Appends per second to the Merkle log, inside transactions as the server makes them.

Baseline, measured in the same process on the same kind of database: the same number of
transactions that each insert one row of the same size with no log work (no JCS, no hashing, no
tree head, no checkpoints). The ratio is what the log costs a state change.

    .venv/bin/python bench/log_appends.py [--appends 3000] [--sqlite-synchronous FULL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from nacl.signing import SigningKey

from bridge.log.logkey import LogKey
from bridge.log.writer import Log
from bridge.store.db import Database, upgrade
from bridge.store.models import LogEntry

ACTOR = {"role": "officer", "user_id": "6f1c3c1e-93c5-4d5e-9a39-8f2f0a7b1c11"}
CONVERSATION = "2b0f1a3c-6a4e-4f43-9f0e-5d7c1e2a9b10"


async def _database(folder: Path, name: str, synchronous: str) -> Database:
    db = Database(f"sqlite+aiosqlite:///{folder / name}", sqlite_synchronous=synchronous)
    await upgrade(db)
    return db


async def baseline(db: Database, count: int) -> float:
    row = '{"kind":"transcript.read","padding":"' + "x" * 300 + '"}'
    started = time.perf_counter()
    for index in range(count):
        async with db.session() as session, session.begin():
            session.add(
                LogEntry(idx=index, kind="baseline", conversation_id=None, entry=row, leaf_hash="-")
            )
    return count / (time.perf_counter() - started)


async def appends(db: Database, count: int) -> float:
    log = Log(LogKey(SigningKey.generate(), "bench/log"), checkpoint_every=100)
    started = time.perf_counter()
    for seq in range(count):
        async with db.session() as session, session.begin():
            await log.append(
                session,
                "transcript.read",
                at=datetime.now(UTC),
                conversation_id=CONVERSATION,
                actor=ACTOR,
                scope="investigation",
                first_seq=seq,
                last_seq=seq + 1,
            )
    return count / (time.perf_counter() - started)


async def main(count: int, synchronous: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plain = await _database(folder, "baseline.db", synchronous)
        logged = await _database(folder, "log.db", synchronous)
        base_rate = await baseline(plain, count)
        log_rate = await appends(logged, count)
        await plain.dispose()
        await logged.dispose()
    print(f"transactions with a plain insert: {base_rate:8.0f} /s (baseline)")
    print(f"transactions with a log append:   {log_rate:8.0f} /s")
    print(f"ratio (log / baseline):           {log_rate / base_rate:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--sqlite-synchronous", default="FULL", choices=["NORMAL", "FULL"])
    args = parser.parse_args()
    asyncio.run(main(args.appends, args.sqlite_synchronous))
