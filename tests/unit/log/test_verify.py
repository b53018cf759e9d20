"""The offline verifier of an audit-log export (bridge/log/verify.py) against DESIGN.md,
"The log", and PROTOCOL.md, "Log entries".

Exports are built here from scratch with a real Ed25519 log key, the reference JCS
(bridge.crypto.jcs) and the Merkle module's own ``root``, so the verifier's fast paths are checked
against the slow definitions. The mutation tests change an export in every way of a kind (every
byte of every entry line, every dropped line, every swap, every truncation) and say exactly where
each must be caught:

- a change that leaves an entry line unreadable, non-canonical or malformed is caught on that
  line, with that entry's index;
- a change that leaves the line canonical and well-formed changes the entry's leaf hash, which
  no line before the next checkpoint depends on, so it is caught at the first checkpoint after
  it (root mismatch), whose failure names the first index after the last verified checkpoint.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from bridge.crypto import b64u_encode, jcs, sign_object
from bridge.log import merkle, verify
from bridge.log.signed_note import key_hash
from bridge.log.verify import (
    FORMAT,
    Failure,
    Report,
    VerificationError,
    verify_export,
    verify_export_file,
)

ORIGIN = "bridge.example/log"
LOG_KEY = SigningKey(bytes(range(32)))
OTHER_KEY = SigningKey(bytes(range(100, 132)))
ROOT = Path(__file__).parents[3]

Entry = dict[str, Any]


def public(key: SigningKey) -> str:
    return b64u_encode(bytes(key.verify_key))


def key_id(key: SigningKey, origin: str = ORIGIN) -> str:
    return key_hash(origin, bytes(key.verify_key)).hex()


def sample_entries(count: int) -> list[Entry]:
    """Entries of varied kinds, as the log holds them (no content, pseudonyms only); one holds
    non-ASCII text and escaped control characters, so both canonical checks are exercised."""
    made: list[Entry] = []
    for i in range(count):
        base: Entry = {
            "at": f"2025-06-01T10:{i // 60:02d}:{i % 60:02d}Z",
            "conversation": f"c{i // 4}",
        }
        officer = {"role": "officer", "user_id": f"o{i % 3}"}
        counsellor = {"role": "counsellor", "user_id": "c1"}
        match i % 8:
            case 0:
                base.update(kind="conversation.started", victim_device={"ed25519": "A" * 43})
            case 1:
                base.update(kind="consent.requested", actor=counsellor, purpose="informational")
            case 2:
                grant = {"request_id": f"r{i}", "choices": {"needs_note": True, "retain": False}}
                base.update(kind="consent.granted", actor={"role": "victim"}, grant=grant)
            case 3:
                base.update(kind="transcript.read", actor=officer, scope="investigation")
                base.update(first_seq=1, last_seq=i + 3)
            case 4:
                base.update(kind="disclosure.recorded", actor=counsellor, basis="meldcode")
                base.update(to="Veilig Thuis — één regio", note='spoed\n\t\u001f"\\/')
            case 5:
                base.update(kind="history.shared", actor={"role": "victim"}, seqs=[1, 2, i])
            case 6:
                del base["conversation"]
                base.update(kind="policy.changed", actor={"role": "admin", "user_id": "a"})
                base.update(
                    sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                )
            case _:
                base.update(kind="officer.left", actor=officer)
        made.append(base)
    return made


@dataclass
class Export:
    """An export's lines (each with its LF) and where its entries and checkpoints stand."""

    lines: list[bytes]
    entry_positions: list[int]  # entry index -> 0-based position in lines
    checkpoint_positions: list[int]
    checkpoints: list[dict[str, Any]]  # the signed checkpoint objects, in order
    leaves: list[bytes]

    @property
    def data(self) -> bytes:
        return b"".join(self.lines)

    def line_of_entry(self, index: int) -> int:
        return self.entry_positions[index] + 1

    def covering(self, index: int) -> tuple[int, int]:
        """The line of the first checkpoint covering entry ``index``, and the size of the last
        checkpoint before that entry (0 if none): the range a root mismatch there names."""
        line = next(
            position + 1
            for position, cp in zip(self.checkpoint_positions, self.checkpoints, strict=True)
            if cp["size"] > index
        )
        start = max((cp["size"] for cp in self.checkpoints if cp["size"] <= index), default=0)
        return line, start

    def entries_before(self, position: int) -> int:
        return sum(1 for p in self.entry_positions if p < position)


