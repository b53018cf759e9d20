"""The format of an exported audit log (``fier-bridge-log/1``), as :mod:`bridge.log.verify`
reads it: the header, checkpoint lines, what an entry must hold, how the log key may change
(:class:`_KeyChain`), and the verifier's findings.

Like the verifier, this imports only the standard library, :mod:`bridge.crypto` and the other
pure log modules, so an auditor can use it without the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.crypto import (
    BadSignatureError,
    EncodingError,
    b64u_decode,
    verify_object,
)
from bridge.log.signed_note import key_hash

__all__ = ["FORMAT", "ROTATED", "Failure", "Report"]

FORMAT = "fier-bridge-log/1"
"""The header's ``format``: the one export format this verifier reads."""

ROTATED = "log_key.rotated"
"""The kind of the entry that hands the log over to a new key."""


_HASH_BYTES = 32


_KEY_BYTES = 32


_CHECKPOINT_FIELDS = frozenset({"key_id", "root", "sig", "size", "time"})


_HEADER_FIELDS = frozenset({"format", "head", "log_key", "origin"})


_LOG_KEY_FIELDS = frozenset({"ed25519", "key_id"})


_ROTATION_FIELDS = ("old_key_id", "old_ed25519", "new_key_id", "new_ed25519")


@dataclass(frozen=True)
class Failure:
    """The first problem found in an export.

    ``index`` is the first log index the problem leaves unverified: the entry itself for a bad
    entry line (and for an unreadable line where an entry was due); for a checkpoint whose root
    does not match, the first entry after the last verified checkpoint (the change lies between
    that index and the checkpoint's size); ``None`` for problems of the header or of a checkpoint
    alone (a bad signature, a misplaced checkpoint). ``line`` is 1-based; a problem found at the
    end of the export names the line after the last.
    """

    index: int | None
    line: int
    reason: str


@dataclass(frozen=True)
class Report:
    """The outcome: ``size`` and ``root`` (b64u) of the last checkpoint that verified, how many
    of the export's checkpoints verified, and the first failure, if any."""

    size: int
    root: str
    checkpoints: int
    failure: Failure | None

    @property
    def ok(self) -> bool:
        return self.failure is None


