"""The werkafspraken in force (DESIGN.md, "Roles and scopes"): the organisations' policy-signing
keys, registered by admins; a policy put in force only with a valid signature of each; and every
node taking the newest one without a restart.

Each key registration, revocation and policy change is one transaction with its log entry. The
``policy.changed`` entry holds the whole signed note (a policy holds no personal data), so an
auditor checks both signatures against the keys the log registered, from the log alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

import structlog
from sqlalchemy.exc import IntegrityError

from bridge.errors import Conflict, Internal, Invalid, NotFound
from bridge.log.writer import Log
from bridge.policy import Policy
from bridge.policy.loader import PolicyError
from bridge.policy.signed import SignedPolicy, check_vkey, open_signed, policy_of
from bridge.store import policies as stored
from bridge.store.db import Database
from bridge.store.models import PolicyKey, PolicyVersion

__all__ = ["CONFIG_ADMIN", "PolicyInForce", "PolicyWatch", "Werkafspraken", "start"]

# The actor of a policy put in force because a node's configuration names it.
CONFIG_ADMIN = {"role": "admin", "via": "config"}

_log = structlog.get_logger("bridge.domain.policies")
_T = TypeVar("_T")


class PolicyInForce:
    """The policy this node enforces, replaced whole when a newer one is put in force; readers
    take ``current`` once per decision. Empty only until the node has started (:func:`start`)."""

    def __init__(self) -> None:
        self._signed: SignedPolicy | None = None

    @property
    def signed(self) -> SignedPolicy:
        """The policy in force as both organisations signed it."""
        if self._signed is None:
            raise Internal("no policy is in force yet")
        return self._signed

    @property
    def current(self) -> Policy:
        return self.signed.policy

    def replace(self, signed: SignedPolicy) -> None:
        self._signed = signed


class Werkafspraken:
    """Policy-signing keys and signed policies: register, revoke, check, apply, read."""

    def __init__(self, db: Database, log: Log, clock: Callable[[], datetime]) -> None:
        self.db, self.log, self.clock = db, log, clock

    async def register_key(self, org: str, vkey: str, actor: Mapping[str, object]) -> int:
        """Register ``vkey`` as a policy-signing key of ``org``; its log entry's index."""
        vkey = _checked(lambda: check_vkey(org, vkey))
        now = self.clock()
        try:
            async with self.db.session() as session, session.begin():
                if await stored.key(session, vkey) is not None:
                    raise Conflict("this key is registered already")
                session.add(PolicyKey(vkey=vkey, org=org, registered_at=now, revoked_at=None))
                return await self.log.append(
                    session, "policy_key.registered", at=now, actor=actor, org=org, vkey=vkey
                )
        except IntegrityError:  # registered by another admin at the same moment
            raise Conflict("this key is registered already") from None

    async def revoke_key(self, vkey: str, actor: Mapping[str, object]) -> int:
        """Revoke a registered key: it signs no policy from now on."""
        now = self.clock()
        async with self.db.session() as session, session.begin():
            key = await stored.key(session, vkey)
            if key is None:
                raise NotFound("no such policy-signing key is registered")
            if key.revoked_at is not None:
                raise Conflict("this key is revoked already")
            key.revoked_at = now
            return await self.log.append(
                session, "policy_key.revoked", at=now, actor=actor, org=key.org, vkey=vkey
            )

    async def keys(self, *, with_revoked: bool = False) -> dict[str, list[str]]:
        """org -> its registered verifier keys (without the revoked ones unless asked)."""
        async with self.db.reading() as session:
            rows = await stored.keys(session, with_revoked=with_revoked)
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.org, []).append(row.vkey)
        return found

    async def check(self, note: str) -> SignedPolicy:
        """The policy in ``note`` if both organisations signed it with keys registered and not
        revoked; Invalid saying why not. Changes nothing."""
        keys = await self.keys()
        return _checked(lambda: open_signed(note, keys))

    async def in_force(self) -> SignedPolicy | None:
        """The policy in force, its signatures checked again (by the keys registered when it was
        applied, revoked since or not); None before the first. Invalid if the stored policy does
        not hold: then nothing was put in force through :meth:`apply`."""
        keys = await self.keys(with_revoked=True)
        async with self.db.reading() as session:
            row = await stored.in_force(session)
        if row is None:
            return None
        signed = _checked(lambda: open_signed(row.note, keys))
        if (signed.policy.serial, signed.policy.sha256) != (row.serial, row.sha256):
            raise Invalid("the stored policy's serial or hash does not match its text")
        return signed

    async def apply(self, note: str, actor: Mapping[str, object]) -> SignedPolicy:
        """Put ``note`` in force if both organisations signed it and it is newer than the policy
        in force; Invalid or Conflict saying why not, changing nothing."""
        signed = await self.check(note)
        policy = signed.policy
        now = self.clock()
        try:
            async with self.db.session() as session, session.begin():
                current = await stored.in_force(session)
                if current is not None and policy.serial <= current.serial:
                    if policy.sha256 == current.sha256:
                        raise Conflict("this policy is in force already")
                    raise Conflict(
                        f"serial {policy.serial} is not newer than the policy in force "
                        f"({current.version}, serial {current.serial})"
                    )
                session.add(
                    PolicyVersion(
                        serial=policy.serial,
                        version=policy.version,
                        sha256=policy.sha256,
                        note=signed.note,
                        applied_at=now,
                    )
                )
                await self.log.append(
                    session,
                    "policy.changed",
                    at=now,
                    actor=actor,
                    version=policy.version,
                    serial=policy.serial,
                    sha256=policy.sha256,
                    signed_by=dict(signed.signed_by),
                    note=signed.note,
                )
        except IntegrityError:
            # Another apply of the same serial committed first.
            raise Conflict(f"a policy with serial {policy.serial} was applied meanwhile") from None
        return signed


