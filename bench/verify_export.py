"""Benchmark: verify a large audit-log export offline (``bridge.log.verify``).

Generates an export of ``--entries`` entries (default 1,000,000) with a checkpoint every
``--every`` entries (default 100) into a temporary file, then times ``verify_export_file``
against a baseline measured in the same process: reading the same file line by line and
hashing each line with SHA-256, which is the least any verifier must do. Prints both times and
their ratio. Run from the repository root::

    .venv/bin/python bench/verify_export.py [--entries N] [--every K]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from nacl.signing import SigningKey

from bridge.crypto import b64u_encode, jcs, sign_object
from bridge.log.merkle import frontier_append, frontier_root, leaf_hash
from bridge.log.signed_note import key_hash
from bridge.log.verify import verify_export_file

ORIGIN = "bridge.example/log"
# The generated objects have ASCII keys, no floats and small integers, for which this encoding
# is exactly JCS (checked against bridge.crypto.jcs on the first lines); jcs itself is slower.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_KINDS = (
    "consent.requested",
    "consent.granted",
    "invite.created",
    "invite.accepted",
    "officer.joined",
    "transcript.read",
    "bridge.paused",
    "bridge.resumed",
    "officer.left",
    "consent.withdrawn",
)


def _entry(index: int, prev: dict[str, object] | None) -> dict[str, object]:
    kind = _KINDS[index % len(_KINDS)]
    seconds = 1_750_000_000 + index
    entry: dict[str, object] = {
        "kind": kind,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds)),
        "prev_checkpoint": prev,
        "conversation": f"c-{index // 40:08x}-4a1f-9c2e",
        "actor": {"role": "officer" if index % 3 else "counsellor", "user_id": f"u{index % 97}"},
    }
    if kind == "transcript.read":
        entry.update(scope="investigation", first_seq=1 + index % 50, last_seq=60 + index % 50)
    return entry


def _header(key: SigningKey, head: dict[str, object]) -> bytes:
    header = {
        "format": "fier-bridge-log/1",
        "head": head,
        "log_key": {"ed25519": b64u_encode(bytes(key.verify_key)), "key_id": head["key_id"]},
        "origin": ORIGIN,
    }
    return jcs(header) + b"\n"


def _lines(
    entries: int, every: int, key: SigningKey, final: list[dict[str, object]]
) -> Iterator[bytes]:
    """The export after its header; the last checkpoint (the head) is left in ``final``."""
    key_id = key_hash(ORIGIN, bytes(key.verify_key)).hex()
    frontier: list[bytes] = []
    prev: dict[str, object] | None = None

    def checkpoint(size: int) -> bytes:
        nonlocal prev
        root = b64u_encode(frontier_root(frontier))
        cp: dict[str, object] = {"key_id": key_id, "root": root, "size": size, "time": "t"}
        cp["sig"] = sign_object(cp, key)
        prev = {"root": root, "size": size}
        final[:] = [cp]
        return jcs({"checkpoint": cp}) + b"\n"

    for index in range(entries):
        entry = _entry(index, prev)
        encoded = _ENCODER.encode(entry).encode()
        if index < 1000:
            assert encoded == jcs(entry)
        frontier = frontier_append(frontier, index, leaf_hash(encoded))
        yield b'{"entry":' + encoded + b',"index":' + str(index).encode() + b"}\n"
        if (index + 1) % every == 0 and index + 1 != entries:
            yield checkpoint(index + 1)
    yield checkpoint(entries)


def _baseline(path: Path) -> float:
    start = time.perf_counter()
    with open(path, "rb", buffering=1 << 20) as export:
        for line in export:
            hashlib.sha256(line).digest()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100, help="entries between checkpoints")
    args = parser.parse_args(argv)
    key = SigningKey.generate()
    fd, name = tempfile.mkstemp(suffix=".jsonl", prefix="export-")
    path = Path(name)
    try:
        start = time.perf_counter()
        final: list[dict[str, object]] = []
        body = path.with_suffix(".body")
        with open(body, "wb") as out:
            out.writelines(_lines(args.entries, args.every, key, final))
        with os.fdopen(fd, "wb") as out, open(body, "rb") as rest:
            out.write(_header(key, final[0]))
            shutil.copyfileobj(rest, out, 1 << 20)
        body.unlink()
        generated = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
        print(f"export: {args.entries} entries, checkpoint every {args.every}, {size_mb:.0f} MB")
        print(f"generated in {generated:.1f} s")
        baseline = _baseline(path)  # also warms the page cache for the verifier
        baseline = min(baseline, _baseline(path))
        start = time.perf_counter()
        report = verify_export_file(path, log_key=b64u_encode(bytes(key.verify_key)))
        verified = time.perf_counter() - start
        if not report.ok or report.size != args.entries:
            print(f"verification failed: {report}", file=sys.stderr)
            return 1
        print(f"baseline (read + SHA-256 per line): {baseline:.2f} s")
        print(f"verify_export_file:                 {verified:.2f} s")
        print(f"ratio: {verified / baseline:.1f}x, {args.entries / verified:,.0f} entries/s")
        return 0
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
