"""The whole suite on SQLite (the embedded default) and, at the same time, on PostgreSQL.

Each pass is its own pytest process, so each has a core of its own on a two-core machine. The
SQLite pass prints as it goes; the PostgreSQL pass writes to ``.pytest-postgresql.log`` and its
report follows. Both must pass: any other exit status (5 among them, "no tests ran") fails.
Arguments are handed to both passes (``python tests/run_both.py -m "not heavy"``).

The PostgreSQL pass leaves out what never reaches a database (``NO_DATABASE``: pure code, file
checks), the browser tests (``BROWSER``: the pages are clients, and what they ask of the server
is asked by the integration tests on both databases; two browsers at once on two cores also slow
each other past the tests' patience) and the throughput runs (``THROUGHPUT``: the storm, the short
load and the short comparison, which picks its targets' databases itself), whose database path is
the crash test's, which runs on both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / ".pytest-postgresql.log"

NO_DATABASE = (
    "tests/unit/client",
    "tests/unit/domain/test_group_commit.py",
    "tests/unit/policy",
    "tests/unit/test_client_offline.py",
    "tests/unit/test_crypto.py",
    "tests/unit/test_layers.py",
    "tests/unit/test_limiters.py",
    "tests/unit/test_protocol.py",
    "tests/unit/test_redis_limits.py",
    "tests/unit/test_security_doc.py",
    "tests/unit/test_signed_envelope.py",
    "tests/deploy",
)
BROWSER = ("tests/browser",)
THROUGHPUT = (
    "tests/adversarial/test_storm.py",
    "tests/adversarial/test_load_short.py",
    "tests/bench",  # the comparison chooses its targets' databases itself
)


def main(args: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest", *args]
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_TEST_DATABASE"}
    with LOG.open("w") as log:
        skipped = [f"--ignore={path}" for path in (*NO_DATABASE, *BROWSER, *THROUGHPUT)]
        postgres = subprocess.Popen(
            [*pytest, *skipped, "-p", "no:cacheprovider"],
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