def sign_checkpoint(
    size: int, root: bytes, *, key: SigningKey = LOG_KEY, named: SigningKey | None = None
) -> dict[str, Any]:
    checkpoint: dict[str, Any] = {
        "key_id": key_id(named or key),
        "root": b64u_encode(root),
        "size": size,
        "time": f"2025-06-01T12:00:{size % 60:02d}Z",
    }
    checkpoint["sig"] = sign_object(checkpoint, key)
    return checkpoint


def build_export(
    entries: list[Entry],
    sizes: list[int],
    *,
    key: SigningKey = LOG_KEY,
    header_key: SigningKey | None = None,
    tamper: Callable[[int, Entry], Entry] | None = None,
) -> Export:
    """An export as ``bridge audit export`` writes it: checkpoints of ``sizes`` (sorted, repeats
    allowed) and a final one of all entries. ``key`` signs the checkpoints, ``header_key`` (by
    default the same) is named in the header. ``tamper`` changes an entry before it is hashed,
    so the checkpoints stay consistent with it and only the structural checks can object."""
    header_key = header_key or key
    export = Export([b""], [], [], [], [])
    pending = iter([*sizes, len(entries)])
    upcoming = next(pending, None)
    latest: dict[str, Any] | None = None

    def emit_checkpoints() -> None:
        nonlocal upcoming, latest
        while upcoming == len(export.leaves):
            cp = sign_checkpoint(upcoming, merkle.root(export.leaves), key=key, named=header_key)
            export.checkpoint_positions.append(len(export.lines))
            export.checkpoints.append(cp)
            export.lines.append(jcs({"checkpoint": cp}) + b"\n")
            latest = {"root": cp["root"], "size": cp["size"]}
            upcoming = next(pending, None)

    emit_checkpoints()
    for index, original in enumerate(entries):
        entry = {**original, "prev_checkpoint": latest}
        if tamper is not None:
            entry = tamper(index, entry)
        export.leaves.append(merkle.leaf_hash(jcs(entry)))
        export.entry_positions.append(len(export.lines))
        export.lines.append(jcs({"entry": entry, "index": index}) + b"\n")
        emit_checkpoints()
    header = {
        "format": FORMAT,
        "head": export.checkpoints[-1],
        "log_key": {"ed25519": public(header_key), "key_id": key_id(header_key)},
        "origin": ORIGIN,
    }
    export.lines[0] = jcs(header) + b"\n"
    return export


def check(data: bytes | list[bytes], **kwargs: Any) -> Report:
    """Verify bytes as a file would give them (split after each LF), or a list of lines."""
    lines = io.BytesIO(data) if isinstance(data, bytes) else data
    return verify_export(lines, **kwargs)


def failure_of(data: bytes | list[bytes], **kwargs: Any) -> Failure:
    report = check(data, **kwargs)
    assert report.failure is not None, "the change went unnoticed"
    return report.failure


# Lines: 0 header, 1-5 entries 0-4, 6 cp5, 7-11 entries 5-9, 12 cp10, 13 cp10, 14-16 entries
# 10-12, 17 cp13, 18-24 entries 13-19, 25 cp20 (the export's final checkpoint).
SMALL = build_export(sample_entries(20), [5, 10, 10, 13])
# With a size-0 checkpoint right after the header, repeated sizes, and the final size repeated.
LARGE = build_export(sample_entries(300), [0, 7, 7, 100, 150, 200, 250, 251, 300])


