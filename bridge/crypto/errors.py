"""The errors of bridge.crypto: one base, one subclass per kind of failure."""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by this module."""


class EncodingError(CryptoError):
    """Malformed b64u, a value JCS cannot encode, or a key of the wrong length."""


class BadSignatureError(CryptoError):
    """A signature that does not verify, including one that is not 64 bytes of valid b64u."""


class DecryptionError(CryptoError):
    """A sealed box, SecretBox or envelope that does not open (wrong key, tampered, malformed)."""


class KeysMismatchError(CryptoError):
    """``keys`` are not exactly victim + audience, or one is not a sealed 32-byte key."""
