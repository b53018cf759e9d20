"""The ``bridge`` command as an operator runs it: separate processes, real files, a real socket.

Each command runs as ``python -m bridge.edges.cli`` with its own ``BRIDGE_DATA_DIR``. Commands that
hash a password or seal an org key pay libsodium's interactive Argon2id cost, so there are few.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from bridge import crypto
from bridge.client import CounsellorClient, OfficerClient, Refused
from harness import CLI, Bridge, bridge_cli, cli_env, database_url, free_port, query, wait_healthy


def _db(data_dir: Path) -> str:
    """The database URL of the installation in ``data_dir``, given with ``--db``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return database_url(data_dir)


@pytest.mark.slow
async def test_serve_demo_then_the_scripted_driegesprek(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.out").open("w") as out, (tmp_path / "serve.err").open("w") as err:
        server = await asyncio.create_subprocess_exec(
            *CLI, "serve", "--demo", "--port", str(port), stdout=out, stderr=err, env=cli_env(data)
        )
    try:
        await wait_healthy(url, server)
        banner = (tmp_path / "serve.out").read_text()
        accounts = json.loads((data / "demo-accounts.json").read_text())
        for account in accounts["accounts"]:
            assert account["username"] in banner
            assert account["password"] in banner
        assert all(phrase in banner for phrase in accounts["passphrases"].values())
        assert f"bridge demo --url {url}" in banner
        async with aiohttp.ClientSession() as http:
            for page in ("/", "/counsellor", "/officer", "/audit"):
                assert f"{url}{page}" in banner
                async with http.get(url + page) as response:
                    assert response.status == 200, page
                    assert response.content_type == "text/html"

        code, output, errors = await bridge_cli(
            data, "demo", "--url", url, "--accounts", str(data / "demo-accounts.json")
        )
        assert code == 0, output + errors
        for party in ("Victim", "Counsellor", "Officer"):
            assert f"{party} saw " in output
        assert "never reached the officer: #1, #2, #3, #4 (before it joined)" in output
        assert "refused: no_consent" in output
        assert "'Ik ben bang voor hem, zeg dat niet.'" in output  # decrypted text is shown
        assert "FAILED" not in output + errors
        secrets = [a["password"] for a in accounts["accounts"]]
        secrets += accounts["passphrases"].values()
        assert not any(secret in output for secret in secrets)
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(server.wait(), 15)
    assert status == 0
    assert "Traceback" not in (tmp_path / "serve.err").read_text()

    # With the server gone, the demo says how to start one.
    code, output, errors = await bridge_cli(data, "demo", "--url", url)
    assert code == 1
    assert "cannot reach the bridge" in errors
    assert "make run" in errors


@pytest.mark.slow
async def test_db_upgrade_creates_the_schema_and_downgrade_goes_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db_url = database_url(data, empty=True)
    code, output, errors = await bridge_cli(tmp_path, "db", "upgrade", "--db", db_url)
    assert code == 0, errors
    assert "newest schema" in output
    expected = (
        "accounts",
        "org_keys",
        "conversations",
        "messages",
        "log_entries",
        "invites",
        "policy_keys",
        "policies",
        "breakglass_requests",
    )
    for table in expected:
        assert query(data, f'SELECT COUNT(*) FROM "{table}"') == [(0,)], table
    assert query(data, "SELECT version_num FROM alembic_version") == [("0007",)]

    code, output, errors = await bridge_cli(tmp_path, "db", "downgrade", "0001", "--db", db_url)
    assert code == 0, errors
    assert "database is at 0001" in output
    assert query(data, "SELECT version_num FROM alembic_version") == [("0001",)]
    code, output, errors = await bridge_cli(tmp_path, "db", "upgrade", "--db", db_url)
    assert code == 0, errors
    assert query(data, "SELECT version_num FROM alembic_version") == [("0007",)]


@pytest.mark.slow
async def test_user_add_then_log_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_url = _db(data)
    password = "een-lang-wachtwoord"
    officer_args = ("--role", "officer", "--region", "Limburg", "--gender", "female")
    add = ("user", "add", "lotte", *officer_args, "--password-stdin", "--db", db_url)

    code, output, errors = await bridge_cli(data, *add, "--org", "avim", stdin=password + "\n")
    assert code == 0, errors
    added = json.loads(output)
    assert (added["username"], added["role"], added["org"]) == ("lotte", "officer", "avim")

    bad = ("user", "add", "piet", "--role", "officer", "--org", "fier", "--password-stdin")
    code, output, errors = await bridge_cli(data, *bad, "--db", db_url, stdin=password + "\n")
    assert code != 0
    assert "officer belongs to avim" in errors

    code, output, errors = await bridge_cli(data, *add, "--org", "avim", stdin=password + "\n")
    assert code != 0
    assert "exists already" in errors
    assert query(data, "SELECT username, role, org, region, gender FROM accounts") == [
        ("lotte", "officer", "avim", "Limburg", "female")
    ]

    bridge = Bridge(data)
    await bridge.start()
    try:
        officer = await OfficerClient.login(bridge.url, "lotte", password)
        assert (officer.session["role"], officer.session["org"]) == ("officer", "avim")
        await officer.aclose()
        with pytest.raises(Refused) as refused:
            await OfficerClient.login(bridge.url, "lotte", password + "x")
        assert refused.value.status == 401
    finally:
        await bridge.stop()


@pytest.mark.slow
async def test_keys_init_org_and_the_served_sealed_key_opens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_url = _db(data)
    passphrase = "een lange geheime zin voor fier"
    init = ("keys", "init-org", "fier", "--passphrase-stdin", "--db", db_url)

    code, output, errors = await bridge_cli(data, *init, stdin=passphrase + "\n")
    assert code == 0, errors
    made = json.loads(output)
    assert made["org"] == "fier"
    assert len(crypto.b64u_decode(made["x25519"])) == 32

    code, output, errors = await bridge_cli(data, *init, stdin="een andere lange zin\n")
    assert code != 0
    assert "exists already" in errors

    bridge = Bridge(data)
    await bridge.start()
    try:
        await bridge.add_user("counsellor", "counsellor", "fier")
        counsellor = await CounsellorClient.login(
            bridge.url, "counsellor", bridge.passwords["counsellor"]
        )
        bridge.clients.append(counsellor)
        assert await counsellor.org_public_key("fier") == made["x25519"]
        sealed = await counsellor.request(
            "GET", "/api/v1/orgs/fier/sealed-key", token=counsellor.token
        )
        private = crypto.open_org_key(sealed, passphrase.encode())
        assert crypto.b64u_encode(bytes(private.public_key)) == made["x25519"]
        with pytest.raises(crypto.CryptoError):
            crypto.open_org_key(sealed, b"een andere lange zin")
    finally:
        await bridge.close_clients()
        await bridge.stop()