@pytest.fixture(params=sorted(verify._BACKENDS))
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with each parser and encoder the canonical check may use."""
    decode, encode = verify._BACKENDS[request.param]
    monkeypatch.setattr(verify, "_decode", decode)
    monkeypatch.setattr(verify, "_encode", encode)
    return str(request.param)


# --- Good exports ---


def test_large_export_verifies(backend: str) -> None:
    report = check(LARGE.data, log_key=public(LOG_KEY))
    assert report == Report(300, b64u_encode(merkle.root(LARGE.leaves)), 10, None)
    assert report.ok


def test_small_export_verifies_from_a_file_and_from_text_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(SMALL.data)
    expected = Report(20, SMALL.checkpoints[-1]["root"], 5, None)
    assert verify_export_file(path, log_key=public(LOG_KEY)) == expected
    text_lines = SMALL.data.decode("utf-8").splitlines(keepends=True)
    assert verify_export(text_lines, log_key=public(LOG_KEY)) == expected


def test_entry_leaves_are_the_hash_of_the_entry_jcs() -> None:
    """The verifier hashes a slice of the line; the builder hashes jcs(entry) itself."""
    entries = sample_entries(9)
    leaves = [merkle.leaf_hash(jcs({**e, "prev_checkpoint": None})) for e in entries]
    assert build_export(entries, []).leaves == leaves
    assert check(build_export(entries, []).data).root == b64u_encode(merkle.root(leaves))


def test_empty_log_with_only_its_final_checkpoint_verifies() -> None:
    export = build_export([], [])
    assert len(export.lines) == 2
    assert check(export.data) == Report(0, b64u_encode(merkle.EMPTY_ROOT), 1, None)


def test_values_at_the_edge_of_canonical_json_verify(backend: str) -> None:
    """JCS edge cases the fast path must not refuse: the largest safe integers, escaped
    controls, non-ASCII text and keys that sort differently by UTF-16 than by code point."""
    entries = sample_entries(3)
    entries[0].update(n=2**53 - 1, m=-(2**53 - 1), digits="12345678901234567890")
    entries[1].update(note="\u0000\u0008\u000b\u007f\u2028 \U0001f600", slash="a/b")
    entries[2].update({"\ue000": 1, "\U0001f600": 2})  # JCS: U+1F600 (D83D) sorts first
    export = build_export(entries, [1])
    line = export.lines[export.entry_positions[2]]
    assert line.index("\U0001f600".encode()) < line.index("\ue000".encode())
    assert check(export.data).ok


# --- Every single-byte change of an entry line ---


def _printable_other(byte: int) -> int:
    """Another printable byte of the same kind, so that many changes stay well-formed JSON."""
    for first, last in ((0x30, 0x39), (0x61, 0x7A), (0x41, 0x5A)):
        if first <= byte <= last:
            return first + (byte - first + 1) % (last - first + 1)
    return ord("x") if byte != ord("x") else ord("y")


def _mutations(export: Export, position: int) -> Iterator[tuple[int, int, bytes]]:
    line = export.lines[position]
    for offset, byte in enumerate(line):
        for replacement in (byte ^ 0x01, _printable_other(byte)):
            changed = line[:offset] + bytes([replacement]) + line[offset + 1 :]
            lines = [*export.lines[:position], changed, *export.lines[position + 1 :]]
            yield offset, replacement, b"".join(lines)


def test_every_byte_change_of_every_entry_line_is_caught_at_the_entry_or_its_checkpoint() -> None:
    caught_at_entry = caught_at_checkpoint = 0
    for index, position in enumerate(SMALL.entry_positions):
        for offset, replacement, data in _mutations(SMALL, position):
            failure = failure_of(data, log_key=public(LOG_KEY))
            where = f"entry {index}, byte {offset} -> {replacement:#x}: {failure}"
            if failure.line == SMALL.line_of_entry(index):
                assert failure.index == index, where
                caught_at_entry += 1
            else:
                line, start = SMALL.covering(index)
                assert (failure.line, failure.index) == (line, start), where
                assert start <= index and "root" in failure.reason, where
                caught_at_checkpoint += 1
    # Both kinds happen, so neither branch above is vacuous.
    assert caught_at_entry > 1000
    assert caught_at_checkpoint > 500


def test_every_byte_change_of_the_header_is_caught_on_line_1() -> None:
    """The origin too: the key id is the key hash of origin and key, signed in every checkpoint.
    Only a head that names another key is left to the end: it may be a key the export's
    rotations hand over to."""
    for offset, replacement, data in _mutations(SMALL, 0):
        failure = failure_of(data)
        if failure.line != 1:
            assert (failure.line, failure.index) == (len(SMALL.lines) + 1, None), failure
            assert failure.reason.startswith("header head key_id"), failure
            continue
        assert failure.index is None, (offset, replacement, failure)


def test_every_byte_change_of_every_checkpoint_line_is_caught_on_that_line() -> None:
    for position in SMALL.checkpoint_positions:
        entries_before = SMALL.entries_before(position)
        for offset, replacement, data in _mutations(SMALL, position):
            failure = failure_of(data)
            where = (position, offset, replacement, failure)
            assert failure.line == position + 1, where
            # None for a checkpoint that reads but fails; the index due next for a line that
            # cannot be read as a checkpoint at all.
            assert failure.index in (None, entries_before), where


# --- Dropped, swapped and moved lines ---


def test_every_dropped_entry_line_is_caught_with_its_index() -> None:
    for index, position in enumerate(SMALL.entry_positions):
        lines = SMALL.lines[:position] + SMALL.lines[position + 1 :]
        failure = failure_of(lines)
        assert (failure.index, failure.line) == (index, position + 1), failure


def test_every_swap_of_two_entry_lines_is_caught_at_the_first() -> None:
    positions = SMALL.entry_positions
    for i, first in enumerate(positions):
        for second in positions[i + 1 :]:
            lines = list(SMALL.lines)
            lines[first], lines[second] = lines[second], lines[first]
            failure = failure_of(lines)
            assert (failure.index, failure.line) == (i, first + 1), failure
            assert "index" in failure.reason


def test_a_dropped_checkpoint_line_is_caught_unless_its_twin_remains() -> None:
    """Checkpoints of one size carry the same root, and entries name only size and root, so
    one of two twins may go unseen; any other checkpoint is named by the entry after it."""
    for number, position in enumerate(SMALL.checkpoint_positions):
        lines = SMALL.lines[:position] + SMALL.lines[position + 1 :]
        size = SMALL.checkpoints[number]["size"]
        twins = sum(1 for cp in SMALL.checkpoints if cp["size"] == size)
        report = check(lines)
        if twins > 1:
            assert report.ok and report.checkpoints == len(SMALL.checkpoints) - 1
            continue
        assert report.failure is not None
        where = (report.failure.index, report.failure.line)
        if size == 20:  # the final checkpoint: the export ends without a checkpoint of 20
            assert where == (13, position + 1)
            assert "without a checkpoint" in report.failure.reason
        else:  # the entry after it names the dropped checkpoint
            assert where == (size, position + 1)
            assert "prev_checkpoint" in report.failure.reason


def test_a_checkpoint_moved_earlier_or_later_is_caught() -> None:
    cp5 = SMALL.checkpoint_positions[0]  # line 6, after entry 4
    earlier = list(SMALL.lines)
    earlier.insert(cp5 - 1, earlier.pop(cp5))  # before entry 4
    failure = failure_of(earlier)
    assert (failure.index, failure.line) == (4, cp5)
    assert "entries 4..4 are missing" in failure.reason
    later = list(SMALL.lines)
    later.insert(cp5 + 1, later.pop(cp5))  # after entry 5, which names it
    failure = failure_of(later)
    assert (failure.index, failure.line) == (5, cp5 + 1)
    assert "prev_checkpoint" in failure.reason


# --- Truncation ---


def test_every_truncation_is_caught() -> None:
    """The signed head in the header says how many entries follow, so every cut of whole lines
    fails: on the header if it is gone, else at the end, naming where the entries stop."""
    total = len(SMALL.lines)
    for kept in range(total - 1, -1, -1):
        report = check(SMALL.lines[:kept])
        assert report.failure is not None, kept
        if kept == 0:
            assert report.failure == Failure(None, 1, "the export is empty: no header")
            continue
        entries = SMALL.entries_before(kept)
        assert report.failure.line == kept + 1, kept
        if kept - 1 in SMALL.checkpoint_positions:
            assert report.failure.index == entries, kept
            assert "cut short" in report.failure.reason, kept


def test_a_cut_back_to_an_older_head_shows_only_against_a_saved_checkpoint() -> None:
    """Cutting the export back to an earlier checkpoint and putting that checkpoint in the
    header makes a well-formed shorter export; the final checkpoint, saved, shows it."""
    final = SMALL.checkpoints[-1]
    position = SMALL.checkpoint_positions[1]
    older = SMALL.checkpoints[1]
    header = json.loads(SMALL.lines[0])
    header["head"] = older
    lines = [jcs(header) + b"\n", *SMALL.lines[1 : position + 1]]
    assert check(lines).ok
    saved = check(lines, previous=[final])
    assert saved.failure is not None
    assert "cut short" in saved.failure.reason


def test_every_cut_inside_a_line_is_caught_on_that_line() -> None:
    start = 0
    for position, line in enumerate(SMALL.lines):
        expected_index = None if position == 0 else SMALL.entries_before(position)
        for cut in range(1, len(line)):
            failure = failure_of(SMALL.data[: start + cut])
            assert (failure.index, failure.line) == (expected_index, position + 1), (cut, failure)
            assert "LF" in failure.reason
        start += len(line)


# --- Keys ---


def test_wrong_log_key_fails_on_the_header() -> None:
    failure = failure_of(SMALL.data, log_key=public(OTHER_KEY))
    assert failure == Failure(None, 1, "the export's log key is not the given log key")


def test_export_that_brings_its_own_key_verifies_only_without_a_log_key() -> None:
    forged = build_export(sample_entries(20), [5, 10], key=OTHER_KEY)
    assert check(forged.data).ok
    assert failure_of(forged.data, log_key=public(LOG_KEY)).line == 1


def test_checkpoints_signed_by_another_key_fail_at_the_head() -> None:
    export = build_export(sample_entries(20), [5, 10], key=OTHER_KEY, header_key=LOG_KEY)
    failure = failure_of(export.data, log_key=public(LOG_KEY))
    assert (failure.index, failure.line) == (None, 1)
    assert "header head" in failure.reason and "signature does not verify" in failure.reason


def test_a_checkpoint_signed_by_another_key_fails_on_its_line() -> None:
    export = build_export(sample_entries(20), [5, 10])
    position = export.checkpoint_positions[0]
    forged = sign_checkpoint(5, merkle.root(export.leaves[:5]), key=OTHER_KEY, named=LOG_KEY)
    lines = list(export.lines)
    lines[position] = jcs({"checkpoint": forged}) + b"\n"
    failure = failure_of(b"".join(lines), log_key=public(LOG_KEY))
    assert (failure.index, failure.line) == (None, position + 1)
    assert "signature does not verify" in failure.reason


def test_malformed_log_key_argument_raises() -> None:
    with pytest.raises(VerificationError, match="log_key"):
        check(SMALL.data, log_key="not a key")


def test_a_repeated_checkpoint_after_later_entries_is_misplaced() -> None:
    """A second, validly signed checkpoint of size 5 after entry 6: its root is right for size
    5, but the export's frontier is at 7, so it is named as misplaced, not as a second root."""
    lines = list(SMALL.lines)
    lines.insert(SMALL.entry_positions[6] + 1, SMALL.lines[SMALL.checkpoint_positions[0]])
    failure = failure_of(lines)
    assert failure == Failure(None, SMALL.line_of_entry(6) + 1, failure.reason)
    assert "size 5 stands after entry 6" in failure.reason


