"""The ``bridge`` command: serve, db, user, keys, audit, policy, demo (PROTOCOL.md, "Command
line").

Errors of the core are answered here, once: the message on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from bridge.clock import utc_now
from bridge.config import Settings, load_settings
from bridge.domain.auth import STAFF_ROLES
from bridge.domain.orgkeys import init_org_key
from bridge.domain.staff import Staff
from bridge.edges import policy_commands
from bridge.edges.app import make_app
from bridge.errors import BridgeError
from bridge.log.logkey import create_log_key
from bridge.log.writer import open_log
from bridge.store.backup import backup_sqlite
from bridge.store.db import Database, downgrade, migrated, upgrade

__all__ = ["main"]

DEMO_FILE = "demo-accounts.json"


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    # Libraries write no lines of their own: aiohttp's access log would record addresses.
    for name in ("aiohttp.access", "socketio", "engineio"):
        logging.getLogger(name).disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        getattr(args, "config", None),
        database_url=getattr(args, "db", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def _read_secret(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise BridgeError("the two entries differ")
    return first


async def _db_migrate(settings: Settings, back_to: str | None) -> None:
    db = Database(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await (upgrade(db) if back_to is None else downgrade(db, back_to))
    finally:
        await db.dispose()


async def _user_add(settings: Settings, args: argparse.Namespace, password: str) -> str:
    async with migrated(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous) as db:
        return await Staff(db, open_log(settings), utc_now).add_account(
            args.name,
            password,
            role=args.role,
            org=args.org,
            region=args.region,
            gender=args.gender,
            opslimit=settings.password_opslimit,
            memlimit=settings.password_memlimit,
        )


async def _user_disable(settings: Settings, name: str, disabled: bool) -> str:
    async with migrated(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous) as db:
        return await Staff(db, open_log(settings), utc_now).set_disabled(name, disabled)


async def _init_org(settings: Settings, org: str, passphrase: str) -> str:
    async with migrated(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous) as db:
        key = await init_org_key(
            db,
            open_log(settings),
            org,
            passphrase,
            opslimit=settings.org_key_opslimit,
            memlimit=settings.org_key_memlimit,
            now=utc_now(),
        )
        return key.x25519


def _serve(settings: Settings, demo: bool) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if demo:
        from bridge.edges.demo_accounts import ensure_demo

        accounts = ensure_demo(settings, settings.data_dir / DEMO_FILE)
        base = f"http://{settings.host}:{settings.port}"
        print(_demo_banner(accounts, base), flush=True)
    app = make_app(settings)
    structlog.get_logger("bridge").info("serve.start", host=settings.host, port=settings.port)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=5.0,
    )


def _demo_banner(accounts: dict[str, Any], base: str) -> str:
    lines = ["", "Fier bridge demo", "================", ""]
    for account in accounts["accounts"]:
        lines.append(
            f"  {account['role']:<11} user {account['username']:<18} password {account['password']}"
        )
    for org, passphrase in accounts["passphrases"].items():
        lines.append(f"  org {org:<7} passphrase {passphrase}")
    lines += [
        "",
        f"  victim      {base}/",
        f"  counsellor  {base}/counsellor",
        f"  officer     {base}/officer",
        f"  auditor     {base}/audit",
        f"  API         {base}/api/v1  (Socket.IO at /socket.io)",
        "",
        f"  scripted driegesprek:  bridge demo --url {base}",
        "",
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridge", description="Fier bridge")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the bridge")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--db")
    serve.add_argument("--config", type=Path)
    serve.add_argument(
        "--demo", action="store_true", help="create and print demo accounts and org keys"
    )

    db = sub.add_parser("db", help="database")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="migrate to the newest schema")
    up.add_argument("--db")
    down = db_sub.add_parser("downgrade", help="migrate back to an earlier schema (rolling back)")
    down.add_argument("revision", help="the revision to go back to, e.g. 0001, or base")
    down.add_argument("--db")
    backup = db_sub.add_parser(
        "backup", help="copy a SQLite database while it runs (PostgreSQL: pg_dump --format=custom)"
    )
    backup.add_argument("--to", type=Path, required=True, metavar="FILE", help="a new file")
    backup.add_argument("--db")

    user = sub.add_parser("user", help="staff accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="add a staff account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=list(STAFF_ROLES))
    add.add_argument("--org", required=True, choices=["fier", "avim", "audit"])
    add.add_argument("--region")
    add.add_argument("--gender", choices=["female", "male", "other"])
    add.add_argument("--password-stdin", action="store_true")
    add.add_argument("--db")
    for command, what in (
        ("disable", "disable an account and revoke its tokens; its sockets are closed"),
        ("enable", "enable a disabled account (its user logs in again)"),
    ):
        switch = user_sub.add_parser(command, help=what)
        switch.add_argument("name")
        switch.add_argument("--db")

    keys = sub.add_parser("keys", help="org keys and the log key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_sub.add_parser(
        "init-org", help="make an org's key pair, sealed under its passphrase"
    )
    init.add_argument("org", choices=["fier", "avim"])
    init.add_argument("--passphrase-stdin", action="store_true")
    init.add_argument("--db")
    keys_sub.add_parser("init-log", help="make the log's signing key in the data directory")
    rotate = keys_sub.add_parser(
        "rotate-log", help="a new log key, handed over by the old one (see docs/audit.md)"
    )
    rotate.add_argument("--db")
    rotate_org = keys_sub.add_parser(
        "rotate-org", help="a new version of an org's key, under a passphrase given for it"
    )
    rotate_org.add_argument("org", choices=["fier", "avim"])
    rotate_org.add_argument("--passphrase-stdin", action="store_true")
    rotate_org.add_argument("--db")

    audit = sub.add_parser("audit", help="export and verify the log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    export = audit_sub.add_parser("export", help="write the whole log to a file")
    export.add_argument("--url", required=True)
    export.add_argument("--token", help="an auditor's token (or BRIDGE_AUDIT_TOKEN)")
    export.add_argument("--out", type=Path, required=True)
    verify = audit_sub.add_parser("verify", help="verify an export offline, or a running bridge")
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument("--url")
    source.add_argument("--export", type=Path)
    verify.add_argument("--token", help="an auditor's token (or BRIDGE_AUDIT_TOKEN)")
    verify.add_argument("--log-key", help="the log's Ed25519 public key (b64u) to trust")
    verify.add_argument(
        "--previous",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint saved earlier (JSON); the log must still agree with it",
    )
    verify.add_argument("--note", type=Path, help="a checkpoint as a signed note, cosigned")
    verify.add_argument(
        "--witness-key",
        action="append",
        default=[],
        help="a witness's verifier key; its cosignature on --note must be valid",
    )

    check = audit_sub.add_parser("check", help="run the agreed rules over an export, offline")
    check.add_argument("--export", type=Path, required=True)
    check.add_argument("--log-key", help="the log's Ed25519 public key (b64u) to trust")

    policy_commands.add_parser(sub)

    demo = sub.add_parser("demo", help="run a scripted driegesprek against a running bridge")
    demo.add_argument("--url", default="http://127.0.0.1:8080")
    demo.add_argument("--accounts", type=Path, help=f"the {DEMO_FILE} written by serve --demo")
    return parser


def _cmd_serve(args: argparse.Namespace) -> int:
    _serve(_settings(args), args.demo)
    return 0


def _cmd_db(args: argparse.Namespace) -> int:
    if args.db_command == "backup":
        settings = _settings(args)
        revision = backup_sqlite(settings.db_url, args.to)
        print(
            f"database (schema {revision}) copied to {args.to}; "
            f"the log key ({settings.log_key_path}) is not in it: keep it separately"
        )
        return 0
    back_to = args.revision if args.db_command == "downgrade" else None
    asyncio.run(_db_migrate(_settings(args), back_to))
    print("database is at the newest schema" if back_to is None else f"database is at {back_to}")
    return 0


def _cmd_user(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.user_command in ("disable", "enable"):
        disabled = args.user_command == "disable"
        user_id = asyncio.run(_user_disable(settings, args.name, disabled))
        print(json.dumps({"user_id": user_id, "username": args.name, "disabled": disabled}))
        return 0
    password = _read_secret(args.password_stdin, "Password: ")
    user_id = asyncio.run(_user_add(settings, args, password))
    print(
        json.dumps({"user_id": user_id, "username": args.name, "role": args.role, "org": args.org})
    )
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.keys_command == "init-log":
        try:
            key = create_log_key(settings.log_key_path, settings.log_origin)
        except FileExistsError:
            raise BridgeError(f"{settings.log_key_path} exists already") from None
        print(json.dumps({"key_id": key.key_id, "ed25519": key.ed25519, "origin": key.origin}))
        return 0
    if args.keys_command == "rotate-log":
        from bridge.edges.key_commands import rotate_log

        print(json.dumps(asyncio.run(rotate_log(settings))))
        return 0
    if args.keys_command == "rotate-org":
        from bridge.edges.key_commands import rotate_org

        passphrase = _read_secret(args.passphrase_stdin, f"New passphrase for {args.org}: ")
        print(json.dumps(asyncio.run(rotate_org(settings, args.org, passphrase))))
        return 0
    passphrase = _read_secret(args.passphrase_stdin, f"Passphrase for {args.org}: ")
    public = asyncio.run(_init_org(settings, args.org, passphrase))
    print(json.dumps({"org": args.org, "key_id": f"{args.org}-1", "x25519": public}))
    return 0


def _token(args: argparse.Namespace) -> str:
    token = args.token or os.environ.get("BRIDGE_AUDIT_TOKEN")
    if not token:
        raise BridgeError("an auditor's token is needed: --token or BRIDGE_AUDIT_TOKEN")
    return str(token)


def _cmd_audit(args: argparse.Namespace) -> int:
    from bridge.log.audit import check_command, export_command, verify_command

    if args.audit_command == "check":
        return check_command(args)
    if args.audit_command == "export":
        return asyncio.run(export_command(args.url, _token(args), args.out))
    token = _token(args) if args.url else None
    return asyncio.run(verify_command(args, token))


def _cmd_policy(args: argparse.Namespace) -> int:
    status, out = asyncio.run(policy_commands.run(_settings(args), args))
    print(out)
    return status


def _cmd_demo(args: argparse.Namespace) -> int:
    from bridge.edges.demo import run_demo

    data_dir = Path(os.environ.get("BRIDGE_DATA_DIR", "var"))
    return asyncio.run(run_demo(args.url, args.accounts or data_dir / DEMO_FILE))


COMMANDS = {
    "serve": _cmd_serve,
    "db": _cmd_db,
    "user": _cmd_user,
    "keys": _cmd_keys,
    "audit": _cmd_audit,
    "policy": _cmd_policy,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging()
    try:
        return COMMANDS[args.command](args)
    except BridgeError as exc:
        print(f"bridge: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
