"""Werkafspraken signed by both organisations (DESIGN.md, "Roles and scopes").

A signed policy is a C2SP signed note: the policy's TOML text as the body, a blank line, and one
Ed25519 signature line by a policy-signing key of Fier and one of AVIM. The text is put in force
only with a valid signature of each organisation, by a key registered for it; lines by other keys
are ignored, as the note format requires. A body's SHA-256 is the policy's: the same agreed text
has the same hash however many times it was signed.

Errors are :class:`PolicyError` in plain words: the admin who runs ``bridge policy apply`` reads
them, and so does the log of a node that refuses a policy.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nacl.signing import SigningKey

from bridge.log.signed_note import (
    ALG_ED25519,
    VerificationError,
    add_signature,
    key_hash,
    parse_vkey_public,
    signers,
    vkey,
)
from bridge.policy.loader import Policy, PolicyError, parse_policy

__all__ = [
    "ORG_NAMES",
    "SIGNING_ORGS",
    "SignedPolicy",
    "check_vkey",
    "key_name",
    "open_signed",
    "policy_of",
    "read_skey",
    "sign_policy",
    "signed_by",
    "signing_skey",
    "signing_vkey",
]

SIGNING_ORGS = ("fier", "avim")
ORG_NAMES = {"fier": "Fier", "avim": "AVIM"}


def key_name(org: str) -> str:
    """The name a policy-signing key of ``org`` carries in its signature lines."""
    return f"{org}-werkafspraken"


def signing_vkey(org: str, key: SigningKey) -> str:
    """The verifier key an admin registers for ``key`` (C2SP signed-note ``vkey``)."""
    return vkey(key_name(org), bytes(key.verify_key))


def signing_skey(org: str, key: SigningKey) -> str:
    """The private key's text, as Go's ``note.GenerateKey`` writes one:
    ``PRIVATE+KEY+<name>+<key hash hex>+<base64(0x01 || seed)>``. Kept by the organisation,
    never given to the bridge."""
    name = key_name(org)
    hashed = key_hash(name, bytes(key.verify_key)).hex()
    encoded = base64.b64encode(bytes([ALG_ED25519]) + bytes(key)).decode()
    return f"PRIVATE+KEY+{name}+{hashed}+{encoded}"


def read_skey(text: str) -> tuple[str, SigningKey]:
    """The organisation and key of a private key written by :func:`signing_skey`."""
    parts = text.strip().split("+", 4)  # the key data (base64) may hold "+" itself
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise PolicyError("not a policy-signing private key (PRIVATE+KEY+...)")
    name, hashed, encoded = parts[2:]
    orgs = [org for org in SIGNING_ORGS if key_name(org) == name]
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raw = b""
    if not orgs or len(raw) != 33 or raw[0] != ALG_ED25519:
        raise PolicyError("not a policy-signing private key of Fier or AVIM")
    key = SigningKey(raw[1:])
    if key_hash(name, bytes(key.verify_key)).hex() != hashed:
        raise PolicyError("the private key's hash does not match its key")
    return orgs[0], key


def check_vkey(org: str, text: str) -> str:
    """``text`` if it is a policy-signing verifier key of ``org``; PolicyError if not."""
    if org not in SIGNING_ORGS:
        raise PolicyError(f"policies are signed by {' and '.join(SIGNING_ORGS)}, not {org!r}")
    try:
        name, _public = parse_vkey_public(text)
    except VerificationError as exc:
        raise PolicyError(f"not a verifier key: {exc}") from None
    if name != key_name(org):
        raise PolicyError(f"a policy-signing key of {org} is named {key_name(org)}, not {name}")
    return text


@dataclass(frozen=True)
class SignedPolicy:
    """A policy with a valid signature of each organisation: the note as signed, what it says,
    and, per organisation, the registered verifier key that signed it."""

    note: str
    policy: Policy
    signed_by: Mapping[str, str]


def sign_policy(text: str, org: str, key: SigningKey) -> str:
    """``text`` (a policy, or a policy signed already) with ``org``'s signature added; the
    policy must read well before anyone signs it."""
    if org not in SIGNING_ORGS:
        raise PolicyError(f"policies are signed by {' and '.join(SIGNING_ORGS)}, not {org!r}")
    policy_of(text)
    try:
        return add_signature(text, key_name(org), key)
    except ValueError as exc:
        raise PolicyError(f"cannot be signed: {exc}") from None


def signed_by(note: str, keys: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """org -> the one of its ``keys`` whose valid signature ``note`` carries (empty for a text
    not signed at all); PolicyError if a line by one of ``keys`` does not verify."""
    if _body(note) is note:
        return {}
    found: dict[str, str] = {}
    for org in SIGNING_ORGS:
        # Only a key named for the organisation speaks for it, wherever it was registered.
        own = [text for text in keys.get(org, ()) if text.split("+", 1)[0] == key_name(org)]
        try:
            _, valid = signers(note, own)
        except VerificationError as exc:
            raise PolicyError(f"the signatures do not hold: {exc}") from None
        if valid:
            found[org] = valid[0]
    return found


def open_signed(note: str, keys: Mapping[str, Sequence[str]]) -> SignedPolicy:
    """The policy in ``note`` if it carries a valid signature of each organisation by one of its
    ``keys`` (org -> verifier keys); PolicyError saying what is missing or wrong if not."""
    if _body(note) is note:
        raise PolicyError("not signed: Fier and AVIM must both sign it (bridge policy sign)")
    found = signed_by(note, keys)
    missing = [ORG_NAMES[org] for org in SIGNING_ORGS if org not in found]
    if len(missing) == len(SIGNING_ORGS):
        raise PolicyError("signed neither by Fier nor by AVIM with a key registered for them")
    if missing:
        raise PolicyError(f"the signature of {missing[0]} is missing (or by a key not registered)")
    return SignedPolicy(note, policy_of(note), found)


def _body(text: str) -> str:
    """The policy text of ``text``, whether it is signed already or not."""
    try:
        body, _ = signers(text, [])
    except VerificationError:
        return text
    return body


def policy_of(text: str) -> Policy:
    """What a policy says, signed or not, its signatures unchecked: to show what it changes."""
    return parse_policy(_body(text).encode("utf-8"))