def test_two_roots_signed_for_one_size_are_reported_as_the_log_key_s_fault() -> None:
    lines = list(SMALL.lines)
    twin = SMALL.checkpoint_positions[2]  # the second checkpoint of size 10
    lines[twin] = jcs({"checkpoint": sign_checkpoint(10, bytes(32))}) + b"\n"
    assert failure_of(lines) == Failure(
        None, twin + 1, "the log key signed two different roots for size 10"
    )


# --- Checkpoints the auditor saved earlier ---


def _rewritten(index: int) -> Export:
    """SMALL with entry ``index`` changed and every checkpoint signed again: a rewrite by
    the holder of the log key, consistent in itself."""

    def change(i: int, entry: Entry) -> Entry:
        return {**entry, "kind": "officer.removed"} if i == index else entry

    return build_export(sample_entries(20), [5, 10, 10, 13], tamper=change)


def test_saved_checkpoints_that_match_pass() -> None:
    assert check(SMALL.data, previous=SMALL.checkpoints).ok
    assert check(SMALL.data, previous=[SMALL.checkpoints[1]]).ok


def test_rewritten_history_fails_against_a_saved_checkpoint() -> None:
    rewritten = _rewritten(7)
    assert check(rewritten.data).ok  # on its own it is consistent
    cp5, cp10 = SMALL.checkpoints[0], SMALL.checkpoints[1]
    failure = failure_of(rewritten.data, previous=[cp10])
    # Caught once the export reaches size 10, after entry 9; the change is in 0..9.
    assert (failure.index, failure.line) == (0, rewritten.line_of_entry(9))
    assert "saved checkpoint of size 10" in failure.reason
    # With size 5 saved too, and matched, the change is narrowed to 5..9.
    failure = failure_of(rewritten.data, previous=[cp10, cp5])
    assert (failure.index, failure.line) == (5, rewritten.line_of_entry(9))


