"""Reading a relayed message: verify its signature against a known participant, then open it
with the key this reader holds (PROTOCOL.md, "The envelope").

Only a verified envelope is opened, so a forged or altered message never shows a text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from nacl.public import PrivateKey

from bridge import crypto
from bridge.client.conversation import Conversation, DecryptedMessage
from bridge.client.wire import JSON

__all__ = ["Reader", "decode", "scope_key", "verify"]

# The envelope key name a role opens and the private key it opens it with, for one envelope.
Reader = Callable[[Conversation, JSON], tuple[str, PrivateKey | None]]


def scope_key(
    conv: Conversation, slot: str | None, org_keys: Mapping[str, PrivateKey]
) -> PrivateKey | None:
    """The private scope key for ``slot`` ("care" or an epoch id), opened with the version of
    the org key the server says it is sealed to (``conv.sealed_by``) and cached in
    ``conv.opened``; ``None`` if it was not handed out, that version is not open, or it does
    not open."""
    org_key = org_keys.get(conv.sealed_by.get(slot, "")) if slot else None
    if slot and slot not in conv.opened and slot in conv.sealed and org_key is not None:
        with contextlib.suppress(crypto.CryptoError):
            conv.opened[slot] = crypto.open_scope_key(conv.sealed[slot], org_key)
    return conv.opened.get(slot) if slot else None


def verify(conv: Conversation, envelope: JSON) -> bool:
    """Whether ``envelope`` belongs to ``conv`` and is signed by the device key of a participant
    of ``conv`` with the role the envelope claims."""
    sender = envelope.get("sender") or {}
    signer = conv.participants.get(sender.get("device_id", ""))
    if signer is None or signer.get("role") != sender.get("role"):
        return False
    if envelope.get("conversation_id") != conv.conversation_id:
        return False
    try:
        crypto.verify_envelope(envelope, signer["ed25519"])
    except crypto.CryptoError:
        return False
    return True


def decode(
    conv: Conversation | None,
    conversation_id: str,
    item: JSON,
    reader: Reader,
    org_keys: Mapping[str, PrivateKey],
) -> DecryptedMessage:
    """One relayed message (``{seq, envelope, server_time, shared_keys?}``) as this reader sees
    it: verified only within a known ``conv``, opened only if verified."""
    envelope: JSON = item["envelope"]
    sender = envelope.get("sender") or {}
    verified = conv is not None and verify(conv, envelope)
    plain = None
    if conv is not None and verified:
        plain = _open(conv, envelope, reader, item.get("shared_keys"), org_keys)
    return DecryptedMessage(
        seq=item["seq"],
        sender_role=sender.get("role", ""),
        sender_device_id=sender.get("device_id", ""),
        kind=envelope.get("kind", ""),
        audience=list(envelope.get("audience", [])),
        epoch_id=envelope.get("epoch_id"),
        text=str(plain["text"]) if plain and "text" in plain else None,
        sent_at=str(plain["sent_at"]) if plain and "sent_at" in plain else None,
        server_time=item["server_time"],
        verified=verified,
        conversation_id=conversation_id,
        envelope=envelope,
    )


def _open(
    conv: Conversation,
    envelope: JSON,
    reader: Reader,
    shared_key: str | None,
    org_keys: Mapping[str, PrivateKey],
) -> JSON | None:
    name, private = reader(conv, envelope)
    if private is not None and name in (envelope.get("keys") or {}):
        with contextlib.suppress(crypto.CryptoError):
            return crypto.open_envelope(envelope, name, private)
    if shared_key:  # a content key the victim shared to an investigation epoch
        for slot in conv.sealed:
            key = scope_key(conv, slot, org_keys) if slot != "care" else None
            if key is not None:
                with contextlib.suppress(crypto.CryptoError):
                    content_key = crypto.unseal(shared_key, key)
                    return crypto.open_with_content_key(envelope, content_key)
    return None
