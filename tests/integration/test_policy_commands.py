"""``bridge policy``, as an organisation and an admin run it (docs/governance.md): keys made,
registered, listed and revoked; a policy signed by each side and checked in plain words."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from bridge.policy.signed import signing_skey, signing_vkey
from harness import POLICY_KEYS, Bridge, bridge_cli, policy_text, query


async def cli(bridge: Bridge, *args: str) -> tuple[int, str, str]:
    return await bridge_cli(bridge.data_dir, "policy", *args)


async def test_an_organisation_makes_its_key_and_the_admin_registers_it(
    bridge: Bridge, tmp_path: Path
) -> None:
    key_file = tmp_path / "fier.key"
    status, out, err = await cli(bridge, "key", "generate", "--org", "fier", "--out", str(key_file))
    assert status == 0, err
    made = json.loads(out)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("PRIVATE+KEY+fier-werkafspraken+")
    assert "PRIVATE" not in out  # the private key is never printed
    status, _out, err = await cli(
        bridge, "key", "generate", "--org", "fier", "--out", str(key_file)
    )
    assert status == 1 and "exists already" in err

    before = query(bridge.data_dir, "SELECT COUNT(*) FROM log_entries")
    status, out, err = await cli(bridge, "key", "add", "--org", "fier", made["vkey"])
    assert status == 0, err
    assert json.loads(out)["vkey"] == made["vkey"]
    entry = json.loads(
        query(bridge.data_dir, "SELECT entry FROM log_entries WHERE idx = ?", before[0][0])[0][0]
    )
    assert (entry["kind"], entry["org"], entry["vkey"]) == (
        "policy_key.registered",
        "fier",
        made["vkey"],
    )

    status, out, _err = await cli(bridge, "key", "list")
    listed = json.loads(out)
    assert {"org": "fier", "vkey": made["vkey"], "revoked": False} in listed
    assert len(listed) == 3  # the tests' own two, and this one


async def test_a_key_that_is_not_the_organisations_or_twice_is_refused(bridge: Bridge) -> None:
    fier = signing_vkey("fier", POLICY_KEYS["fier"])
    cases = [
        (("key", "add", "--org", "avim", fier), "is named avim-werkafspraken"),
        (("key", "add", "--org", "fier", fier), "registered already"),
        (("key", "add", "--org", "fier", "fier-werkafspraken+12+AA=="), "not a verifier key"),
        (("key", "revoke", "fier-werkafspraken+00000000+AA=="), "no such policy-signing key"),
    ]
    before = query(bridge.data_dir, "SELECT COUNT(*) FROM log_entries")
    for args, reason in cases:
        status, _out, err = await cli(bridge, *args)
        assert status == 1 and reason in err, (args, err)
    assert query(bridge.data_dir, "SELECT COUNT(*) FROM log_entries") == before
    status, _out, _err = await cli(bridge, "key", "revoke", fier)
    assert status == 0
    status, _out, err = await cli(bridge, "key", "revoke", fier)
    assert status == 1 and "revoked already" in err


async def test_check_says_in_plain_words_what_changes_and_whether_it_may_apply(
    bridge: Bridge, tmp_path: Path
) -> None:
    keys = {}
    for org in ("fier", "avim"):
        keys[org] = tmp_path / f"{org}.key"
        # The tests' own registered keys, written as the organisations keep them.
        keys[org].write_text(signing_skey(org, POLICY_KEYS[org]) + "\n")
    draft = tmp_path / "werkafspraken-2.toml"
    draft.write_text(policy_text(serial=2, prompt_expiry_seconds=600, victim_may_share=True))

    status, out, _err = await cli(bridge, "check", str(draft))
    assert status == 1
    lines = out.splitlines()
    assert "Ondertekend door Fier: nee" in lines and "Ondertekend door AVIM: nee" in lines
    assert (
        "- Tijd die het slachtoffer heeft om op de toestemmingsvraag te antwoorden: "
        "was 900 seconden, wordt 600 seconden." in lines
    )
    assert "- Het slachtoffer mag eerdere berichten met de agent delen: was nee, wordt ja." in lines
    assert lines[-1].startswith("Kan worden toegepast: nee.")

    signed_by_fier = tmp_path / "signed.toml"
    status, out, err = await cli(
        bridge, "sign", str(draft), "--key", str(keys["fier"]), "--out", str(signed_by_fier)
    )
    assert status == 0, err
    assert draft.read_text().count("\u2014") == 0  # --out leaves the draft as it was
    status, out, _err = await cli(bridge, "check", str(signed_by_fier), "--lang", "en")
    assert status == 1
    assert f"Signed by Fier: yes, with key {signing_vkey('fier', POLICY_KEYS['fier'])}" in out
    assert "Signed by AVIM: no" in out
    assert "Can be applied: no. the signature of AVIM is missing" in out

    status, _out, err = await cli(bridge, "sign", str(signed_by_fier), "--key", str(keys["avim"]))
    assert status == 0, err
    status, out, _err = await cli(bridge, "check", str(signed_by_fier), "--lang", "en")
    assert status == 0, out
    assert out.splitlines()[-1] == "Can be applied: yes."
    assert query(bridge.data_dir, "SELECT MAX(serial) FROM policies") == [
        (1,)
    ]  # check applies nothing


async def test_sign_refuses_a_broken_policy_or_key_and_leaves_the_file(
    bridge: Bridge, tmp_path: Path
) -> None:
    draft = tmp_path / "draft.toml"
    draft.write_text(policy_text(serial=2).replace("serial = 2\n", ""))
    key = tmp_path / "fier.key"
    status, _out, err = await cli(bridge, "key", "generate", "--org", "fier", "--out", str(key))
    assert status == 0, err
    status, _out, err = await cli(bridge, "sign", str(draft), "--key", str(key))
    assert status == 1 and "serial must be a positive integer" in err
    assert "\u2014" not in draft.read_text()
    not_a_key = tmp_path / "not.key"
    not_a_key.write_text("hello\n")
    draft.write_text(policy_text(serial=2))
    status, _out, err = await cli(bridge, "sign", str(draft), "--key", str(not_a_key))
    assert status == 1 and "not a policy-signing private key" in err
    assert draft.read_text() == policy_text(serial=2)