def test_saved_checkpoint_of_the_empty_log_is_compared_before_any_entry() -> None:
    empty = sign_checkpoint(0, bytes(32))  # signed, but not the empty tree's root
    failure = failure_of(SMALL.data, previous=[empty])
    assert (failure.index, failure.line) == (0, 1)
    assert check(LARGE.data, previous=[LARGE.checkpoints[0]]).ok


@pytest.mark.parametrize(
    ("saved", "reason"),
    [
        ({**SMALL.checkpoints[0], "sig": SMALL.checkpoints[1]["sig"]}, "signature does not verify"),
        (sign_checkpoint(5, bytes(32), key=OTHER_KEY, named=LOG_KEY), "signature does not verify"),
        ({k: v for k, v in SMALL.checkpoints[0].items() if k != "sig"}, "exactly"),
        ({**SMALL.checkpoints[0], "size": "5"}, "size is not a non-negative integer"),
    ],
)
def test_malformed_or_foreign_saved_checkpoint_fails_on_the_header(
    saved: dict[str, Any], reason: str
) -> None:
    failure = failure_of(SMALL.data, previous=[SMALL.checkpoints[1], saved])
    assert (failure.index, failure.line) == (None, 1)
    assert "saved checkpoint #1" in failure.reason and reason in failure.reason


