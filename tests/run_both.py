"""The whole suite twice at once: on SQLite (the embedded default) and on PostgreSQL.

Each pass is its own pytest process, so each has a core of its own on a two-core machine. The
SQLite pass prints as it goes; the PostgreSQL pass writes to ``.pytest-postgresql.log`` and its
report follows. Both must pass: any other exit status (5 among them, "no tests ran") fails.
Arguments are handed to both passes (``python tests/run_both.py -m "not heavy"``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / ".pytest-postgresql.log"


def main(args: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest", *args]
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_TEST_DATABASE"}
    with LOG.open("w") as log:
        postgres = subprocess.Popen(
            [*pytest, "-p", "no:cacheprovider"],
            cwd=ROOT,
            env={**env, "BRIDGE_TEST_DATABASE": "postgresql"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        print("== the suite on SQLite (on PostgreSQL at the same time, into " + LOG.name + ")")
        sqlite = subprocess.call(pytest, cwd=ROOT, env=env)
        on_postgres = postgres.wait()
    print("\n== the suite on PostgreSQL")
    sys.stdout.write(LOG.read_text())
    print(f"\nSQLite pass: exit {sqlite}; PostgreSQL pass: exit {on_postgres}")
    return 0 if sqlite == 0 and on_postgres == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
