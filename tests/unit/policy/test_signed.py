"""Werkafspraken signed by both organisations (DESIGN.md, "Roles and scopes"): a policy is a C2SP
signed note whose body is the policy text; it opens only with a valid signature of Fier and one
of AVIM, each by a key registered for that organisation."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from bridge.log.signed_note import add_signature
from bridge.policy.loader import PolicyError, default_text, parse_policy
from bridge.policy.signed import (
    check_vkey,
    open_signed,
    policy_of,
    read_skey,
    sign_policy,
    signed_by,
    signing_skey,
    signing_vkey,
)

FIER, AVIM = SigningKey(b"f" * 32), SigningKey(b"a" * 32)
KEYS = {"fier": [signing_vkey("fier", FIER)], "avim": [signing_vkey("avim", AVIM)]}
TEXT = default_text()


def both(text: str = TEXT) -> str:
    return sign_policy(sign_policy(text, "fier", FIER), "avim", AVIM)


def test_a_policy_signed_by_both_opens_with_its_hash_and_signers() -> None:
    signed = open_signed(both(), KEYS)
    assert signed.policy == parse_policy(TEXT.encode())
    assert signed.policy.sha256 == parse_policy(TEXT.encode()).sha256  # the body's hash
    assert dict(signed.signed_by) == {"fier": KEYS["fier"][0], "avim": KEYS["avim"][0]}
    assert signed.note.startswith(TEXT)


def test_the_order_of_signing_does_not_matter() -> None:
    other_order = sign_policy(sign_policy(TEXT, "avim", AVIM), "fier", FIER)
    assert open_signed(other_order, KEYS).policy == open_signed(both(), KEYS).policy


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (TEXT, "not signed"),
        (sign_policy(TEXT, "fier", FIER), "signature of AVIM is missing"),
        (sign_policy(TEXT, "avim", AVIM), "signature of Fier is missing"),
    ],
    ids=["unsigned", "fier-only", "avim-only"],
)
def test_a_policy_without_both_signatures_is_refused(note: str, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason):
        open_signed(note, KEYS)


def test_signatures_by_keys_not_registered_count_for_nothing() -> None:
    with pytest.raises(PolicyError, match="signed neither by Fier nor by AVIM"):
        open_signed(both(), {"fier": [signing_vkey("fier", SigningKey(b"x" * 32))]})
    # Fier's key registered for AVIM is not AVIM's signature.
    with pytest.raises(PolicyError, match="signature of AVIM is missing"):
        open_signed(both(), {"fier": KEYS["fier"], "avim": KEYS["fier"]})


def test_a_policy_changed_after_signing_is_refused() -> None:
    tampered = both().replace("prompt_expiry_seconds = 900", "prompt_expiry_seconds = 901")
    with pytest.raises(PolicyError, match="does not verify"):
        open_signed(tampered, KEYS)


def test_a_signature_line_swapped_for_another_bodys_is_refused() -> None:
    other = both(TEXT.replace("care_days = 365", "care_days = 30"))
    body, lines = both().split("\n\n—", 1)[0], other.rsplit("\n\n", 1)[1]
    with pytest.raises(PolicyError, match="does not verify"):
        open_signed(body + "\n\n" + lines, KEYS)


def test_a_malformed_policy_cannot_be_signed_or_opened() -> None:
    broken = TEXT.replace("serial = 1\n", "")
    with pytest.raises(PolicyError, match="serial"):
        sign_policy(broken, "fier", FIER)
    # Signed anyway (by hand): both signatures hold, the text still does not.
    note = add_signature(
        add_signature(broken, "fier-werkafspraken", FIER), "avim-werkafspraken", AVIM
    )
    with pytest.raises(PolicyError, match="serial"):
        open_signed(note, KEYS)


def test_signing_again_replaces_the_organisations_own_line() -> None:
    twice = sign_policy(both(), "fier", FIER)
    assert twice.count("— fier-werkafspraken ") == 1
    assert open_signed(twice, KEYS).policy == open_signed(both(), KEYS).policy


def test_a_text_with_a_tab_cannot_be_signed() -> None:
    with pytest.raises(PolicyError, match="cannot be signed"):
        sign_policy(TEXT.replace("serial = 1", "serial =\t1"), "fier", FIER)


def test_signed_by_names_each_valid_signer_and_nothing_for_plain_text() -> None:
    assert signed_by(TEXT, KEYS) == {}
    assert signed_by(sign_policy(TEXT, "avim", AVIM), KEYS) == {"avim": KEYS["avim"][0]}
    assert policy_of(both()) == parse_policy(TEXT.encode())


@pytest.mark.parametrize("seed", [bytes(32), b"a" * 32, bytes(range(32)), b"\xfb" * 32])
def test_private_key_text_round_trips_and_names_its_organisation(seed: bytes) -> None:
    text = signing_skey("avim", SigningKey(seed))
    assert text.startswith("PRIVATE+KEY+avim-werkafspraken+")
    org, key = read_skey(text + "\n")
    assert org == "avim" and bytes(key) == seed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "PRIVATE+KEY+fier-werkafspraken+00000000",
        signing_skey("fier", FIER).replace("fier-werkafspraken", "other-werkafspraken"),
        signing_skey("fier", FIER).replace("+A", "+B", 1),
        signing_skey("fier", FIER)[:-4] + "!!!!",
        signing_vkey("fier", FIER),
    ],
    ids=["empty", "short", "other-org", "wrong-type", "not-base64", "public-key"],
)
def test_a_malformed_private_key_is_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        read_skey(text)


def test_a_private_key_whose_hash_does_not_match_is_refused() -> None:
    name_hash = signing_skey("fier", FIER).split("+")[3]
    forged = signing_skey("fier", FIER).replace(name_hash, "00000000")
    with pytest.raises(PolicyError, match="hash does not match"):
        read_skey(forged)


def test_a_verifier_key_must_be_the_organisations_and_well_formed() -> None:
    assert check_vkey("fier", KEYS["fier"][0]) == KEYS["fier"][0]
    with pytest.raises(PolicyError, match="named avim-werkafspraken"):
        check_vkey("avim", KEYS["fier"][0])
    with pytest.raises(PolicyError, match="not a verifier key"):
        check_vkey("fier", "fier-werkafspraken+1234")
    with pytest.raises(PolicyError, match="not 'audit'"):
        check_vkey("audit", KEYS["fier"][0])
