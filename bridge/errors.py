"""Typed errors, one per protocol error code (PROTOCOL.md, "Encoding").

They are raised deep in the core and translated once per edge: the Socket.IO ack wrapper,
the aiohttp middleware and the command line. Every error means "nothing was changed".
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadKeys",
    "BadSignature",
    "BridgeError",
    "Conflict",
    "Forbidden",
    "Internal",
    "Invalid",
    "NoConsent",
    "NotFound",
    "RateLimited",
    "TooLarge",
    "Unauthenticated",
    "WrongState",
]


class BridgeError(Exception):
    """Base of every error that has a protocol code."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class Invalid(BridgeError):
    code = "invalid"
    http_status = 400


class Unauthenticated(BridgeError):
    code = "unauthenticated"
    http_status = 401


class Forbidden(BridgeError):
    code = "forbidden"
    http_status = 403


class NotFound(BridgeError):
    code = "not_found"
    http_status = 404


class WrongState(BridgeError):
    code = "wrong_state"
    http_status = 409


class NoConsent(BridgeError):
    code = "no_consent"
    http_status = 403


class BadSignature(BridgeError):
    code = "bad_signature"
    http_status = 400


class BadKeys(BridgeError):
    code = "bad_keys"
    http_status = 400


class TooLarge(BridgeError):
    code = "too_large"
    http_status = 413


class RateLimited(BridgeError):
    code = "rate_limited"
    http_status = 429


class Conflict(BridgeError):
    code = "conflict"
    http_status = 409


class Internal(BridgeError):
    code = "internal"
    http_status = 500
