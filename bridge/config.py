"""Settings from the environment and an optional TOML file, with defaults for the embedded set-up.

Precedence: command-line flags, then environment (``BRIDGE_*``), then the TOML file given with
``--config``, then the defaults below (SQLite under ``./var``, loopback, port 8080).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from nacl import pwhash

__all__ = ["Settings", "load_settings"]


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    policy_file: Path | None = None
    redis_url: str | None = None
    staff_token_seconds: int = 12 * 3600
    victim_token_seconds: int = 7 * 24 * 3600
    # Argon2id cost of staff passwords: libsodium's interactive level (tests lower it).
    password_opslimit: int = pwhash.argon2id.OPSLIMIT_INTERACTIVE
    password_memlimit: int = pwhash.argon2id.MEMLIMIT_INTERACTIVE
    # Argon2id cost of the org passphrase; staff clients (browsers too) pay it once per unlock.
    org_key_opslimit: int = pwhash.argon2id.OPSLIMIT_INTERACTIVE
    org_key_memlimit: int = pwhash.argon2id.MEMLIMIT_INTERACTIVE
    # Messages a socket may send: a sustained rate per second and a burst (a token bucket).
    message_rate: float = 10.0
    message_burst: int = 30
    # Limits (docs/protocol.md, "Limits and sessions"). Per-address limits count the TCP peer's
    # address, or, when the peer is one of trusted_proxies (addresses or CIDR networks,
    # comma-separated), the last address of its X-Forwarded-For. Behind a proxy not listed every
    # client shares the proxy's address, so raise them there (and for load tests).
    trusted_proxies: str = ""
    max_frame_bytes: int = 64 * 1024
    conversations_per_minute: int = 30
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_lockout_seconds: float = 30.0
    login_lockout_max_seconds: float = 900.0
    sockets_per_account: int = 20
    sockets_per_victim: int = 4
    # Packets waiting for one socket's websocket writer; past it the reader is too slow and is
    # cut off (it catches up from history when it comes back).
    socket_queue_limit: int = 1000
    # How often open sockets are checked against revoked or expired tokens and disabled accounts.
    session_check_seconds: float = 1.0
    # The log: its name in signed notes, and how often checkpoints are signed while it grows.
    log_origin: str = "fier-bridge/log"
    checkpoint_every: int = 100
    checkpoint_seconds: float = 60.0
    # How often a node looks for a newer policy put in force (by an admin, or another node).
    policy_check_seconds: float = 5.0
    # SQLite durability: FULL survives power loss, not only a killed process.
    sqlite_synchronous: str = "FULL"

    @property
    def log_key_path(self) -> Path:
        return self.data_dir / "log-key"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'bridge.db').resolve()}"


# Every setting may come from ``BRIDGE_<NAME>`` (``BRIDGE_DATA_DIR``, ``BRIDGE_MESSAGE_RATE``, ...).
_ENV = {f"BRIDGE_{f.name.upper()}": f.name for f in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind in ("Path", "Path | None"):
        return Path(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return value


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; ``overrides`` whose value is None are ignored."""
    values: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as fh:
            data = tomllib.load(fh)
        known = {f.name for f in fields(Settings)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
        values.update({k: _coerce(k, v) for k, v in data.items()})
    for env, name in _ENV.items():
        if env in os.environ and os.environ[env] != "":
            values[name] = _coerce(name, os.environ[env])
    values.update({k: _coerce(k, v) for k, v in overrides.items() if v is not None})
    return replace(Settings(), **values)
