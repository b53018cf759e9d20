"""The log's Ed25519 signing key: one file in the data directory, readable by its owner only.

Its key id is the signed-note key hash of C2SP (the first four bytes of
``SHA-256(origin || "\\n" || 0x01 || public key)``, in hex), so that the same key verifies the
checkpoint as JSON and as a signed note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from nacl.signing import SigningKey

from bridge import crypto
from bridge.config import Settings
from bridge.log.signed_note import key_hash

__all__ = [
    "LogKey",
    "SignedCheckpoint",
    "create_log_key",
    "load_log_key",
    "load_or_create_log_key",
    "log_key_for",
    "write_private",
]


class SignedCheckpoint(TypedDict):
    size: int
    root: str
    time: str
    key_id: str
    sig: str


@dataclass(frozen=True)
class LogKey:
    signing: SigningKey
    origin: str

    @property
    def public(self) -> bytes:
        return bytes(self.signing.verify_key)

    @property
    def ed25519(self) -> str:
        return crypto.b64u_encode(self.public)

    @property
    def key_id(self) -> str:
        return key_hash(self.origin, self.public).hex()

    def sign_checkpoint(self, size: int, root: bytes, time: str) -> SignedCheckpoint:
        """``{size, root, time, key_id, sig}``: Ed25519 over the JCS of the rest."""
        unsigned = {
            "size": size,
            "root": crypto.b64u_encode(root),
            "time": time,
            "key_id": self.key_id,
        }
        return SignedCheckpoint(
            size=size,
            root=crypto.b64u_encode(root),
            time=time,
            key_id=self.key_id,
            sig=crypto.sign_object(unsigned, self.signing),
        )


def write_private(path: Path, seed: bytes) -> None:
    """A new file of mode 600 holding ``seed``, on disk before this returns; never replaces one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(seed)
        fh.flush()
        os.fsync(fh.fileno())


def create_log_key(path: Path, origin: str) -> LogKey:
    """Make a new key file; refuses to replace one (a new key would orphan every checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = SigningKey.generate()
    write_private(path, bytes(key))
    return LogKey(key, origin)


def load_log_key(path: Path, origin: str) -> LogKey:
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path} must be readable by its owner only (chmod 600)")
    seed = path.read_bytes()
    if len(seed) != 32:
        raise ValueError(f"{path} does not hold a 32-byte Ed25519 seed")
    return LogKey(SigningKey(seed), origin)


def load_or_create_log_key(path: Path, origin: str) -> LogKey:
    if not path.exists():
        return create_log_key(path, origin)
    return load_log_key(path, origin)


def log_key_for(settings: Settings) -> LogKey:
    """The log key of this installation, made on first use."""
    return load_or_create_log_key(settings.log_key_path, settings.log_origin)
