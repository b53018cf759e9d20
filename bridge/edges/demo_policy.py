"""Werkafspraken where one installation plays both organisations: the demo (``serve --demo``)
and the tests and benchmarks that set up a bridge of their own.

A real installation never does this: Fier and AVIM each keep their own policy-signing key and
sign with ``bridge policy sign`` (docs/governance.md). Here both keys are at hand, so they are
registered if they are not yet and the text is signed with both; the signed text is returned, or
put in force.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from nacl.signing import SigningKey

from bridge.domain.policies import Werkafspraken
from bridge.domain.roles import CLI_ADMIN
from bridge.errors import Conflict
from bridge.policy.signed import SIGNING_ORGS, sign_policy, signing_vkey

__all__ = ["sign_as_both"]


async def sign_as_both(
    werkafspraken: Werkafspraken,
    keys: Mapping[str, SigningKey],
    text: str,
    *,
    apply: bool,
) -> str:
    """``text`` signed with both organisations' ``keys`` (registered first where they are not);
    with ``apply``, put in force too unless it is in force already."""
    registered = await werkafspraken.keys(with_revoked=True)
    for org in SIGNING_ORGS:
        vkey = signing_vkey(org, keys[org])
        if vkey not in registered.get(org, []):
            await werkafspraken.register_key(org, vkey, CLI_ADMIN)
        text = sign_policy(text, org, keys[org])
    if apply:
        with contextlib.suppress(Conflict):  # in force already, or a newer one is
            await werkafspraken.apply(text, CLI_ADMIN)
    return text