class _Failed(Exception):
    """Internal: a problem at the current line, concerning log index ``index``; with ``unread``
    the line could not be read at all, and the index is the next one due (None on line 1)."""

    def __init__(self, reason: str, index: int | None = None, *, unread: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index
        self.unread = unread


@dataclass(frozen=True)
class _VerifiedCheckpoint:
    size: int
    root: bytes
    root_text: str


@dataclass(frozen=True)
class _Key:
    ed25519: str
    key_id: str


def _decode_key(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise _Failed(f"{what} is not a string")
    try:
        return b64u_decode(text, size=_KEY_BYTES)
    except EncodingError as exc:
        raise _Failed(f"{what} is not b64u of a 32-byte Ed25519 key ({exc})") from exc


def _parse_header(header: dict[str, Any]) -> tuple[_Key, str]:
    if set(header) != _HEADER_FIELDS:
        raise _Failed(f"header must have exactly the fields {sorted(_HEADER_FIELDS)}")
    if header["format"] != FORMAT:
        raise _Failed(f"header format is {header['format']!r}, expected {FORMAT!r}")
    log_key, origin = header["log_key"], header["origin"]
    if type(origin) is not str or not origin:
        raise _Failed("header origin is not a non-empty string")
    if type(log_key) is not dict or set(log_key) != _LOG_KEY_FIELDS:
        raise _Failed(f"header log_key must be an object with exactly {sorted(_LOG_KEY_FIELDS)}")
    public = _decode_key(log_key["ed25519"], "header log_key.ed25519")
    # The key id is the C2SP signed-note key hash of origin and key (bridge.log.logkey), so
    # the same key verifies a checkpoint as a note; every checkpoint signs the key id, and
    # through it the origin.
    if log_key["key_id"] != key_hash(origin, public).hex():
        raise _Failed("header log_key.key_id is not the signed-note key hash of origin and key")
    return _Key(log_key["ed25519"], log_key["key_id"]), origin


def _parse_checkpoint(checkpoint: object, key: _Key | None, what: str) -> _VerifiedCheckpoint:
    """Check a checkpoint's fields and then its signature by ``key`` (only the fields without
    one: a checkpoint of a key the export names later is checked again once it has)."""
    if not isinstance(checkpoint, Mapping) or set(checkpoint) != _CHECKPOINT_FIELDS:
        raise _Failed(f"{what} must be an object with exactly {sorted(_CHECKPOINT_FIELDS)}")
    size, root, sig = checkpoint["size"], checkpoint["root"], checkpoint["sig"]
    if type(size) is not int or size < 0:
        raise _Failed(f"{what} size is not a non-negative integer")
    if type(checkpoint["time"]) is not str:
        raise _Failed(f"{what} time is not a string")
    if key is not None and checkpoint["key_id"] != key.key_id:
        raise _Failed(
            f"{what} key_id {checkpoint['key_id']!r} is not the log's {key.key_id!r} (the key "
            f"changes only by a {ROTATED} entry that a checkpoint of the old key covers)"
        )
    try:
        raw_root = b64u_decode(root, size=_HASH_BYTES) if type(root) is str else None
    except EncodingError:
        raw_root = None
    if raw_root is None:
        raise _Failed(f"{what} root is not b64u of a 32-byte hash")
    if type(sig) is not str:
        raise _Failed(f"{what} sig is not a string")
    if key is None:
        return _VerifiedCheckpoint(size, raw_root, root)
    try:
        verify_object(checkpoint, sig, key.ed25519)
    except (BadSignatureError, EncodingError) as exc:
        raise _Failed(f"{what} of size {size}: signature does not verify ({exc})") from exc
    return _VerifiedCheckpoint(size, raw_root, root)


def _named_key(checkpoint: object) -> object:
    """The ``key_id`` a checkpoint names, None if it names none."""
    return checkpoint.get("key_id") if isinstance(checkpoint, Mapping) else None


class _KeyChain:
    """The log keys of an export: the one its header names, then one more for each
    ``log_key.rotated`` entry ``{old_key_id, old_ed25519, new_key_id, new_ed25519}``.

    A rotation must name the key in force as the old one and a new key whose id is its key
    hash. The first checkpoint after it must still be the old key's: it covers the entry, so the
    key the auditor trusts signs the hand-over. Every later checkpoint is the new key's. Any
    other change of key fails.
    """

    def __init__(self, first: _Key, origin: str) -> None:
        self.current = first
        self.origin = origin
        self.known = {first.key_id: first}
        self.pending: tuple[int, _Key] | None = None  # a rotation no checkpoint covers yet
        self.retired: dict[str, int] = {}  # key id -> index of the rotation that retired it

    def rotation(self, entry: Mapping[str, Any], index: int) -> None:
        if self.pending is not None:
            raise _Failed(
                f"a second {ROTATED} before a checkpoint of key {self.current.key_id} covers "
                f"the one at index {self.pending[0]}",
                index,
            )
        old_id, old_key, new_id, new_key = (entry.get(name) for name in _ROTATION_FIELDS)
        if old_id != self.current.key_id or old_key != self.current.ed25519:
            raise _Failed(
                f"{ROTATED} names old key {old_id!r}, but the log's key is {self.current.key_id!r}",
                index,
            )
        try:
            public = _decode_key(new_key, f"{ROTATED} new_ed25519")
        except _Failed as failed:
            raise _Failed(failed.reason, index) from None
        if new_id != key_hash(self.origin, public).hex():
            raise _Failed(f"{ROTATED} new_key_id is not the key hash of origin and key", index)
        if new_id in self.known:
            raise _Failed(f"{ROTATED} hands over to key {new_id}, which the log had before", index)
        self.pending = (index, _Key(str(new_key), new_id))
        self.known[new_id] = self.pending[1]

    def signer(self, checkpoint: object, what: str) -> _Key:
        """The key that must have signed a checkpoint line: the one in force."""
        named = _named_key(checkpoint)
        if self.pending is not None and named == self.pending[1].key_id:
            raise _Failed(
                f"{what} is signed by the new key {named} before a checkpoint of the old key "
                f"{self.current.key_id} covers its rotation at index {self.pending[0]}"
            )
        if isinstance(named, str) and named in self.retired:
            raise _Failed(
                f"{what} is signed by key {named}, retired by the rotation at index "
                f"{self.retired[named]}"
            )
        return self.current

    def signed(self) -> None:
        """A checkpoint of the key in force verified: a pending rotation takes effect."""
        if self.pending is not None:
            index, key = self.pending
            self.retired[self.current.key_id] = index
            self.current, self.pending = key, None


def _entry_problem(obj: dict[str, Any]) -> str:
    """Why an entry line's structure is wrong (only called once it is known to be)."""
    entry = obj.get("entry")
    if len(obj) != 2 or type(obj.get("index")) is not int or type(entry) is not dict:
        return "entry line must be exactly {entry, index}: an object and an integer"
    for field in ("kind", "at"):
        if type(entry.get(field)) is not str or not entry[field]:
            return f"entry {field} is not a non-empty string"
    if "conversation" in entry and type(entry["conversation"]) is not str:
        return "entry conversation is not a string"
    if "actor" in entry and type(entry["actor"]) is not dict:
        return "entry actor is not an object"
    return "entry has no prev_checkpoint"