def test_saved_checkpoint_of_a_key_the_log_never_had_fails_at_the_end() -> None:
    """A saved checkpoint of another key may be of a key the export hands over to later, so it
    is judged once the whole export is read."""
    saved = {**SMALL.checkpoints[0], "key_id": "00000000"}
    failure = failure_of(SMALL.data, previous=[SMALL.checkpoints[1], saved])
    assert failure == Failure(
        None, len(SMALL.lines) + 1, "saved checkpoint #1 key_id '00000000' names no key of this log"
    )


# --- Structure of lines and entries ---


SMALL_CP5 = {"root": SMALL.checkpoints[0]["root"], "size": 5}


def test_prev_checkpoint_size_true_is_not_size_1() -> None:
    """JSON ``true`` equals 1 in Python; a checkpoint of size 1 must not be named by ``true``."""
    export = build_export(
        sample_entries(3),
        [1],
        tamper=lambda i, e: (
            {**e, "prev_checkpoint": {**e["prev_checkpoint"], "size": True}} if i == 2 else e
        ),
    )
    failure = failure_of(export.data)
    assert (failure.index, failure.line) == (2, export.line_of_entry(2))
    assert "prev_checkpoint" in failure.reason


def _with_entry(index: int, change: Callable[[Entry], Entry]) -> Export:
    return build_export(
        sample_entries(20),
        [5, 10, 10, 13],
        tamper=lambda i, entry: change(entry) if i == index else entry,
    )


@pytest.mark.parametrize(
    ("index", "change", "reason"),
    [
        (3, lambda e: {k: v for k, v in e.items() if k != "prev_checkpoint"}, "no prev_checkpoint"),
        (0, lambda e: {**e, "prev_checkpoint": {"root": "x", "size": 0}}, "(null)"),
        (6, lambda e: {**e, "prev_checkpoint": {**e["prev_checkpoint"], "size": True}}, "size 5"),
        (12, lambda e: {**e, "prev_checkpoint": SMALL_CP5}, "size 10"),
        (13, lambda e: {**e, "prev_checkpoint": None}, "size 13"),
        (4, lambda e: {**e, "kind": 5}, "kind"),
        (4, lambda e: {**e, "kind": ""}, "kind"),
        (9, lambda e: {k: v for k, v in e.items() if k != "at"}, "at"),
        (2, lambda e: {**e, "conversation": ["c0"]}, "conversation"),
        (2, lambda e: {**e, "actor": "victim"}, "actor"),
    ],
)
def test_malformed_entry_is_caught_with_its_index(
    index: int, change: Callable[[Entry], Entry], reason: str
) -> None:
    export = _with_entry(index, change)
    failure = failure_of(export.data)
    assert (failure.index, failure.line) == (index, export.line_of_entry(index))
    assert reason in failure.reason


