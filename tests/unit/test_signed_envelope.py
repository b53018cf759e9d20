"""An envelope encoded once (bridge/protocol.py, ``SignedEnvelope``): the form its signature
covers, cut from its canonical form, is exactly the JCS of every field but ``sig``, and its
digest is the SHA-256 of that canonical form, against the known answers in
tests/vectors/crypto.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bridge import crypto
from bridge.protocol import Envelope, SignedEnvelope

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "crypto.json").read_text(encoding="utf-8")
)
VECTOR = VECTORS["envelope"]
SENDER_KEY = VECTORS["keys"][VECTOR["signed_by"]]["ed25519"]


def _received(sent: dict[str, Any]) -> SignedEnvelope:
    return SignedEnvelope.received(msgspec.convert(sent, Envelope, strict=True), sent)


def test_the_signed_form_is_the_vectors_jcs_without_sig() -> None:
    envelope = _received(VECTOR["envelope"])
    assert envelope.signed.decode() == VECTOR["jcs_without_sig"]
    crypto.verify_signed(envelope.signed, envelope.fields.sig, SENDER_KEY)


def test_the_canonical_form_and_digest_are_of_the_whole_envelope() -> None:
    # Sent with its keys in another order, and sig first: the canonical form does not care.
    sent = dict(sorted(VECTOR["envelope"].items(), key=lambda item: item[0] != "sig"))
    envelope = _received(sent)
    assert envelope.canonical == crypto.jcs(VECTOR["envelope"])
    assert envelope.digest == crypto.b64u_encode(crypto.sha256(envelope.canonical))
    assert envelope.sent is sent  # relayed as it came


@pytest.mark.parametrize(
    "change",
    [
        {"conversation_id": "c-ü-\u2028"},
        {"epoch_id": None, "audience": ["care"]},
        {"keys": {"victim": "k", "care": '"sig":"x",'}},
    ],
    ids=["non-ascii", "no-epoch", "sig-lookalike-inside"],
)
def test_the_signed_form_is_jcs_without_sig_for_any_fields(change: dict[str, Any]) -> None:
    sent = {**VECTOR["envelope"], **change}
    envelope = SignedEnvelope(
        msgspec.convert(VECTOR["envelope"], Envelope, strict=True),
        sent,
        crypto.jcs(sent),
        "",
    )
    assert envelope.signed == crypto.jcs({k: v for k, v in sent.items() if k != "sig"})
