"""Offline verification of an exported audit log (DESIGN.md, "The log"; ``bridge audit verify``).

The export (written by ``bridge audit export``) is UTF-8 JSON Lines with LF line ends, every
line exactly the JCS (RFC 8785) of its object:

- line 1, the header ``{"format": "fier-bridge-log/1", "head": {checkpoint}, "log_key":
  {"ed25519", "key_id"}, "origin"}``: the key the log began with (its id the C2SP signed-note key
  hash of origin and key) and the signed checkpoint of the whole export, so that the export says
  up front how many entries it holds;
- in log order, entry lines ``{"entry": {...}, "index": i}`` for ``i = 0 .. N-1``, and checkpoint
  lines ``{"checkpoint": {"key_id", "root", "sig", "size", "time"}}``, each right after the entry
  line of index ``size - 1`` (a size-0 checkpoint right after the header);
- last, a checkpoint of size ``N``.

What a report without failure guarantees: the header's key is the given ``log_key`` (if one is
given); every line is canonical, so no byte of it can change unseen; the entries are numbered
0..N-1 in order; every checkpoint is signed by the log key in force (the header's, then each key
a ``log_key.rotated`` entry hands over to once a checkpoint of the old key covers that entry:
``_KeyChain``) and its root is the RFC 9162 Merkle root of the entries before it; every entry's
``prev_checkpoint`` names the latest checkpoint before it; the export holds exactly the entries
its signed head names and ends with a checkpoint of them all; and every checkpoint the auditor
saved earlier (``previous``) is signed by a key of the log and is the root of the export at its
size.

What it cannot show on its own: someone who cuts the export back to an earlier checkpoint and
puts that older signed checkpoint in the header makes a well-formed shorter export, and the
holder of the log key can sign a rewritten history. Both show only against a checkpoint obtained
elsewhere: pass it in ``previous``. Without ``log_key`` the export vouches only for itself.

The verifier streams: beyond the current line it keeps the Merkle frontier (``O(log n)`` hashes),
the keys and the saved checkpoints. It stops at the first problem and names it (the signature
first, then the root, as sigstore-python's checkpoint verifier does). It imports only the
standard library, PyNaCl (through :mod:`bridge.crypto`), the pure log modules and msgspec for
speed where it is installed, so an auditor can use it without the server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn

from bridge.crypto import EncodingError, b64u_decode, b64u_encode, jcs
from bridge.log.export_format import (
    _KEY_BYTES,
    FORMAT,
    ROTATED,
    Failure,
    Report,
    _entry_problem,
    _Failed,
    _Key,
    _KeyChain,
    _named_key,
    _parse_checkpoint,
    _parse_header,
    _VerifiedCheckpoint,
)
from bridge.log.merkle import EMPTY_ROOT, VerificationError, frontier_root, leaf_hash, node_hash

__all__ = [
    "FORMAT",
    "ROTATED",
    "Failure",
    "Report",
    "VerificationError",
    "verify_export",
    "verify_export_file",
]


# An entry line is '{"entry":' + JCS(entry) + ',"index":' + digits + '}' (keys sorted), so once
# the line is known to be canonical the entry's JCS is a slice of it and needs no re-encoding.
_ENTRY_PREFIX = len('{"entry":')
_INDEX_INFIX = len(',"index":')

# --- The canonical check ---
#
# A line is canonical iff it equals the JCS (RFC 8785) of what it parses to. bridge.crypto.jcs
# is the reference, but slow; for a line of ASCII only, with no run of 16 digits (so every
# integer is within 2**53 - 1) and no float (the parser refuses them), a sorted-key compact
# encoder gives exactly JCS: ASCII keys sort the same by code point and by UTF-16 code unit, and
# both encoders below escape as RFC 8785 3.2.2.2 does (\b \t \n \f \r \" \\, lowercase
# \u00xx for the other controls, everything else literal). Other lines go to jcs.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else byte for byte in range(256))
_SIXTEEN_DIGITS = b"0" * 16


class _NotCanonicalError(ValueError):
    """A JSON value the log never holds: a float, NaN or an infinity."""


def _reject_float(text: str) -> NoReturn:
    raise _NotCanonicalError(f"number {text} is not an integer (the log holds no floats)")


def _reject_constant(text: str) -> NoReturn:
    raise _NotCanonicalError(f"{text} is not JSON")


def _json_backend() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    """The standard library's parser and encoder (its C accelerator where present)."""
    decoder = json.JSONDecoder(parse_float=_reject_float, parse_constant=_reject_constant)
    encoder = json.JSONEncoder(
        ensure_ascii=False,
        check_circular=False,
        allow_nan=False,
        sort_keys=True,
        separators=(",", ":"),
    )

    def decode(body: bytes) -> Any:
        return decoder.decode(body.decode("utf-8"))

    def encode(value: Any) -> bytes:
        # surrogatepass: a lone surrogate parsed from a \ud800 escape must give unequal bytes
        # (JCS has no form for it), not an exception.
        return encoder.encode(value).encode("utf-8", "surrogatepass")

    return decode, encode


