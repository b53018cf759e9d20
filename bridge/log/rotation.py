"""``bridge keys rotate-log``: a new log key, handed over by the old one.

In the data directory, beside ``log-key``: the new key is written first as ``log-key.new``, and
the current one copied to ``log-keys/<key_id>``, where it stays (this never deletes a key: the
operator decides when the retired key may go). Then, in one transaction, the log gets the
``log_key.rotated`` entry and a checkpoint of the old key that covers it (:meth:`Log.rotate`),
and only then does ``log-key.new`` replace ``log-key``. A lock on ``log-key.lock`` keeps two
rotations of one data directory apart. Run again after an interruption, the command finishes
the files if the log names the staged key, and otherwise drops it (it was never trusted).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bridge.config import Settings
from bridge.errors import Conflict, NotFound
from bridge.log.logkey import LogKey, SignedCheckpoint, create_log_key, load_log_key, write_private
from bridge.log.writer import Log
from bridge.store.db import Database
from bridge.store.models import LogState

__all__ = ["Rotation", "rotate_log_key"]


@dataclass(frozen=True)
class Rotation:
    """The keys before and after, where the old one is kept, the rotation entry's index and
    the old key's checkpoint of it (both None when an interrupted rotation was only finished)."""

    old: LogKey
    new: LogKey
    retired: Path
    index: int | None
    handover: SignedCheckpoint | None


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    fd = os.open(settings.data_dir / "log-key.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _retire(settings: Settings, key: LogKey) -> Path:
    retired = settings.data_dir / "log-keys"
    retired.mkdir(mode=0o700, exist_ok=True)
    path = retired / key.key_id
    if not path.exists():
        write_private(path, bytes(key.signing))
    return path


async def _current_key_id(db: Database) -> str | None:
    async with db.reading() as session:
        return await session.scalar(select(LogState.key_id).where(LogState.id == 1))


async def rotate_log_key(
    db: Database, settings: Settings, now: datetime, actor: Mapping[str, object]
) -> Rotation:
    path, origin = settings.log_key_path, settings.log_origin
    staged = path.with_name(path.name + ".new")
    if not path.exists():
        raise NotFound(f"{path} does not exist: there is no log key to rotate")
    with _locked(settings):
        old = load_log_key(path, origin)
        current = await _current_key_id(db)
        if staged.exists():
            new = load_log_key(staged, origin)
            if current == new.key_id:  # logged, but the files were not swapped yet
                retired = _retire(settings, old)
                os.replace(staged, path)
                return Rotation(old, new, retired, None, None)
            staged.unlink()
        if current not in (None, old.key_id):
            raise Conflict(f"{path} holds key {old.key_id}, but the log signs with {current}")
        new = create_log_key(staged, origin)
        retired = _retire(settings, old)
        log = Log(old, checkpoint_every=settings.checkpoint_every, key_path=path)
        async with db.session() as session, session.begin():
            index, handover = await log.rotate(session, new, now, actor)
        os.replace(staged, path)
    return Rotation(old, new, retired, index, handover)
