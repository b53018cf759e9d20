"""The log's checkpoints as C2SP signed notes, and witness cosignatures on them.

Sources: C2SP ``signed-note`` (the note format, key hashes, verifier keys), ``tlog-checkpoint``
(the body) and ``tlog-cosignature`` (the Ed25519 ``cosignature/v1`` of a witness), and
golang.org/x/mod ``sumdb/note`` (the reference implementation, whose rules for parsing notes and
verifier keys this module follows).

A checkpoint note is the body ``<origin>\\n<size>\\n<root in standard base64>\\n``, a blank line,
and signature lines ``— <name> <base64(key hash || signature)>`` (an em dash, U+2014). The log
signs the body with Ed25519 (key hash type 0x01); a witness signs
``cosignature/v1\\ntime <t>\\n`` + body and writes ``base64(key hash || t as 8 bytes big-endian ||
signature)`` (key hash type 0x04). A key hash is the first four bytes of
``SHA-256(name || "\\n" || type || public key)``; a verifier key ("vkey") is
``<name>+<key hash in hex>+<base64(type || public key)>``.

What :func:`open_note` guarantees: the log key signed exactly this body; each witness that the
caller requires cosigned it; the body is a well-formed checkpoint. It does not say the root is
right: compare it with a verified export (:mod:`bridge.log.verify`) or an inclusion or
consistency proof. Lines from unknown keys are ignored, as the spec requires.

Errors: a note, line or verifier key that is malformed or does not verify raises
:class:`VerificationError` (the one of :mod:`bridge.log.merkle`) naming what failed; bad
arguments of the functions that build notes raise ``ValueError``. The standard library, PyNaCl
and the Merkle module only: an auditor or a witness can use this without the server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey

from bridge.log.merkle import VerificationError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "CheckpointBody",
    "VerificationError",
    "add_signature",
    "cosign_note",
    "cosignature_message",
    "key_hash",
    "note_body",
    "open_note",
    "parse_vkey_public",
    "sign_note",
    "signers",
    "vkey",
]

ALG_ED25519 = 0x01
"""Signature type of a plain Ed25519 note signature (C2SP signed-note)."""
ALG_COSIGNATURE_V1 = 0x04
"""Signature type of a timestamped Ed25519 witness cosignature (C2SP tlog-cosignature)."""
MAX_SIGNATURES = 100
"""Signature lines accepted in one note (the spec asks for at least 16; Go's limit is 100)."""

_PUBLIC_BYTES = 32
_SIGNATURE_BYTES = 64
_HASH_BYTES = 32
_KEY_HASH_BYTES = 4
_TIMESTAMP_BYTES = 8
_MAX_INT64 = 2**63 - 1
_DASH = "\u2014 "  # em dash and space start every signature line
# C2SP signed-note: "MUST NOT contain any ASCII control characters (those below U+0020) other
# than newline" (Go's note.Open checks the same).
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


@dataclass(frozen=True)
class CheckpointBody:
    """A checkpoint's body (C2SP tlog-checkpoint): the log's origin, tree size and root hash."""

    origin: str
    size: int
    root: bytes


@dataclass(frozen=True)
class _Verifier:
    name: str
    hash: bytes
    key: VerifyKey


def key_hash(name: str, public: bytes, *, cosignature: bool = False) -> bytes:
    """The 4-byte key hash of C2SP signed-note: ``SHA-256(name || "\\n" || type || key)[:4]``,
    type 0x01 for a log's Ed25519 key and 0x04 for a witness's cosignature/v1 key."""
    alg = ALG_COSIGNATURE_V1 if cosignature else ALG_ED25519
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public).digest()[:4]