def _entry_line(index: int) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(SMALL.lines[SMALL.entry_positions[index]])
    return parsed


@pytest.mark.parametrize(
    "line",
    [
        {"entry": _entry_line(3)["entry"], "index": "3"},
        {"entry": _entry_line(3)["entry"], "index": 3, "extra": 1},
        {"entry": [_entry_line(3)["entry"]], "index": 3},
        {"entry": _entry_line(3)["entry"], "index": 4},
        {"entries": _entry_line(3)["entry"], "index": 3},
        {"checkpoint": SMALL.checkpoints[0], "index": 3},
    ],
)
def test_malformed_entry_line_is_caught_with_the_index_due(line: dict[str, Any]) -> None:
    lines = list(SMALL.lines)
    lines[SMALL.entry_positions[3]] = jcs(line) + b"\n"
    failure = failure_of(lines)
    assert (failure.index, failure.line) == (3, SMALL.line_of_entry(3)), failure


@pytest.mark.parametrize(
    "header",
    [
        {"format": "fier-bridge-log/2", "log_key": {}, "origin": ORIGIN},
        {"format": FORMAT, "origin": ORIGIN},
        {
            "format": FORMAT,
            "log_key": {"ed25519": public(LOG_KEY), "key_id": key_id(LOG_KEY)},
            "origin": ORIGIN,
            "note": "an unknown field",
        },
        {"format": FORMAT, "log_key": {"ed25519": public(LOG_KEY)}, "origin": ORIGIN},
        {
            "format": FORMAT,
            "log_key": {"ed25519": public(LOG_KEY), "key_id": key_id(LOG_KEY)},
            "origin": "bridge.example/other",
        },
        {
            "format": FORMAT,
            "log_key": {"ed25519": public(LOG_KEY)[:-1], "key_id": key_id(LOG_KEY)},
            "origin": ORIGIN,
        },
    ],
)
def test_malformed_header_fails_on_line_1(header: dict[str, Any]) -> None:
    failure = failure_of([jcs(header) + b"\n", *SMALL.lines[1:]])
    assert (failure.index, failure.line) == (None, 1)
    assert "header" in failure.reason


# --- The canonical check, with each parser ---

_CP = SMALL.entry_positions[4]  # entry 4 holds non-ASCII text and escapes
_ORIGINAL = SMALL.lines[_CP]
_ASCII = SMALL.lines[SMALL.entry_positions[3]]


def _replace(line: bytes, old: bytes, new: bytes) -> bytes:
    assert old in line
    return line.replace(old, new, 1)


