"""b64u (unpadded URL-safe base64, strict and canonical), RFC 8785 JCS and SHA-256."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping

import msgspec
from nacl.encoding import _Encoder

from bridge.crypto.errors import EncodingError

# JCS numbers are IEEE doubles (RFC 8785, 3.2.2.3): beyond 2**53 - 1 a JavaScript client could not
# reproduce the bytes we sign, so such integers are refused rather than signed.
_MAX_SAFE_INTEGER = 2**53 - 1


# --- b64u ------------------------------------------------------------------------------------

_B64U_RE = re.compile(r"[A-Za-z0-9_-]*")


def b64u_encode(data: bytes) -> str:
    """Unpadded URL-safe base64 (libsodium's ``URLSAFE_NO_PADDING``, PROTOCOL.md "Encoding")."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, *, size: int | None = None) -> bytes:
    """Strictly decode b64u; with ``size``, the result must be exactly that many bytes.

    Rejects padding, the standard alphabet's ``+``/``/``, whitespace, impossible lengths and
    non-canonical trailing bits (as libsodium does), so each byte string has exactly one
    accepted encoding. Raises ``EncodingError``.
    """
    if not isinstance(text, str) or _B64U_RE.fullmatch(text) is None or len(text) % 4 == 1:
        raise EncodingError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise EncodingError("not unpadded base64url") from exc
    if b64u_encode(data) != text:
        raise EncodingError("non-canonical base64url (trailing bits set)")
    if size is not None and len(data) != size:
        raise EncodingError(f"expected {size} bytes, got {len(data)}")
    return data


class B64UEncoder(_Encoder):
    """A PyNaCl encoder for b64u, e.g. ``VerifyKey(x, encoder=B64UEncoder)``.

    It subclasses PyNaCl's encoder base only so that type checkers accept it as ``encoder=``.
    """

    @staticmethod
    def encode(data: bytes) -> bytes:
        return b64u_encode(data).encode("ascii")

    @staticmethod
    def decode(data: bytes) -> bytes:
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            raise EncodingError("not unpadded base64url") from exc
        return b64u_decode(text)


# --- JCS and hashing -------------------------------------------------------------------------

# RFC 8785 3.2.2.2 (ECMAScript JSON.stringify): escape only '"', '\\' and U+0000..U+001F, using the
# short forms where JSON has them and lowercase \u00xx otherwise; everything else is literal UTF-8.
_JCS_ESCAPES: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x20)}
_JCS_ESCAPES.update(
    {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
)


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as the UTF-16 code units RFC 8785 3.2.3 sorts by.
    return key.encode("utf-16-be")


def _jcs_parts(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):  # before int: bool is an int subclass
        out.append("true" if value else "false")
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise EncodingError("integer outside the IEEE-754 safe range")
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append('"' + value.translate(_JCS_ESCAPES) + '"')
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _jcs_parts(item, out)
        out.append("]")
    elif isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise EncodingError("object keys must be strings")
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            _jcs_parts(key, out)
            out.append(":")
            _jcs_parts(value[key], out)
        out.append("}")
    else:
        # Floats included: the protocol has none, and their JCS form is easy to get wrong.
        raise EncodingError(f"JCS cannot encode {type(value).__name__}")


def jcs(obj: object) -> bytes:
    """RFC 8785 canonical JSON of ``obj`` (str, int, bool, None, list/tuple, str-keyed mapping).

    Raises ``EncodingError`` for floats, bytes, non-string keys, integers beyond 2**53 - 1, lone
    surrogates (not valid I-JSON) and any other type.
    """
    out: list[str] = []
    try:
        _jcs_parts(obj, out)
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodingError("string is not valid Unicode (lone surrogate)") from exc
    except RecursionError as exc:
        raise EncodingError("value nested too deeply") from exc


_SORTED = msgspec.json.Encoder(order="sorted")


def jcs_checked(obj: object) -> bytes:
    """``jcs(obj)`` for a value a schema has checked to hold no floats, no integers beyond
    2**53 - 1 and only string keys, several times faster where it can be.

    msgspec's sorted compact encoding is already the canonical form when it is ASCII with
    nothing escaped: ASCII keys sort the same by code point as by UTF-16 unit, and no string
    held a character JCS escapes. Anything else goes through ``jcs``.
    """
    fast = _SORTED.encode(obj)
    if fast.isascii() and b"\\" not in fast:
        return fast
    return jcs(obj)


def sha256(data: bytes) -> bytes:
    """SHA-256 digest (consent texts, Merkle leaves)."""
    return hashlib.sha256(data).digest()


def compact_json_size(obj: object) -> int:
    """Bytes of the compact UTF-8 JSON of ``obj``: what the 16 KiB envelope limit is measured on."""
    try:
        return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise EncodingError("not JSON-encodable") from exc