def _is_name(name: str) -> bool:
    # signed-note: "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus".
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() for c in name)
        and _CONTROL.search(name) is None
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    """Strict standard base64 with padding: one accepted encoding per byte string."""
    if _BASE64.fullmatch(text) is None:
        raise VerificationError(f"{what} is not standard base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise VerificationError(f"{what} is not standard base64") from exc
    if _b64(data) != text:
        raise VerificationError(f"{what} is not canonical base64 (trailing bits set)")
    return data


def _signature_line(name: str, data: bytes) -> str:
    return f"{_DASH}{name} {_b64(data)}\n"


def _public(signing_key: SigningKey) -> bytes:
    return bytes(signing_key.verify_key)


def note_body(origin: str, size: int, root: bytes) -> str:
    """The checkpoint body ``<origin>\\n<size>\\n<base64 root>\\n`` (C2SP tlog-checkpoint)."""
    if not origin or _CONTROL.search(origin) or "\n" in origin:
        raise ValueError("origin must be one non-empty line without control characters")
    if type(size) is not int or not 0 <= size <= _MAX_INT64:
        raise ValueError("size must be an integer from 0 to 2**63 - 1")
    if len(root) != _HASH_BYTES:
        raise ValueError(f"root must be a {_HASH_BYTES}-byte hash")
    return f"{origin}\n{size}\n{_b64(root)}\n"


def sign_note(body: str, name: str, signing_key: SigningKey) -> str:
    """The signed note: ``body``, a blank line and one Ed25519 signature line by ``name``."""
    if not body.endswith("\n") or _CONTROL.search(body):
        raise ValueError("a note body must end with a newline and hold no control characters")
    if not _is_name(name):
        raise ValueError(f"{name!r} is not a key name (non-empty, no spaces, no '+')")
    signature = signing_key.sign(body.encode("utf-8")).signature
    return body + "\n" + _signature_line(name, key_hash(name, _public(signing_key)) + signature)


def cosignature_message(body: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: ``cosignature/v1\\ntime <timestamp>\\n`` + the note body."""
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def cosign_note(note: str, name: str, signing_key: SigningKey, timestamp: int) -> str:
    """``note`` with one more line: the witness ``name``'s cosignature/v1 at ``timestamp``.

    This is the witness's act and does not check the log's signature or the log's consistency:
    a witness opens the note with :func:`open_note` and checks consistency with what it saw
    before cosigning. Raises VerificationError for a note that is not a signed checkpoint.
    """
    if not _is_name(name):
        raise ValueError(f"{name!r} is not a key name (non-empty, no spaces, no '+')")
    if type(timestamp) is not int or not 0 <= timestamp <= _MAX_INT64:
        raise ValueError("timestamp must be POSIX seconds from 0 to 2**63 - 1")
    body, _lines = _split_note(note)
    _parse_body(body)
    signature = signing_key.sign(cosignature_message(body, timestamp)).signature
    data = key_hash(name, _public(signing_key), cosignature=True)
    return note + _signature_line(
        name, data + timestamp.to_bytes(_TIMESTAMP_BYTES, "big") + signature
    )


def vkey(name: str, public: bytes, *, cosignature: bool = False) -> str:
    """The verifier key ``<name>+<key hash hex>+<base64(type || public key)>`` of C2SP
    signed-note: type 0x01 for a log key, 0x04 (``cosignature=True``) for a witness key."""
    if not _is_name(name):
        raise ValueError(f"{name!r} is not a key name (non-empty, no spaces, no '+')")
    if len(public) != _PUBLIC_BYTES:
        raise ValueError(f"an Ed25519 public key has {_PUBLIC_BYTES} bytes")
    alg = ALG_COSIGNATURE_V1 if cosignature else ALG_ED25519
    hashed = key_hash(name, public, cosignature=cosignature)
    return f"{name}+{hashed.hex()}+{_b64(bytes([alg]) + public)}"


def _parse_vkey(text: str, what: str, alg: int) -> _Verifier:
    # As Go's note.NewVerifier: name, 8 hex digits, base64 key; the key may itself hold '+'.
    name, _, rest = text.partition("+")
    hash_hex, _, key64 = rest.partition("+")
    if not _is_name(name) or _HEX8.fullmatch(hash_hex) is None or not key64:
        raise VerificationError(f"{what} is not a verifier key <name>+<hash>+<key>")
    key = _unb64(key64, f"{what} key")
    if len(key) != 1 + _PUBLIC_BYTES or key[0] != alg:
        kind = "an Ed25519 (0x01)" if alg == ALG_ED25519 else "a cosignature/v1 (0x04)"
        raise VerificationError(f"{what} is not {kind} key")
    hashed = bytes.fromhex(hash_hex)
    if key_hash(name, key[1:], cosignature=alg == ALG_COSIGNATURE_V1) != hashed:
        raise VerificationError(f"{what} key hash does not match its name and key")
    return _Verifier(name, hashed, VerifyKey(key[1:]))


def add_signature(note: str, name: str, signing_key: SigningKey) -> str:
    """``note`` with ``name``'s Ed25519 signature of its body, in place of any line that key
    wrote before; a text that is not yet a note is signed as its body (:func:`sign_note`)."""
    try:
        body, lines = _split_note(note)
    except VerificationError:
        return sign_note(note, name, signing_key)
    if not _is_name(name):
        raise ValueError(f"{name!r} is not a key name (non-empty, no spaces, no '+')")
    hashed = key_hash(name, _public(signing_key))
    kept = [line for line in lines if not _line_is(line, name, hashed)]
    signature = signing_key.sign(body.encode("utf-8")).signature
    return (
        body
        + "\n"
        + "".join(f"{_DASH}{line}\n" for line in kept)
        + _signature_line(name, hashed + signature)
    )


def _line_is(line: str, name: str, hashed: bytes) -> bool:
    line_name, _, encoded = line.partition(" ")
    try:
        return line_name == name and _unb64(encoded, "signature")[:_KEY_HASH_BYTES] == hashed
    except VerificationError:
        return False


def parse_vkey_public(text: str) -> tuple[str, bytes]:
    """The name and Ed25519 public key of a verifier key; VerificationError if malformed."""
    verifier = _parse_vkey(text, "verifier key", ALG_ED25519)
    return verifier.name, bytes(verifier.key)


def signers(note: str, vkeys: Sequence[str]) -> tuple[str, list[str]]:
    """The body of a signed note and which of ``vkeys`` (Ed25519 verifier keys) signed it, in
    the order given. A line by one of them that does not verify raises VerificationError, as
    does a malformed note; lines by other keys are ignored (C2SP signed-note)."""
    verifiers = [_parse_vkey(text, f"vkeys[{n}]", ALG_ED25519) for n, text in enumerate(vkeys)]
    body, lines = _split_note(note)
    message = body.encode("utf-8")
    known = {(v.name, v.hash): number for number, v in enumerate(verifiers)}
    signed: set[int] = set()
    for name, hashed, signature in _signature_lines(lines):
        which = known.get((name, hashed))
        if which is None:
            continue
        if len(signature) != _SIGNATURE_BYTES or not _verifies(
            verifiers[which].key, message, signature
        ):
            raise VerificationError(f"the signature by {name} does not verify")
        signed.add(which)
    return body, [vkeys[n] for n in sorted(signed)]


def _split_note(note: str) -> tuple[str, list[str]]:
    """The body and the signature lines (without dash and newline) of a signed note."""
    try:
        note.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise VerificationError("note is not valid UTF-8") from exc
    if _CONTROL.search(note):
        raise VerificationError("note holds a control character other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationError("note has no blank line before its signatures")
    body, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise VerificationError("note's signature lines do not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"note has more than {MAX_SIGNATURES} signature lines")
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_DASH):
            raise VerificationError(f"signature line {number} does not start with an em dash")
    return body, [line[len(_DASH) :] for line in lines]


def _signature_lines(lines: Sequence[str]) -> Iterator[tuple[str, bytes, bytes]]:
    """Each signature line's key name, key hash and signature; VerificationError naming the
    first line that is malformed."""
    for number, line in enumerate(lines, start=1):
        name, space, encoded = line.partition(" ")
        if not space or not _is_name(name):
            raise VerificationError(f"signature line {number} has no valid key name")
        data = _unb64(encoded, f"signature line {number}")
        if len(data) < _KEY_HASH_BYTES + 1:
            raise VerificationError(f"signature line {number} is too short")
        yield name, data[:_KEY_HASH_BYTES], data[_KEY_HASH_BYTES:]


def _parse_body(body: str) -> CheckpointBody:
    """The checkpoint in a note body (C2SP tlog-checkpoint), each bad field named."""
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise VerificationError("checkpoint body must have origin, size and root lines")
    if len(lines) > 3:
        raise VerificationError("checkpoint body has extension lines (this log writes none)")
    origin, size_text, root_text = lines
    if not origin:
        raise VerificationError("checkpoint origin is empty")
    if _DECIMAL.fullmatch(size_text) is None or int(size_text) > _MAX_INT64:
        raise VerificationError(f"checkpoint size {size_text!r} is not a decimal tree size")
    root = _unb64(root_text, "checkpoint root")
    if len(root) != _HASH_BYTES:
        raise VerificationError(f"checkpoint root is {len(root)} bytes, not {_HASH_BYTES}")
    return CheckpointBody(origin, int(size_text), root)


def _verifies(key: VerifyKey, message: bytes, signature: bytes) -> bool:
    try:
        key.verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def open_note(
    note: str,
    log_vkey: str,
    witness_vkeys: Sequence[str] = (),
    *,
    min_witnesses: int | None = None,
) -> CheckpointBody:
    """Verify a checkpoint note and return its checkpoint.

    The log's signature must be present and valid. ``witness_vkeys`` are the cosignature/v1
    keys of the witnesses the caller trusts: by default each must have a valid cosignature;
    with ``min_witnesses`` at least that many must, and a missing or wrong cosignature only
    counts as absent. Lines by other keys are ignored (C2SP signed-note: "Verifiers MUST ignore
    signatures from unknown keys"). Signatures are checked before the body is read. Raises
    VerificationError naming what failed; ValueError for a ``min_witnesses`` out of range.
    """
    log = _parse_vkey(log_vkey, "log_vkey", ALG_ED25519)
    witnesses = [
        _parse_vkey(text, f"witness_vkeys[{number}]", ALG_COSIGNATURE_V1)
        for number, text in enumerate(witness_vkeys)
    ]
    if len({(w.name, w.hash) for w in witnesses}) != len(witnesses):
        raise VerificationError("witness_vkeys name one witness key twice")
    required = len(witnesses) if min_witnesses is None else min_witnesses
    if not 0 <= required <= len(witnesses):
        raise ValueError(f"min_witnesses must be from 0 to {len(witnesses)}")
    body, lines = _split_note(note)
    message = body.encode("utf-8")
    log_signed = False
    known = {(w.name, w.hash): number for number, w in enumerate(witnesses)}
    wrong: dict[int, str] = {}  # witness number -> what is wrong with its cosignature
    cosigned: set[int] = set()
    for name, hashed, signature in _signature_lines(lines):
        if (name, hashed) == (log.name, log.hash):
            if len(signature) != _SIGNATURE_BYTES or not _verifies(log.key, message, signature):
                raise VerificationError(f"log signature by {name} does not verify")
            log_signed = True
            continue
        witness = known.get((name, hashed))
        if witness is None:
            continue  # an unknown key: ignored, as the spec requires
        if len(signature) != _TIMESTAMP_BYTES + _SIGNATURE_BYTES:
            wrong[witness] = "is not a timestamped signature"
            continue
        timestamp = int.from_bytes(signature[:_TIMESTAMP_BYTES], "big")
        signed = cosignature_message(body, timestamp)
        key = witnesses[witness].key
        if timestamp > _MAX_INT64 or not _verifies(key, signed, signature[_TIMESTAMP_BYTES:]):
            wrong[witness] = "does not verify"
        else:
            cosigned.add(witness)
    if not log_signed:
        raise VerificationError(f"note has no signature by the log key {log.name}")
    valid = cosigned - set(wrong)
    if len(valid) < required:
        problems = "; ".join(
            f"{w.name}'s cosignature {wrong.get(number, 'is missing')}"
            for number, w in enumerate(witnesses)
            if number not in valid
        )
        raise VerificationError(
            f"{len(valid)} valid witness cosignatures where {required} are required: {problems}"
        )
    return _parse_body(body)
