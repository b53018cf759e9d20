"""The auditor's commands: ``bridge audit export``, ``bridge audit verify`` and ``bridge audit
check``.

Like the verifier they drive, they import nothing of the server: an auditor can run them on a
machine of their own, against an export or a running bridge.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

from bridge.crypto import b64u_decode, b64u_encode, jcs
from bridge.log.export import ExportError, fetch_export
from bridge.log.merkle import VerificationError, frontier_append, frontier_root, leaf_hash
from bridge.log.progress import Progress
from bridge.log.rules import RULES, check_rules
from bridge.log.signed_note import CheckpointBody, open_note, vkey
from bridge.log.verify import ROTATED, Report, verify_export

__all__ = ["check_command", "export_command", "verify_command"]


async def export_command(url: str, token: str, out: Path) -> int:
    try:
        lines = await fetch_export(url, token)
    except (ExportError, OSError) as exc:
        print(f"bridge audit export: {exc}")
        return 1
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(b"".join(line + b"\n" for line in lines))
    os.replace(partial, out)
    head = json.loads(lines[0])["head"]
    print(f"exported {head['size']} entries to {out} (root {head['root']})")
    return 0


def _root_at(lines: Sequence[bytes], size: int) -> bytes:
    """The Merkle root of the first ``size`` entries of an export already verified."""
    frontier: list[bytes] = []
    for line in lines[1:]:
        item = json.loads(line)
        if "entry" not in item:
            continue
        index = item["index"]
        if index >= size:
            break
        frontier = frontier_append(frontier, index, leaf_hash(jcs(item["entry"])))
    return frontier_root(frontier)


def _latest_key(lines: Sequence[bytes]) -> str:
    """The log key in force at the end of an export already verified: the header's, or the
    new key of its last rotation."""
    key = str(json.loads(lines[0])["log_key"]["ed25519"])
    for line in lines[1:]:
        entry = json.loads(line).get("entry", {})
        if entry.get("kind") == ROTATED:
            key = entry["new_ed25519"]
    return key


def _check_note(
    lines: Sequence[bytes], report: Report, note: str, witnesses: Sequence[str]
) -> CheckpointBody:
    """The cosigned note must be signed by the log key in force, cosigned by every given
    witness, and agree with the export at its size."""
    header = json.loads(lines[0])
    log_vkey = vkey(header["origin"], b64u_decode(_latest_key(lines)))
    checkpoint = open_note(note, log_vkey, witnesses)
    if checkpoint.origin != header["origin"]:
        raise VerificationError(f"the note is of {checkpoint.origin!r}, not this log")
    if checkpoint.size > report.size:
        raise VerificationError(
            f"the note covers {checkpoint.size} entries; the export has only {report.size}"
        )
    calculated = _root_at(lines, checkpoint.size)
    if calculated != checkpoint.root:
        raise VerificationError(
            f"the note's root for size {checkpoint.size} is {b64u_encode(checkpoint.root)}, "
            f"the export's is {b64u_encode(calculated)}"
        )
    return checkpoint


async def verify_command(args: argparse.Namespace, token: str | None) -> int:
    try:
        if args.url:
            assert token is not None
            lines = await fetch_export(args.url, token)
        else:
            lines = [line.rstrip(b"\n") for line in args.export.read_bytes().splitlines(True)]
        previous = [json.loads(path.read_text()) for path in args.previous]
        counted = Progress("entries verified", len(lines)).counting(lines)
        report = verify_export(
            (line + b"\n" for line in counted), log_key=args.log_key, previous=previous
        )
        if report.failure is not None:
            failure = report.failure
            where = "the header" if failure.index is None else f"index {failure.index}"
            print(
                f"bridge audit verify: NOT INTACT at {where} (line {failure.line}): "
                f"{failure.reason}"
            )
            return 1
        witnessed = ""
        if args.note is not None:
            checkpoint = _check_note(lines, report, args.note.read_text(), args.witness_key)
            witnessed = (
                f"; the note of size {checkpoint.size} agrees, with "
                f"{len(args.witness_key)} witness cosignature(s)"
            )
    except (ExportError, OSError, ValueError, VerificationError) as exc:
        print(f"bridge audit verify: NOT INTACT: {exc}")
        return 1
    print(
        f"intact: {report.size} entries, root {report.root}, "
        f"{report.checkpoints} signed checkpoints{witnessed}"
    )
    return 0


def check_command(args: argparse.Namespace) -> int:
    """``bridge audit check``: the export verified first, then the agreed rules run over it;
    every breach named with its entries. Exit 0 only for an intact log that kept to them."""
    try:
        lines = args.export.read_bytes().splitlines(True)
        report = verify_export(
            Progress("entries verified", len(lines)).counting(lines), log_key=args.log_key
        )
    except (OSError, ValueError, VerificationError) as exc:
        print(f"bridge audit check: NOT INTACT: {exc}")
        return 1
    if report.failure is not None:
        where = "the header" if report.failure.index is None else f"index {report.failure.index}"
        print(f"bridge audit check: NOT INTACT at {where}: {report.failure.reason}")
        return 1
    entries = []
    for line in lines[1:]:
        item = json.loads(line)
        if "entry" in item:
            entries.append((int(item["index"]), item["entry"]))
    breaches = check_rules(Progress("entries checked", len(entries)).counting(entries))
    if not breaches:
        print(f"kept to the agreed rules: {len(entries)} entries, rules {', '.join(RULES)}")
        return 0
    print(f"bridge audit check: {len(breaches)} breach(es) of the agreed rules:")
    for breach in breaches:
        involved = ", ".join(str(index) for index in breach.entries)
        print(f"- index {breach.index} ({breach.rule}; entries {involved}): {breach.text}")
    return 1