def _msgspec_backend() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]] | None:
    """msgspec's parser and encoder, several times faster, if it is installed."""
    try:
        import msgspec
    except ImportError:  # the verifier also runs with the standard library and PyNaCl alone
        return None
    decoder = msgspec.json.Decoder(float_hook=_reject_float)
    encoder = msgspec.json.Encoder(order="sorted")
    return decoder.decode, encoder.encode


_BACKENDS: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {
    "json": _json_backend()
}
if (_fast := _msgspec_backend()) is not None:
    _BACKENDS["msgspec"] = _fast
_decode, _encode = _BACKENDS.get("msgspec", _BACKENDS["json"])


def _line_body(item: bytes | str) -> bytes:
    """The line as bytes, without its LF."""
    if isinstance(item, str):
        try:
            item = item.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Failed("line is not valid UTF-8 (lone surrogate)", unread=True) from exc
    if not item.endswith(b"\n"):
        raise _Failed("line does not end with LF (the export is cut short)", unread=True)
    return item[:-1]


def _canonical_object(body: bytes) -> dict[str, Any]:
    """Parse a line and check that it is exactly the JCS of what it holds."""
    try:
        value = _decode(body)
    except _NotCanonicalError as exc:
        raise _Failed(f"line is not canonical JSON: {exc}", unread=True) from exc
    except UnicodeDecodeError as exc:
        raise _Failed(f"line is not valid UTF-8 ({exc.reason})", unread=True) from exc
    except ValueError as exc:  # json.JSONDecodeError, msgspec.DecodeError
        raise _Failed(f"line is not JSON ({exc})", unread=True) from exc
    except RecursionError as exc:
        raise _Failed("line is nested too deeply", unread=True) from exc
    if type(value) is not dict:
        raise _Failed("line is not a JSON object", unread=True)
    if body.isascii() and _SIXTEEN_DIGITS not in body.translate(_DIGITS_AS_ZERO):
        canonical = _encode(value)
    else:
        try:
            canonical = jcs(value)
        except EncodingError as exc:
            raise _Failed(f"line is not canonical JSON: {exc}", unread=True) from exc
    if canonical != body:
        raise _Failed("line is not canonical JSON (RFC 8785): it differs from its JCS", unread=True)
    return value


