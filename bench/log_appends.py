"""Appends per second to the Merkle log, inside transactions as the server makes them.

Two measurements, each against its baseline measured in the same process on the same kind of
database (a fresh file each):

- one append per transaction, as a single state change makes it: the commit (an fsync with
  ``synchronous=FULL``) is part of every append. Baseline: as many transactions that each insert
  one row of the same size with no log work (no JCS, no hashing, no tree head, no checkpoints).
- ``--group`` appends per transaction, as a transaction that carries several makes them (setting
  up a conversation, a group commit): the tree head is read and written once for all of them.
  Baseline: as many transactions that each insert as many such rows with one statement.

The ratios are what the log costs against the same work without it.

    .venv/bin/python bench/log_appends.py [--appends 3000] [--group 100] [--rounds 3]
        [--sqlite-synchronous FULL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from nacl.signing import SigningKey
from sqlalchemy import insert

from bridge.log.logkey import LogKey
from bridge.log.writer import Log
from bridge.store.db import Database, upgrade
from bridge.store.models import LogEntry

ACTOR = {"role": "officer", "user_id": "6f1c3c1e-93c5-4d5e-9a39-8f2f0a7b1c11"}
CONVERSATION = "2b0f1a3c-6a4e-4f43-9f0e-5d7c1e2a9b10"
ROW = '{"kind":"transcript.read","padding":"' + "x" * 300 + '"}'


async def _database(folder: Path, name: str, synchronous: str) -> Database:
    db = Database(f"sqlite+aiosqlite:///{folder / name}", sqlite_synchronous=synchronous)
    await upgrade(db)
    return db


async def plain(db: Database, count: int, group: int) -> float:
    """Rows a second, ``group`` plain rows a transaction."""
    started = time.perf_counter()
    for first in range(0, count, group):
        rows = [
            {
                "idx": index,
                "kind": "baseline",
                "conversation_id": CONVERSATION,
                "entry": ROW,
                "leaf_hash": "-" * 43,
            }
            for index in range(first, min(first + group, count))
        ]
        async with db.session() as session, session.begin():
            await session.execute(insert(LogEntry), rows)
    return count / (time.perf_counter() - started)


async def appends(db: Database, count: int, group: int) -> float:
    """Log appends a second, ``group`` appends a transaction."""
    log = Log(LogKey(SigningKey.generate(), "bench/log"), checkpoint_every=100)
    started = time.perf_counter()
    for first in range(0, count, group):
        async with db.session() as session, session.begin():
            for seq in range(first, min(first + group, count)):
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


def _median(rates: list[float]) -> float:
    return sorted(rates)[len(rates) // 2]


async def main(count: int, group: int, synchronous: str, rounds: int) -> None:
    # Each round measures the four one after the other, on fresh files; on a shared machine the
    # median over rounds is steadier than any one run.
    runs = {"plain-1": (plain, 1), "log-1": (appends, 1), "plain-n": (plain, group)}
    runs["log-n"] = (appends, group)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for round in range(rounds):
            for name, (run, size) in runs.items():
                db = await _database(Path(tmp), f"{name}-{round}.db", synchronous)
                rates[name].append(await run(db, count, size))
                await db.dispose()
    base_one, log_one, base_group, log_group = (_median(rates[name]) for name in runs)

    def line(label: str, name: str, note: str = "") -> None:
        low, high = min(rates[name]), max(rates[name])
        median = _median(rates[name])
        print(f"  {label:36s} {median:8.0f} /s{note} ({low:.0f} to {high:.0f})")

    print(f"SQLite synchronous={synchronous}, {count} appends, median of {rounds} rounds")
    print("one append per transaction:")
    line("transactions with a plain insert:", "plain-1", " (baseline)")
    line("transactions with a log append:", "log-1")
    print(f"  {'ratio (log / baseline):':36s} {log_one / base_one:8.2f}")
    print(f"{group} appends per transaction:")
    line(f"plain rows, {group} a transaction:", "plain-n", " (baseline)")
    line(f"log appends, {group} a transaction:", "log-n")
    print(f"  {'ratio (log / baseline):':36s} {log_group / base_group:8.2f}")
    print(f"  {'against one-row transactions:':36s} {log_group / base_one:8.1f} x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--group", type=int, default=100, help="appends per transaction")
    parser.add_argument("--sqlite-synchronous", default="FULL", choices=["NORMAL", "FULL"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.appends, args.group, args.sqlite_synchronous, args.rounds))
