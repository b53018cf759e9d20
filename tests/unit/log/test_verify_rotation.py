"""The offline verifier across a log key rotation (docs/audit.md, "When the log key changes"):
an export whose checkpoints change key verifies from the first key only along a
``log_key.rotated`` entry that a checkpoint of the old key covers; any other change of key
fails, and says why."""

from __future__ import annotations

import io
from typing import Any

from nacl.signing import SigningKey

from bridge.crypto import b64u_encode, jcs, sign_object
from bridge.log import merkle
from bridge.log.signed_note import key_hash
from bridge.log.verify import FORMAT, Failure, Report, verify_export

ORIGIN = "bridge.example/log"
OLD = SigningKey(bytes(range(32)))
NEW = SigningKey(bytes(range(50, 82)))
THIRD = SigningKey(bytes(range(150, 182)))


def public(key: SigningKey) -> str:
    return b64u_encode(bytes(key.verify_key))


def key_id(key: SigningKey) -> str:
    return key_hash(ORIGIN, bytes(key.verify_key)).hex()


def rotation(old: SigningKey, new: SigningKey, **changes: Any) -> dict[str, Any]:
    entry = {
        "kind": "log_key.rotated",
        "at": "2026-12-01T10:00:00Z",
        "actor": {"role": "admin", "via": "cli"},
        "old_key_id": key_id(old),
        "old_ed25519": public(old),
        "new_key_id": key_id(new),
        "new_ed25519": public(new),
    }
    return {**entry, **changes}


def reads(count: int) -> list[dict[str, Any]]:
    return [
        {"kind": "transcript.read", "at": "2026-12-01T09:00:00Z", "first_seq": n, "last_seq": n}
        for n in range(count)
    ]


class Built:
    """An export with checkpoints ``(size, signing key)`` after the entries they cover."""

    def __init__(
        self,
        entries: list[dict[str, Any]],
        checkpoints: list[tuple[int, SigningKey]],
        header_key: SigningKey = OLD,
    ) -> None:
        self.checkpoints: list[dict[str, Any]] = []
        leaves: list[bytes] = []
        lines: list[bytes] = []
        pending = iter(checkpoints)
        upcoming = next(pending, None)
        latest = None
        for index, original in enumerate([None, *entries]):
            if original is not None:
                entry = {**original, "prev_checkpoint": latest}
                leaves.append(merkle.leaf_hash(jcs(entry)))
                lines.append(jcs({"entry": entry, "index": index - 1}) + b"\n")
            while upcoming is not None and upcoming[0] == len(leaves):
                size, key = upcoming
                checkpoint: dict[str, Any] = {
                    "key_id": key_id(key),
                    "root": b64u_encode(merkle.root(leaves)),
                    "size": size,
                    "time": "2026-12-01T10:00:00Z",
                }
                checkpoint["sig"] = sign_object(checkpoint, key)
                self.checkpoints.append(checkpoint)
                lines.append(jcs({"checkpoint": checkpoint}) + b"\n")
                latest = {"root": checkpoint["root"], "size": size}
                upcoming = next(pending, None)
        header = {
            "format": FORMAT,
            "head": self.checkpoints[-1],
            "log_key": {"ed25519": public(header_key), "key_id": key_id(header_key)},
            "origin": ORIGIN,
        }
        self.lines = [jcs(header) + b"\n", *lines]

    def line_of_checkpoint(self, number: int) -> int:
        """The 1-based line of the ``number``-th checkpoint."""
        at = [n for n, line in enumerate(self.lines) if line.startswith(b'{"checkpoint"')]
        return at[number] + 1

    def check(self, **kwargs: Any) -> Report:
        return verify_export(io.BytesIO(b"".join(self.lines)), **kwargs)

    def failure(self, **kwargs: Any) -> Failure:
        report = self.check(log_key=public(OLD), **kwargs)
        assert report.failure is not None, "the change of key went unnoticed"
        return report.failure


def rotated_at(index: int, count: int = 10, **changes: Any) -> list[dict[str, Any]]:
    entries = reads(count)
    entries[index] = rotation(OLD, NEW, **changes)
    return entries


def test_a_rotation_signed_over_by_the_old_key_verifies_from_the_old_key() -> None:
    built = Built(rotated_at(5), [(3, OLD), (6, OLD), (8, NEW), (10, NEW)])
    report = built.check(log_key=public(OLD))
    assert report.ok and report.checkpoints == 4 and report.size == 10


def test_an_export_that_ends_with_the_hand_over_verifies() -> None:
    assert Built(rotated_at(9), [(4, OLD), (10, OLD)]).check(log_key=public(OLD)).ok


