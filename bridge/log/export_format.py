"""The format of an exported audit log (``fier-bridge-log/1``), as :mod:`bridge.log.verify`
reads it: the header, checkpoint lines, what an entry must hold, and the verifier's findings.

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

__all__ = ["FORMAT", "Failure", "Report"]

FORMAT = "fier-bridge-log/1"
"""The header's ``format``: the one export format this verifier reads."""


_HASH_BYTES = 32


_KEY_BYTES = 32


_CHECKPOINT_FIELDS = frozenset({"key_id", "root", "sig", "size", "time"})


_HEADER_FIELDS = frozenset({"format", "head", "log_key", "origin"})


_LOG_KEY_FIELDS = frozenset({"ed25519", "key_id"})


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


def _parse_checkpoint(checkpoint: object, key: _Key, what: str) -> _VerifiedCheckpoint:
    """Check a checkpoint's fields and then its signature by the log key."""
    if not isinstance(checkpoint, Mapping) or set(checkpoint) != _CHECKPOINT_FIELDS:
        raise _Failed(f"{what} must be an object with exactly {sorted(_CHECKPOINT_FIELDS)}")
    size, root, sig = checkpoint["size"], checkpoint["root"], checkpoint["sig"]
    if type(size) is not int or size < 0:
        raise _Failed(f"{what} size is not a non-negative integer")
    if type(checkpoint["time"]) is not str:
        raise _Failed(f"{what} time is not a string")
    if checkpoint["key_id"] != key.key_id:
        raise _Failed(f"{what} key_id {checkpoint['key_id']!r} is not the log's {key.key_id!r}")
    try:
        raw_root = b64u_decode(root, size=_HASH_BYTES) if type(root) is str else None
    except EncodingError:
        raw_root = None
    if raw_root is None:
        raise _Failed(f"{what} root is not b64u of a 32-byte hash")
    if type(sig) is not str:
        raise _Failed(f"{what} sig is not a string")
    try:
        verify_object(checkpoint, sig, key.ed25519)
    except (BadSignatureError, EncodingError) as exc:
        raise _Failed(f"{what} of size {size}: signature does not verify ({exc})") from exc
    return _VerifiedCheckpoint(size, raw_root, root)


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
