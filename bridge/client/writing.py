"""Writing: the audience of a message, envelopes sealed to their readers and signed, the signed
consent grant and history share (PROTOCOL.md, "The envelope", "Consent", "History share").

Pure functions over a :class:`~bridge.client.conversation.Conversation` and the sender's keys:
nothing here sends, so a caller can build an envelope and send it (or not) as it likes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

from bridge import crypto
from bridge.client.conversation import Conversation
from bridge.client.wire import JSON

__all__ = [
    "BOTH_SCOPES",
    "audience_for",
    "current_epoch",
    "grant",
    "sealed_to_known",
    "share",
    "signed_envelope",
]

BOTH_SCOPES: Final = ("care", "investigation")


def audience_for(conv: Conversation, care_only: bool, kind: str) -> list[str]:
    """Care, plus investigation while the bridge is ``joined`` (unless ``care_only``); a
    ``needs_note`` always goes to both."""
    joined = conv.bridge is not None and conv.bridge.get("state") == "joined"
    if kind == "needs_note" or (joined and not care_only):
        return list(BOTH_SCOPES)
    return ["care"]


def current_epoch(conv: Conversation, audience: list[str]) -> str | None:
    """The epoch id an envelope for ``audience`` names: the known epoch if investigation reads
    it, else none."""
    if "investigation" in audience and conv.epoch is not None:
        return str(conv.epoch["epoch_id"])
    return None


def sealed_to_known(conv: Conversation, audience: list[str]) -> dict[str, str]:
    """The public keys to seal the content key to: the victim's device and each scope of
    ``audience``. Raises ``ValueError`` if one is not known."""
    known = {
        "victim": (conv.victim_device or {}).get("x25519"),
        "care": conv.care_public,
        "investigation": (conv.epoch or {}).get("public"),
    }
    recipients = {}
    for name in ("victim", *audience):
        if known.get(name) is None:
            raise ValueError(f"no public key known for {name!r}")
        recipients[name] = str(known[name])
    return recipients


def signed_envelope(
    text: str,
    *,
    conversation_id: str,
    sender_role: str,
    device_id: str,
    keys: crypto.DeviceKeys,
    audience: list[str],
    kind: str,
    epoch_id: str | None,
    recipients: dict[str, str],
    client_msg_id: str | None,
) -> JSON:
    """A signed envelope of ``text`` (sent now, by this clock), its content key sealed to each
    of ``recipients``; a fresh ``client_msg_id`` unless one is given."""
    return crypto.build_envelope(
        conversation_id=conversation_id,
        client_msg_id=client_msg_id or str(uuid.uuid4()),
        sender_role=sender_role,
        device_id=device_id,
        kind=kind,
        audience=audience,
        epoch_id=epoch_id,
        plaintext={"text": text, "sent_at": _now()},
        recipients=recipients,
        signing_key=keys.signing,
    )


def grant(
    prompt: JSON, keys: crypto.DeviceKeys, avim: JSON, choices: dict[str, bool]
) -> tuple[JSON, crypto.ScopeKey]:
    """The ``consent.grant`` payload for ``prompt``: its text quoted, a new investigation scope
    key sealed to AVIM's newest org key ``avim`` (``{key_id, x25519}``), all signed with the
    victim's device key. Returns the payload and the scope key (the new epoch's)."""
    text = {k: prompt["text"][k] for k in ("version", "lang", "sha256")}
    scope = crypto.ScopeKey.generate()
    payload: JSON = {
        "request_id": prompt["request_id"],
        "text": text,
        "choices": choices,
        "investigation_scope": scope.as_payload(avim["x25519"], avim["key_id"]),
    }
    payload["sig"] = keys.sign(
        crypto.signed_grant(
            request_id=prompt["request_id"],
            text=text,
            choices=choices,
            investigation_public=scope.public,
        )
    )
    return payload, scope


def share(conv: Conversation, seqs: list[int], epoch: JSON, keys: crypto.DeviceKeys) -> JSON:
    """The ``history.share`` payload signed with the victim's device key: the content keys of
    messages ``seqs`` (all in ``conv.messages``), opened with that device's key and sealed to
    the investigation ``epoch`` (``{epoch_id, public}``)."""
    items = []
    for seq in seqs:
        content_key = crypto.envelope_content_key(conv.messages[seq].envelope, "victim", keys.box)
        items.append({"seq": seq, "key": crypto.seal(content_key, epoch["public"])})
    payload: JSON = {
        "conversation_id": conv.conversation_id,
        "epoch_id": epoch["epoch_id"],
        "items": items,
    }
    payload["sig"] = keys.sign(payload)
    return payload


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