def test_keys_rotated_twice_verify_along_the_chain() -> None:
    entries = reads(12)
    entries[3] = rotation(OLD, NEW)
    entries[7] = rotation(NEW, THIRD)
    built = Built(entries, [(4, OLD), (6, NEW), (8, NEW), (12, THIRD)])
    assert built.check(log_key=public(OLD)).ok
    # The trust starts at the key the log began with: a later key is not where it starts.
    failure = built.check(log_key=public(NEW)).failure
    assert failure == Failure(None, 1, "the export's log key is not the given log key")


def test_checkpoints_saved_under_either_key_are_compared() -> None:
    built = Built(rotated_at(5), [(3, OLD), (6, OLD), (8, NEW), (10, NEW)])
    old, new = built.checkpoints[0], built.checkpoints[2]
    assert built.check(log_key=public(OLD), previous=[old, new]).ok
    forged = {**new, "sig": old["sig"]}
    failure = built.failure(previous=[forged])
    assert failure.line == len(built.lines) + 1 and failure.index is None
    assert "saved checkpoint #0 of size 8: signature does not verify" in failure.reason


def test_a_new_key_without_a_rotation_entry_fails_on_its_first_checkpoint() -> None:
    built = Built(reads(10), [(3, OLD), (6, NEW), (10, NEW)])
    failure = built.failure()
    assert (failure.index, failure.line) == (None, built.line_of_checkpoint(1))
    assert f"key_id '{key_id(NEW)}' is not the log's '{key_id(OLD)}'" in failure.reason
    assert "changes only by a log_key.rotated entry" in failure.reason


def test_a_rotation_no_old_key_checkpoint_covers_fails() -> None:
    built = Built(rotated_at(5), [(3, OLD), (6, NEW), (10, NEW)])
    failure = built.failure()
    assert failure == Failure(
        None,
        built.line_of_checkpoint(1),
        f"checkpoint is signed by the new key {key_id(NEW)} before a checkpoint of the old key "
        f"{key_id(OLD)} covers its rotation at index 5",
    )


def test_the_old_key_signing_after_the_hand_over_fails() -> None:
    built = Built(rotated_at(5), [(6, OLD), (8, OLD), (10, NEW)])
    failure = built.failure()
    assert failure == Failure(
        None,
        built.line_of_checkpoint(1),
        f"checkpoint is signed by key {key_id(OLD)}, retired by the rotation at index 5",
    )


def test_a_forged_rotation_entry_fails_on_its_line() -> None:
    """Each rotation that does not start from the key in force, or names its new key wrongly,
    fails at the entry, whatever the checkpoints around it."""
    cases = [
        (rotation(NEW, THIRD), "names old key"),
        (rotation(OLD, NEW, old_ed25519=public(THIRD)), "names old key"),
        (rotation(OLD, NEW, new_key_id=key_id(THIRD)), "new_key_id is not the key hash"),
        (rotation(OLD, NEW, new_ed25519="A" * 42), "not b64u of a 32-byte Ed25519 key"),
        (rotation(OLD, NEW, new_ed25519=7), "new_ed25519 is not a string"),
        (rotation(OLD, OLD), "which the log had before"),
    ]
    for entry, reason in cases:
        entries = reads(10)
        entries[5] = entry
        built = Built(entries, [(3, OLD), (6, OLD), (10, OLD)])
        failure = built.failure()
        assert failure.index == 5 and failure.line == 8, (entry, failure)  # after cp 3
        assert reason in failure.reason, (entry, failure)


def test_a_second_rotation_before_the_hand_over_fails() -> None:
    entries = reads(10)
    entries[4] = rotation(OLD, NEW)
    entries[5] = rotation(NEW, THIRD)
    failure = Built(entries, [(6, OLD), (10, THIRD)]).failure()
    assert failure.index == 5
    assert failure.reason == (
        f"a second log_key.rotated before a checkpoint of key {key_id(OLD)} covers the one at "
        "index 4"
    )


def test_rotating_back_to_a_retired_key_fails() -> None:
    entries = reads(10)
    entries[3] = rotation(OLD, NEW)
    entries[6] = rotation(NEW, OLD)
    failure = Built(entries, [(4, OLD), (7, NEW), (10, OLD)]).failure()
    assert failure.index == 6 and "which the log had before" in failure.reason


def test_a_head_of_a_key_the_export_never_names_fails_at_the_end() -> None:
    built = Built(rotated_at(5), [(6, OLD), (10, NEW)])
    header = built.lines[0].replace(key_id(NEW).encode(), key_id(THIRD).encode())
    built.lines[0] = header
    failure = built.failure()
    assert failure == Failure(
        None, len(built.lines) + 1, f"header head key_id '{key_id(THIRD)}' names no key of this log"
    )
