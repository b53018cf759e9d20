"""``bridge policy``: the organisations' policy-signing keys, and signing, checking and applying
the werkafspraken (docs/governance.md).

``key generate`` and ``sign`` run where an organisation keeps its private key and need no
database; ``key add``, ``key revoke``, ``key list``, ``check`` and ``apply`` are an admin's, on
the bridge's database. Private keys are never printed; public keys are.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nacl.signing import SigningKey

from bridge.clock import utc_now
from bridge.config import Settings
from bridge.domain.policies import Werkafspraken
from bridge.domain.roles import CLI_ADMIN
from bridge.errors import BridgeError, Invalid
from bridge.i18n import LANGS, notice
from bridge.log.writer import open_log
from bridge.policy.changes import changes
from bridge.policy.loader import PolicyError
from bridge.policy.signed import (
    ORG_NAMES,
    SIGNING_ORGS,
    policy_of,
    read_skey,
    sign_policy,
    signed_by,
    signing_skey,
    signing_vkey,
)
from bridge.store.db import migrated

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="the werkafspraken: keys, sign, check, apply")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    key = policy_sub.add_parser("key", help="the organisations' policy-signing keys")
    key_sub = key.add_subparsers(dest="key_command", required=True)
    generate = key_sub.add_parser("generate", help="make a key pair; the private key to a file")
    generate.add_argument("--org", required=True, choices=SIGNING_ORGS)
    generate.add_argument("--out", type=Path, required=True, metavar="FILE", help="a new file")
    add = key_sub.add_parser("add", help="register an organisation's public key (logged)")
    add.add_argument("vkey", help="the public (verifier) key that key generate printed")
    add.add_argument("--org", required=True, choices=SIGNING_ORGS)
    add.add_argument("--db")
    revoke = key_sub.add_parser("revoke", help="a key signs no new policy (logged)")
    revoke.add_argument("vkey")
    revoke.add_argument("--db")
    listing = key_sub.add_parser("list", help="the registered keys")
    listing.add_argument("--db")
    sign = policy_sub.add_parser("sign", help="add an organisation's signature to a policy file")
    sign.add_argument("file", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="the private key file")
    sign.add_argument("--out", type=Path, help="write here instead of changing FILE")
    check = policy_sub.add_parser("check", help="what a policy file changes, and if it may apply")
    check.add_argument("file", type=Path, help="the policy file, or - for standard input")
    check.add_argument("--lang", choices=LANGS, default="nl")
    check.add_argument("--db")
    apply = policy_sub.add_parser("apply", help="put a policy signed by both in force (logged)")
    apply.add_argument("file", type=Path, help="the policy file, or - for standard input")
    apply.add_argument("--lang", choices=LANGS, default="nl")
    apply.add_argument("--db")


async def run(settings: Settings, args: argparse.Namespace) -> tuple[int, str]:
    """Exit status and what to print for ``bridge policy ...``."""
    if args.policy_command == "sign":
        return 0, _sign(args)
    if args.policy_command == "key" and args.key_command == "generate":
        return 0, _generate(args.org, args.out)
    async with migrated(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous) as db:
        werkafspraken = Werkafspraken(db, open_log(settings), utc_now)
        if args.policy_command == "key":
            return 0, await _key(werkafspraken, args)
        text = _read(args.file)
        if args.policy_command == "check":
            return await _check(werkafspraken, text, args.lang)
        applied = await werkafspraken.apply(text, CLI_ADMIN)
        policy = applied.policy
        values = {"version": policy.version, "serial": str(policy.serial)}
        return 0, notice("policy.applied", args.lang, values=values)


def _generate(org: str, out: Path) -> str:
    key = SigningKey.generate()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BridgeError(f"{out} exists already") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(signing_skey(org, key) + "\n")
    return json.dumps({"org": org, "vkey": signing_vkey(org, key), "private_key": str(out)})


async def _key(werkafspraken: Werkafspraken, args: argparse.Namespace) -> str:
    if args.key_command == "add":
        index = await werkafspraken.register_key(args.org, args.vkey.strip(), CLI_ADMIN)
        return json.dumps({"org": args.org, "vkey": args.vkey.strip(), "log_index": index})
    if args.key_command == "revoke":
        index = await werkafspraken.revoke_key(args.vkey.strip(), CLI_ADMIN)
        return json.dumps({"vkey": args.vkey.strip(), "revoked": True, "log_index": index})
    current = await werkafspraken.keys()
    every = await werkafspraken.keys(with_revoked=True)
    return json.dumps(
        [
            {"org": org, "vkey": vkey, "revoked": vkey not in current.get(org, [])}
            for org, vkeys in sorted(every.items())
            for vkey in vkeys
        ]
    )


def _sign(args: argparse.Namespace) -> str:
    try:
        org, key = read_skey(_read(args.key))
        signed = sign_policy(_read(args.file), org, key)
    except PolicyError as exc:
        raise Invalid(str(exc)) from None
    out: Path = args.out or args.file
    temporary = out.with_name(out.name + ".signing")
    temporary.write_text(signed, encoding="utf-8")
    temporary.replace(out)
    return json.dumps({"org": org, "vkey": signing_vkey(org, key), "file": str(out)})


async def _check(werkafspraken: Werkafspraken, text: str, lang: str) -> tuple[int, str]:
    try:
        policy = policy_of(text)
    except PolicyError as exc:
        raise Invalid(str(exc)) from None
    title = _named(policy.version, policy.serial) | {"sha256": policy.sha256}
    lines = [notice("policy.check.title", lang, values=title)]
    try:
        found = signed_by(text, await werkafspraken.keys())
    except PolicyError:
        found = {}  # a signature that does not hold: the reason follows below
    for org in SIGNING_ORGS:
        values = {"org": ORG_NAMES[org], "vkey": found.get(org, "")}
        lines.append(
            notice(f"policy.check.{'signed' if org in found else 'unsigned'}", lang, values=values)
        )
    current = await werkafspraken.in_force()
    if current is None:
        lines.append(notice("policy.check.first", lang))
    else:
        old = current.policy
        lines.append(notice("policy.check.against", lang, values=_named(old.version, old.serial)))
        changed = changes(old, policy, lang)
        lines += [f"- {change.text(lang)}" for change in changed]
        if not changed:
            lines.append(notice("policy.check.same", lang))
    try:
        await werkafspraken.check(text)
        if current is not None and policy.serial <= current.policy.serial:
            raise Invalid(
                f"serial {policy.serial} is not newer than the policy in force "
                f"(serial {current.policy.serial})"
            )
    except BridgeError as exc:
        values = {"reason": exc.message}
        return 1, "\n".join([*lines, notice("policy.check.cannot_apply", lang, values=values)])
    return 0, "\n".join([*lines, notice("policy.check.can_apply", lang)])


def _named(version: str, serial: int) -> dict[str, str]:
    return {"version": version, "serial": str(serial)}


def _read(path: Path) -> str:
    """The file's text; ``-`` is standard input (where the command runs as another user)."""
    try:
        return sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"{path} cannot be read: {exc}") from None