class _Verifier:
    """The state of one pass over an export; :meth:`run` reads it once, line by line."""

    def __init__(self, log_key: bytes | None, previous: Sequence[Mapping[str, Any]]) -> None:
        self.log_key = log_key
        self.previous = previous
        self.chain = _KeyChain(_Key("", ""), "")
        self.unsigned: list[tuple[str, Mapping[str, Any]]] = []  # signed by a later key
        self.count = 0  # entry lines read: the index due next
        # The frontier of merkle.frontier_append (perfect subtrees, largest first), kept here.
        self.frontier: list[bytes] = []
        self.verified = _VerifiedCheckpoint(0, EMPTY_ROOT, b64u_encode(EMPTY_ROOT))
        self.checkpoints = 0
        self.latest: dict[str, object] | None = None  # {size, root} of the latest checkpoint
        self.ends_with_checkpoint = False
        self.head = self.verified
        self.saved: list[_VerifiedCheckpoint] = []  # not reached yet, largest first
        self.next_saved = -1  # the size of the smallest of them, -1 for none
        self.saved_matched = 0  # the size of the largest saved checkpoint matched so far

    def run(self, lines: Iterable[bytes | str]) -> Report:
        line = 0
        try:
            for line, item in enumerate(lines, start=1):
                body = _line_body(item)
                obj = _canonical_object(body)
                if "entry" in obj and line > 1:
                    self._entry(obj, body)
                elif "checkpoint" in obj and line > 1:
                    self._checkpoint(obj)
                elif line == 1:
                    self._header(obj)
                else:
                    raise _Failed("line is neither an entry nor a checkpoint", unread=True)
            line += 1
            self._end(line)
        except _Failed as failed:
            index = failed.index
            if failed.unread:
                index = None if line <= 1 else self.count
            return self._report(Failure(index, line, failed.reason))
        return self._report(None)

    def _report(self, failure: Failure | None) -> Report:
        v = self.verified
        return Report(v.size, v.root_text, self.checkpoints, failure)

    def _header(self, header: dict[str, Any]) -> None:
        key, origin = _parse_header(header)
        if self.log_key is not None and b64u_decode(key.ed25519) != self.log_key:
            raise _Failed("the export's log key is not the given log key")
        self.chain = _KeyChain(key, origin)
        # The head says up front how many entries follow; the end is held to it.
        self.head = self._parse_early(header["head"], "header head")
        saved = []
        for number, checkpoint in enumerate(self.previous):
            saved.append(self._parse_early(checkpoint, f"saved checkpoint #{number}"))
        self.saved = sorted(saved, key=lambda c: c.size, reverse=True)
        self._compare_saved()

    def _parse_early(self, checkpoint: Mapping[str, Any], what: str) -> _VerifiedCheckpoint:
        """A checkpoint of the header's key is checked now; one of another key for its fields
        only, and at the end for its signature, by that key if the export's rotations name it."""
        if _named_key(checkpoint) == self.chain.current.key_id:
            return _parse_checkpoint(checkpoint, self.chain.current, what)
        self.unsigned.append((what, checkpoint))
        return _parse_checkpoint(checkpoint, None, what)

    def _compare_saved(self) -> None:
        """Compare the saved checkpoints of the size the export has reached."""
        saved = self.saved
        while saved and saved[-1].size == self.count:
            expected = saved.pop()
            if frontier_root(self.frontier) != expected.root:
                raise _Failed(
                    f"entries {self.saved_matched}..{self.count - 1} do not hash to the root of "
                    f"the saved checkpoint of size {self.count}: the log was rewritten",
                    self.saved_matched,
                )
            self.saved_matched = expected.size
        self.next_saved = saved[-1].size if saved else -1

    def _entry(self, obj: dict[str, Any], body: bytes) -> None:
        count = self.count
        index = obj.get("index")
        entry = obj.get("entry")
        # One cheap test for the common case; _entry_problem says what is wrong otherwise.
        if (
            len(obj) != 2
            or type(index) is not int
            or type(entry) is not dict
            or type(entry.get("kind")) is not str
            or type(entry.get("at")) is not str
            or not entry["kind"]
            or not entry["at"]
            or ("conversation" in entry and type(entry["conversation"]) is not str)
            or ("actor" in entry and type(entry["actor"]) is not dict)
            or "prev_checkpoint" not in entry
        ):
            raise _Failed(_entry_problem(obj), count)
        if index != count:
            raise _Failed(f"entry index {index} where index {count} is due", count)
        if entry["kind"] == ROTATED:
            self.chain.rotation(entry, count)
        if count >= self.head.size:
            raise _Failed(f"entry {count} lies past the head, which holds {self.head.size}", count)
        named, latest = entry["prev_checkpoint"], self.latest
        # Compare the size's type too: JSON true == 1 in Python.
        if named != latest or (latest is not None and type(named["size"]) is not int):
            want = "null" if latest is None else f"{{size {latest['size']}, root {latest['root']}}}"
            raise _Failed(f"entry prev_checkpoint is not the latest checkpoint ({want})", count)
        # The leaf is the hash of the entry's JCS, which the canonical line holds verbatim.
        node = leaf_hash(body[_ENTRY_PREFIX : len(body) - _INDEX_INFIX - len(str(index)) - 1])
        # merkle.frontier_append's carry, in place: merge equal-sized subtrees at the right end.
        frontier, size = self.frontier, count
        while size & 1:
            node = node_hash(frontier.pop(), node)
            size >>= 1
        frontier.append(node)
        self.count = count = count + 1
        self.ends_with_checkpoint = False
        if count == self.next_saved:
            self._compare_saved()

    def _checkpoint(self, obj: dict[str, Any]) -> None:
        if len(obj) != 1:
            raise _Failed("checkpoint line must be exactly {checkpoint}", unread=True)
        signer = self.chain.signer(obj["checkpoint"], "checkpoint")
        checkpoint = _parse_checkpoint(obj["checkpoint"], signer, "checkpoint")
        size, count, verified = checkpoint.size, self.count, self.verified
        if size > count:
            raise _Failed(
                f"checkpoint of size {size} after only {count} entries: entries "
                f"{count}..{size - 1} are missing",
                count,
            )
        if size < verified.size:
            raise _Failed(f"checkpoint size {size} is below the previous one, {verified.size}")
        if size < count:
            raise _Failed(
                f"checkpoint of size {size} stands after entry {count - 1}, not {size - 1}"
            )
        if frontier_root(self.frontier) != checkpoint.root:
            if verified.size == size:
                raise _Failed(f"the log key signed two different roots for size {size}")
            raise _Failed(
                f"checkpoint root for size {size} does not match the entries: one of entries "
                f"{verified.size}..{size - 1} was changed, added, removed or moved",
                verified.size,
            )
        self.verified = checkpoint
        self.chain.signed()
        self.checkpoints += 1
        self.latest = {"size": size, "root": checkpoint.root_text}
        self.ends_with_checkpoint = True

    def _end(self, line: int) -> None:
        if line == 1:
            raise _Failed("the export is empty: no header")
        if not self.ends_with_checkpoint:
            raise _Failed(
                f"the export ends after {self.count} entries without a checkpoint of them "
                f"(the last one covers {self.verified.size}): it was cut short",
                self.verified.size,
            )
        if self.count != self.head.size:
            raise _Failed(
                f"the export ends after {self.count} entries, but its head holds "
                f"{self.head.size}: it was cut short",
                self.count,
            )
        if self.verified.root != self.head.root:
            raise _Failed("the header's head is not the export's last checkpoint", None)
        if self.saved:
            raise _Failed(
                f"the export ends at size {self.count}, before the saved checkpoint of size "
                f"{self.saved[-1].size}: it was cut short",
                self.count,
            )
        for what, checkpoint in self.unsigned:
            named = _named_key(checkpoint)
            if not isinstance(named, str) or named not in self.chain.known:
                raise _Failed(f"{what} key_id {named!r} names no key of this log")
            _parse_checkpoint(checkpoint, self.chain.known[named], what)