NOT_CANONICAL: dict[str, tuple[int, bytes]] = {
    "spaces": (3, json.dumps(json.loads(_ASCII), sort_keys=True).encode() + b"\n"),
    "keys out of order": (3, b'{"index":3,"entry":' + jcs(json.loads(_ASCII)["entry"]) + b"}\n"),
    "float": (3, _replace(_ASCII, b'"first_seq":1', b'"first_seq":1.0')),
    "exponent": (3, _replace(_ASCII, b'"first_seq":1', b'"first_seq":1e0')),
    "integer beyond 2**53": (
        3,
        _replace(_ASCII, b'"first_seq":1', b'"first_seq":9007199254740993'),
    ),
    "huge integer": (3, _replace(_ASCII, b'"first_seq":1', b'"first_seq":' + b"9" * 40)),
    "minus zero": (3, _replace(_ASCII, b'"first_seq":1', b'"first_seq":-0')),
    "NaN": (3, _replace(_ASCII, b'"first_seq":1', b'"first_seq":NaN')),
    "leading zero": (3, _replace(_ASCII, b'"first_seq":1', b'"first_seq":01')),
    "escaped letter": (3, _replace(_ASCII, b'"investigation"', b'"\\u0069nvestigation"')),
    "duplicate key": (3, _replace(_ASCII, b'"first_seq":1', b'"first_seq":1,"first_seq":1')),
    "lone surrogate": (3, _replace(_ASCII, b'"investigation"', b'"\\ud800"')),
    "CRLF": (3, _ASCII[:-1] + b"\r\n"),
    "BOM": (3, b"\xef\xbb\xbf" + _ASCII),
    "trailing space": (3, _ASCII[:-1] + b" \n"),
    "not JSON": (3, _ASCII[:40] + b"\n"),
    "a list": (3, b"[" + _ASCII[:-1] + b"]\n"),
    "nested too deep": (3, b"[" * 100_000 + b"]" * 100_000 + b"\n"),
    "escaped slash": (4, _replace(_ORIGINAL, b"\\\\/", b"\\\\\\/")),
    "uppercase escape": (4, _replace(_ORIGINAL, b"\\u001f", b"\\u001F")),
    "long escape for newline": (4, _replace(_ORIGINAL, b"\\n", b"\\u000a")),
    "escaped non-ASCII": (4, _replace(_ORIGINAL, "één".encode(), b"\\u00e9\\u00e9n")),
    "invalid UTF-8": (4, _replace(_ORIGINAL, "é".encode(), b"\xe9")),
    "overlong UTF-8": (4, _replace(_ORIGINAL, b"/", b"\xc0\xaf")),
}


@pytest.mark.parametrize("name", sorted(NOT_CANONICAL))
def test_line_that_is_not_canonical_is_caught_on_that_line(backend: str, name: str) -> None:
    index, line = NOT_CANONICAL[name]
    lines = list(SMALL.lines)
    lines[SMALL.entry_positions[index]] = line
    failure = failure_of(lines)
    assert (failure.index, failure.line) == (index, SMALL.line_of_entry(index)), failure


def test_keys_in_code_point_order_instead_of_utf16_order_are_caught(backend: str) -> None:
    entries = sample_entries(2)
    entries[1].update({"\ue000": 1, "\U0001f600": 2})
    export = build_export(entries, [])
    position = export.entry_positions[1]
    swapped = export.lines[position].replace(
        '"\U0001f600":2,"\ue000":1'.encode(), '"\ue000":1,"\U0001f600":2'.encode()
    )
    assert swapped != export.lines[position]
    lines = [*export.lines[:position], swapped, *export.lines[position + 1 :]]
    assert (failure_of(lines).index, failure_of(lines).line) == (1, position + 1)


def test_report_after_a_failure_names_the_last_verified_checkpoint() -> None:
    lines = list(SMALL.lines)
    lines[SMALL.entry_positions[12]] = _replace(lines[SMALL.entry_positions[12]], b"c3", b"c4")
    report = check(lines)
    # The checkpoint of size 13 notices; 10 is the last verified size (twice), and the change
    # lies in entries 10..12.
    assert (report.size, report.root, report.checkpoints) == (10, SMALL.checkpoints[1]["root"], 3)
    assert report.failure is not None and not report.ok
    assert (report.failure.index, report.failure.line) == (10, SMALL.checkpoint_positions[3] + 1)


# --- Standing alone ---


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", ["verify", "export_format", "signed_note"])
def test_verifier_imports_nothing_of_the_server(module: str) -> None:
    allowed = {
        "bridge.crypto",
        "bridge.log.merkle",
        "bridge.log.signed_note",
        "bridge.log.export_format",
    }
    for name in _imports(ROOT / "bridge" / "log" / f"{module}.py"):
        top = name.split(".")[0]
        assert name in allowed or top in sys.stdlib_module_names or top in {"nacl", "msgspec"}, name


def test_importing_the_verifier_loads_no_server_module() -> None:
    code = (
        "import sys, bridge.log.verify, bridge.log.signed_note\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('bridge') "
        "or m.split('.')[0] in ('sqlalchemy', 'aiohttp', 'socketio'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    crypto = [f"bridge.crypto.{name}" for name in ("encoding", "envelope", "errors", "grants")]
    assert loaded == [
        "bridge",
        "bridge.crypto",
        *crypto,
        "bridge.crypto.keys",
        "bridge.log",
        "bridge.log.export_format",
        "bridge.log.merkle",
        "bridge.log.signed_note",
        "bridge.log.verify",
    ]
