"""Demo accounts, org keys and werkafspraken for ``bridge serve --demo``, made once and kept
beside the data.

Passwords, passphrases and the two policy-signing keys are random, written to a file only the
owner can read; passwords and passphrases are printed. The packaged default policy is signed with
both demo keys and put in force, on first use and whenever no policy is in force.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from bridge.clock import utc_now
from bridge.config import Settings
from bridge.crypto import b64u_decode, b64u_encode
from bridge.domain.orgkeys import init_org_key
from bridge.domain.policies import Werkafspraken
from bridge.domain.staff import Staff
from bridge.edges.demo_policy import sign_as_both
from bridge.log.writer import open_log
from bridge.policy.loader import default_text
from bridge.policy.signed import SIGNING_ORGS
from bridge.store.db import Database, upgrade

__all__ = ["DEMO_USERS", "ensure_demo"]

DEMO_USERS: tuple[dict[str, str | None], ...] = (
    {
        "username": "demo-counsellor",
        "role": "counsellor",
        "org": "fier",
        "region": None,
        "gender": None,
    },
    {
        "username": "demo-officer",
        "role": "officer",
        "org": "avim",
        "region": "Noord-Holland",
        "gender": "female",
    },
    {"username": "demo-auditor", "role": "auditor", "org": "audit", "region": None, "gender": None},
)


def ensure_demo(settings: Settings, path: Path) -> dict[str, Any]:
    """The demo accounts kept at ``path``; made (and the file written) on first use."""
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
    else:
        data = asyncio.run(_create(settings))
    if "policy_keys" not in data:  # made before policies were signed
        data["policy_keys"] = {
            org: b64u_encode(bytes(SigningKey.generate())) for org in SIGNING_ORGS
        }
        path.unlink(missing_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
    asyncio.run(_werkafspraken(settings, data["policy_keys"]))
    return data


async def _werkafspraken(settings: Settings, seeds: dict[str, str]) -> None:
    keys = {org: SigningKey(b64u_decode(seed)) for org, seed in seeds.items()}
    db = Database(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await upgrade(db)
        werkafspraken = Werkafspraken(db, open_log(settings), utc_now)
        await sign_as_both(werkafspraken, keys, default_text(), apply=True)
    finally:
        await db.dispose()


async def _create(settings: Settings) -> dict[str, Any]:
    db = Database(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await upgrade(db)
        accounts = []
        staff = Staff(db, open_log(settings), utc_now)
        for user in DEMO_USERS:
            password = secrets.token_urlsafe(12)
            await staff.add_account(
                str(user["username"]),
                password,
                role=str(user["role"]),
                org=str(user["org"]),
                region=user["region"],
                gender=user["gender"],
                opslimit=settings.password_opslimit,
                memlimit=settings.password_memlimit,
            )
            accounts.append({**user, "password": password})
        passphrases = {}
        for org in ("fier", "avim"):
            passphrases[org] = secrets.token_urlsafe(18)
            await init_org_key(
                db,
                open_log(settings),
                org,
                passphrases[org],
                opslimit=settings.org_key_opslimit,
                memlimit=settings.org_key_memlimit,
                now=utc_now(),
            )
    finally:
        await db.dispose()
    return {"accounts": accounts, "passphrases": passphrases}