def verify_export(
    lines: Iterable[bytes | str],
    *,
    log_key: str | None = None,
    previous: Sequence[Mapping[str, Any]] = (),
) -> Report:
    """Verify an export read line by line, each line with its LF (as iterating a binary file
    gives them); stop at the first problem and report it.

    ``log_key`` is the log's Ed25519 public key (b64u) as the auditor knows it; the export's
    header must name exactly that key. ``previous`` are checkpoints the auditor saved earlier
    (``{key_id, root, sig, size, time}``, as the bridge serves them); each must be signed by the
    log key and be the root of the export at its size. Raises :class:`VerificationError` only
    for a malformed ``log_key`` argument; every problem of the export is in the report.
    """
    expected = None
    if log_key is not None:
        try:
            expected = b64u_decode(log_key, size=_KEY_BYTES)
        except EncodingError as exc:
            raise VerificationError(f"log_key is not b64u of a 32-byte key ({exc})") from exc
    return _Verifier(expected, previous).run(lines)


def verify_export_file(
    path: str | os.PathLike[str],
    *,
    log_key: str | None = None,
    previous: Sequence[Mapping[str, Any]] = (),
) -> Report:
    """:func:`verify_export` of the file at ``path``."""
    with open(path, "rb", buffering=1 << 20) as export:
        return verify_export(export, log_key=log_key, previous=previous)
