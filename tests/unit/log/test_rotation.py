"""Rotating the log key (bridge/log/rotation.py, ``Log.rotate``) on a real database and data
directory: the hand-over is signed by the old key, the old key is kept, a node holding the
retired key reads the new one or signs nothing, and an interrupted rotation is finished or
dropped when the command runs again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bridge import crypto
from bridge.config import Settings, load_settings
from bridge.errors import Conflict, NotFound
from bridge.log.logkey import create_log_key, load_log_key
from bridge.log.rotation import rotate_log_key
from bridge.log.writer import Log, LogKeyNotCurrent, open_log
from bridge.store.db import Database, upgrade
from bridge.store.models import LogEntry, LogState, StoredCheckpoint
from harness import database_url

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ACTOR = {"role": "admin", "via": "cli"}


async def installation(tmp_path: Path) -> tuple[Settings, Database]:
    settings = load_settings(data_dir=tmp_path, database_url=database_url(tmp_path))
    db = Database(settings.db_url)
    await upgrade(db)
    create_log_key(settings.log_key_path, settings.log_origin)
    return settings, db


async def append(db: Database, log: Log, count: int) -> None:
    for n in range(count):
        async with db.session() as session, session.begin():
            await log.append(session, "transcript.read", at=NOW, first_seq=n, last_seq=n)


async def test_the_old_key_signs_the_hand_over_and_stays_in_the_data_directory(
    tmp_path: Path,
) -> None:
    settings, db = await installation(tmp_path)
    node = open_log(settings)  # a node that started before the rotation
    await append(db, node, 3)
    old = load_log_key(settings.log_key_path, settings.log_origin)

    rotation = await rotate_log_key(db, settings, NOW, ACTOR)

    assert rotation.old.key_id == old.key_id != rotation.new.key_id and rotation.index == 3
    assert load_log_key(settings.log_key_path, settings.log_origin).key_id == rotation.new.key_id
    assert rotation.retired == tmp_path / "log-keys" / old.key_id
    assert load_log_key(rotation.retired, settings.log_origin).ed25519 == old.ed25519
    assert rotation.retired.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "log-key.new").exists()
    handover = rotation.handover
    assert handover is not None and handover["size"] == 4 and handover["key_id"] == old.key_id
    crypto.verify_object(handover, handover["sig"], old.ed25519)
    async with db.session() as session:
        entry = json.loads(
            await session.scalar(select(LogEntry.entry).where(LogEntry.idx == 3)) or "{}"
        )
    assert entry == {
        "kind": "log_key.rotated",
        "at": "2026-12-01T10:00:00Z",
        "prev_checkpoint": None,
        "actor": ACTOR,
        "old_key_id": old.key_id,
        "old_ed25519": old.ed25519,
        "new_key_id": rotation.new.key_id,
        "new_ed25519": rotation.new.ed25519,
    }

    # The node that started with the old key reads the new one at its next signature.
    await append(db, node, 2)
    async with db.session() as session, session.begin():
        signed = await node.checkpoint(session, NOW)
    assert signed["key_id"] == rotation.new.key_id and signed["size"] == 6
    crypto.verify_object(signed, signed["sig"], rotation.new.ed25519)
    await db.dispose()


async def test_a_node_without_the_current_key_signs_nothing(tmp_path: Path) -> None:
    settings, db = await installation(tmp_path)
    await append(db, open_log(settings), 1)
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "log-key").write_bytes(settings.log_key_path.read_bytes())
    (stale / "log-key").chmod(0o600)
    node = Log(
        load_log_key(stale / "log-key", settings.log_origin),
        checkpoint_every=2,
        key_path=stale / "log-key",
    )
    await rotate_log_key(db, settings, NOW, ACTOR)

    # Its entries are written, the checkpoint they are due is left to a node with the key...
    await append(db, node, 3)
    async with db.session() as session:
        state = await session.get_one(LogState, 1)
        sizes = [c.size for c in await session.scalars(select(StoredCheckpoint))]
    assert state.size == 5 and sizes == [2]
    # ...and what needs its signature now is refused, never signed with the retired key, nor
    # with none when its key file is gone.
    for _ in range(2):
        with pytest.raises(LogKeyNotCurrent):
            async with db.session() as session, session.begin():
                await node.checkpoint(session, NOW)
        (stale / "log-key").unlink(missing_ok=True)
    await append(db, node, 1)
    await db.dispose()


async def test_an_interrupted_rotation_is_finished_or_dropped(tmp_path: Path) -> None:
    settings, db = await installation(tmp_path)
    staged = tmp_path / "log-key.new"
    # Staged but never logged (interrupted before the commit): dropped, and a new key made.
    never_logged = create_log_key(staged, settings.log_origin)
    first = await rotate_log_key(db, settings, NOW, ACTOR)
    assert first.new.key_id != never_logged.key_id and first.index is not None
    # Logged, but the files not swapped yet: the command run again finishes the swap.
    settings.log_key_path.rename(staged)
    (tmp_path / "log-keys" / first.old.key_id).rename(settings.log_key_path)
    finished = await rotate_log_key(db, settings, NOW, ACTOR)
    assert (finished.old.key_id, finished.new.key_id) == (first.old.key_id, first.new.key_id)
    assert finished.index is None and finished.handover is None
    assert load_log_key(settings.log_key_path, settings.log_origin).key_id == first.new.key_id
    assert (tmp_path / "log-keys" / first.old.key_id).exists() and not staged.exists()
    async with db.session() as session:
        kinds = list(await session.scalars(select(LogEntry.kind)))
    assert kinds.count("log_key.rotated") == 1
    await db.dispose()


async def test_rotation_refuses_a_data_directory_without_the_current_key(tmp_path: Path) -> None:
    settings, db = await installation(tmp_path)
    kept = settings.log_key_path.read_bytes()
    await rotate_log_key(db, settings, NOW, ACTOR)
    # The old key put back, as a node that was not given the new one would hold it.
    settings.log_key_path.unlink()
    settings.log_key_path.write_bytes(kept)
    settings.log_key_path.chmod(0o600)
    with pytest.raises(Conflict, match="but the log signs with"):
        await rotate_log_key(db, settings, NOW, ACTOR)
    settings.log_key_path.unlink()
    with pytest.raises(NotFound, match="no log key to rotate"):
        await rotate_log_key(db, settings, NOW, ACTOR)
    await db.dispose()