async def start(werkafspraken: Werkafspraken, held: PolicyInForce, configured: str | None) -> None:
    """At a node's start: put the ``configured`` policy text in force if it is newer than the
    one in force (one that does not hold stops the start; an older one is left, as an admin or
    another node put a newer one in force since), then hold the policy in force. With none in
    force the bridge does not start: it enforces nothing both organisations have not signed."""
    current = await werkafspraken.in_force()
    if configured is not None:
        said = _checked(lambda: policy_of(configured))
        if current is not None and said.serial <= current.policy.serial:
            if said.sha256 != current.policy.sha256:
                _log.warning("policy.configured_older", serial=said.serial)
        else:
            with contextlib.suppress(Conflict):  # another node applied it at the same time
                await werkafspraken.apply(configured, CONFIG_ADMIN)
            current = await werkafspraken.in_force()
    if current is None:
        raise Invalid(
            "no werkafspraken are in force: register a policy-signing key of Fier and of AVIM "
            "(bridge policy key add) and apply a policy both have signed (bridge policy apply); "
            "see docs/governance.md"
        )
    held.replace(current)


class PolicyWatch:
    """Keeps a node's :class:`PolicyInForce` on the newest policy applied on any node: every
    ``seconds`` it reads the newest serial, and takes a newer policy once its signatures hold
    (one that does not hold is refused and logged, and the node keeps the one it has)."""

    def __init__(self, werkafspraken: Werkafspraken, held: PolicyInForce, seconds: float) -> None:
        self.werkafspraken, self.held, self.seconds = werkafspraken, held, seconds
        self._refused: int | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            try:
                await self.refresh()
            except Exception:
                _log.exception("policy.watch_failed")

    async def refresh(self) -> bool:
        """Take the policy in force if it is newer than the one held; whether it did."""
        async with self.werkafspraken.db.reading() as session:
            serial = await stored.newest_serial(session)
        if serial is None or serial <= self.held.current.serial or serial == self._refused:
            return False
        try:
            signed = await self.werkafspraken.in_force()
        except Invalid as exc:
            self._refused = serial
            _log.error("policy.refused", serial=serial, reason=exc.message)
            return False
        if signed is None:
            return False
        self.held.replace(signed)
        _log.info("policy.in_force", version=signed.policy.version, serial=signed.policy.serial)
        return True


def _checked(make: Callable[[], _T]) -> _T:
    """``make()``, with a policy's PolicyError as the protocol's ``invalid``."""
    try:
        return make()
    except PolicyError as exc:
        raise Invalid(str(exc)) from None
