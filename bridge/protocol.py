"""Event names and payload schemas of PROTOCOL.md: validation at the edge.

Every client->server payload is converted strictly (no type coercion, unknown fields refused)
into a frozen ``msgspec.Struct``; anything else raises :class:`bridge.errors.Invalid` or
:class:`bridge.errors.TooLarge`. Past this module the core trusts the shape of its input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from bridge import crypto
from bridge.errors import Invalid, TooLarge

__all__ = [
    "EVENTS",
    "EVENTS_BY_NAME",
    "MAX_ENVELOPE_BYTES",
    "BreakglassAsk",
    "BreakglassRef",
    "BridgePropose",
    "ClientEvent",
    "ConsentGrant",
    "ConversationCreate",
    "ConversationRef",
    "DeviceRegister",
    "DisclosureRecord",
    "Empty",
    "Envelope",
    "HistoryFetch",
    "HistoryShare",
    "InviteRef",
    "MessageSend",
    "Preferences",
    "RequestRef",
    "SessionCreate",
    "SignedEnvelope",
    "decode_body",
    "decode_event",
    "decode_payload",
]

MAX_ENVELOPE_BYTES: Final = 16 * 1024

# b64u of 32 bytes is 43 characters, of 64 bytes 86, of 24 bytes 32, of 80 bytes (a sealed
# 32-byte key: 32 + 48 bytes of crypto_box_seal overhead) 107. Lengths are checked here so that
# a malformed key is `invalid`; whether a key opens or verifies is checked later. Patterns end in
# `\Z`, not `$`, which would also match before a final newline ("id\n").
_B64U = r"^[A-Za-z0-9_-]*\Z"
Key32 = Annotated[str, msgspec.Meta(pattern=_B64U, min_length=43, max_length=43)]
Sig64 = Annotated[str, msgspec.Meta(pattern=_B64U, min_length=86, max_length=86)]
Nonce24 = Annotated[str, msgspec.Meta(pattern=_B64U, min_length=32, max_length=32)]
Sealed32 = Annotated[str, msgspec.Meta(pattern=_B64U, min_length=107, max_length=107)]
Digest = Annotated[str, msgspec.Meta(pattern=_B64U, min_length=43, max_length=43)]
Ciphertext = Annotated[
    str, msgspec.Meta(pattern=_B64U, min_length=22, max_length=MAX_ENVELOPE_BYTES)
]
Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]+\Z", min_length=1, max_length=64)]
Uuid = Annotated[
    str,
    msgspec.Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z"),
]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# Sequence numbers are stored as 64-bit integers: a larger one is no seq (and no database takes it).
MAX_SEQ: Final = 2**63 - 1
SeqAfter = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
Seq = Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)]
Lang = Literal["nl", "en"]
Purpose = Literal["informational", "report"]
Role = Literal["victim", "counsellor", "officer"]
Scope = Literal["care", "investigation"]
BreakglassCategory = Literal["acute_danger", "minor_at_risk", "other_victims"]
Agency = Literal["veilig_thuis", "politie", "jeugdbescherming", "other"]
Basis = Literal["consent", "meldcode", "agreement"]
Shared = Literal["concerns", "identity", "whereabouts", "messages"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class Empty(_Strict):
    pass


class DeviceKeysPayload(_Strict):
    ed25519: Key32
    x25519: Key32


class DeviceRegister(_Strict):
    ed25519: Key32
    x25519: Key32
    sig: Sig64


class ScopePayload(_Strict, omit_defaults=True):
    public: Key32
    sealed_private: Sealed32
    # The org key version sealed to (an addition); without it, the newest is taken.
    key_id: Id | None = None


class ConversationRef(_Strict):
    conversation_id: Id


class RequestRef(_Strict):
    request_id: Id


class InviteRef(_Strict):
    invite_id: Id


class HistoryFetch(_Strict):
    conversation_id: Id
    after_seq: SeqAfter
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100


class Preferences(_Strict, omit_defaults=True):
    officer_gender: Literal["female", "male", "any"] | None = None
    same_officer: bool | None = None
    region: ShortText | None = None


class BridgePropose(_Strict):
    conversation_id: Id
    purpose: Purpose
    preferences: Preferences = msgspec.field(default_factory=Preferences)


class TextRef(_Strict):
    version: ShortText
    lang: Lang
    sha256: Digest


class Choices(_Strict):
    retain_for_case_file: bool
    share_needs_note: bool


class ConsentGrant(_Strict):
    request_id: Id
    text: TextRef
    choices: Choices
    investigation_scope: ScopePayload
    sig: Sig64


class HistoryShareItem(_Strict):
    seq: Seq
    key: Sealed32


class HistoryShare(_Strict):
    conversation_id: Id
    epoch_id: Id
    items: Annotated[list[HistoryShareItem], msgspec.Meta(min_length=1, max_length=500)]
    sig: Sig64


class Sender(_Strict):
    role: Role
    device_id: Id


class Envelope(_Strict):
    """The envelope of PROTOCOL.md; its signature covers the JCS of every field but ``sig``."""

    v: Literal[1]
    conversation_id: Id
    client_msg_id: Uuid
    sender: Sender
    kind: Literal["message", "needs_note"]
    audience: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=2)]
    epoch_id: Id | None
    nonce: Nonce24
    ciphertext: Ciphertext
    keys: dict[str, str]
    sig: Sig64

    @property
    def investigation(self) -> bool:
        return "investigation" in self.audience


class MessageSend(_Strict):
    envelope: Envelope


@dataclass(frozen=True, eq=False)
class SignedEnvelope:
    """An envelope as received, encoded once: its fields as the schema checked them, the object
    as sent (relayed as it is), its canonical form (the JCS the bridge stores, hashes and serves
    back) and that form's SHA-256, which makes a resend recognisable."""

    fields: Envelope
    sent: dict[str, Any]
    canonical: bytes
    digest: str

    @classmethod
    def received(cls, fields: Envelope, sent: dict[str, Any]) -> SignedEnvelope:
        canonical = crypto.jcs_checked(sent)  # the schema checked it: no floats, no big numbers
        return cls(fields, sent, canonical, crypto.b64u_encode(crypto.sha256(canonical)))

    @property
    def signed(self) -> bytes:
        """What the signature covers: the JCS of every field but ``sig`` (PROTOCOL.md).

        JCS sorts the keys, so ``sig`` is the member before ``v``, the last one, and its value
        is b64u (nothing to escape): cutting that member out of the canonical form gives the
        signed form without encoding the envelope again.
        """
        member = b'"sig":"' + self.fields.sig.encode() + b'",'
        cut = self.canonical.rfind(member)
        return self.canonical[:cut] + self.canonical[cut + len(member) :]


class BreakglassAsk(_Strict):
    """A counsellor's break-glass request: the category only, never a reason in the clear."""

    conversation_id: Id
    category: BreakglassCategory


class BreakglassRef(_Strict):
    breakglass_id: Id


class DisclosureRecord(_Strict):
    """An entry of the disclosure register: what kind of information went to which agency, on
    which basis; for the meldcode, the approved break-glass request it rests on. No content."""

    conversation_id: Id
    agency: Agency
    basis: Basis
    shared: Annotated[list[Shared], msgspec.Meta(min_length=1, max_length=4)]
    breakglass_id: Id | None = None


class SessionCreate(_Strict):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class ConversationCreate(_Strict):
    lang: Lang
    device: DeviceKeysPayload
    care_scope: ScopePayload


@dataclass(frozen=True)
class ClientEvent:
    """One client->server event of PROTOCOL.md, "Socket.IO events": its name, its payload's
    schema, who may send it and whether a staff socket must have registered its device first."""

    name: str
    schema: type[_Strict]
    roles: frozenset[str]
    needs_device: bool = True


_STAFF_IN_CHAT = frozenset({"counsellor", "officer"})
_PARTICIPANTS = frozenset({"victim", "counsellor", "officer"})
_VICTIM = frozenset({"victim"})
_COUNSELLOR = frozenset({"counsellor"})
_OFFICER = frozenset({"officer"})
_VICTIM_OR_COUNSELLOR = frozenset({"victim", "counsellor"})
_SUPERVISOR = frozenset({"supervisor"})

# The one list of client events; the Socket.IO edge binds a handler to each. Officers may also
# re-join the conversation of their own epoch after a reconnect (docs/protocol.md).
EVENTS: Final[tuple[ClientEvent, ...]] = (
    ClientEvent("device.register", DeviceRegister, _STAFF_IN_CHAT, needs_device=False),
    ClientEvent("queue.list", Empty, _COUNSELLOR),
    ClientEvent("conversation.join", ConversationRef, _PARTICIPANTS),
    ClientEvent("message.send", MessageSend, _PARTICIPANTS),
    ClientEvent("history.fetch", HistoryFetch, _PARTICIPANTS),
    ClientEvent("bridge.propose", BridgePropose, _COUNSELLOR),
    ClientEvent("consent.grant", ConsentGrant, _VICTIM),
    ClientEvent("consent.decline", RequestRef, _VICTIM),
    ClientEvent("consent.withdraw", ConversationRef, _VICTIM),
    ClientEvent("history.share", HistoryShare, _VICTIM),
    ClientEvent("bridge.pause", ConversationRef, _VICTIM_OR_COUNSELLOR),
    ClientEvent("bridge.resume", ConversationRef, _VICTIM_OR_COUNSELLOR),
    ClientEvent("invite.list", Empty, _OFFICER),
    ClientEvent("invite.accept", InviteRef, _OFFICER),
    ClientEvent("bridge.end", ConversationRef, _STAFF_IN_CHAT),
    ClientEvent("conversation.close", ConversationRef, _VICTIM_OR_COUNSELLOR),
    ClientEvent("breakglass.request", BreakglassAsk, _COUNSELLOR),
    # A supervisor reads no content, so registers no device.
    ClientEvent("breakglass.list", Empty, _SUPERVISOR, needs_device=False),
    ClientEvent("breakglass.approve", BreakglassRef, _SUPERVISOR, needs_device=False),
    ClientEvent("breakglass.refuse", BreakglassRef, _SUPERVISOR, needs_device=False),
    ClientEvent("disclosure.record", DisclosureRecord, _COUNSELLOR),
)
EVENTS_BY_NAME: Final[dict[str, ClientEvent]] = {event.name: event for event in EVENTS}

T = TypeVar("T", bound=_Strict)


def _convert(raw: Any, schema: type[T]) -> T:
    try:
        return msgspec.convert(raw, schema, strict=True)
    except msgspec.ValidationError as exc:
        raise Invalid(str(exc)) from None


def _utf8_size(value: Any) -> int:
    """Bytes of the compact JSON form; ``invalid`` for what has none (a lone surrogate, which
    JSON's ``\\ud800`` escape lets through, nesting too deep to encode, or a binary value that a
    Socket.IO binary attachment put inside the payload)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (UnicodeEncodeError, ValueError, RecursionError, TypeError):
        raise Invalid("the payload is not valid UTF-8 JSON") from None


def _check_size(raw: dict[str, Any], schema: type[_Strict]) -> None:
    """Size first (PROTOCOL.md: ``too_large`` ranks with ``invalid``), on the compact JSON form
    of the envelope; every other payload is only checked to be valid UTF-8."""
    envelope = raw.get("envelope")
    if schema is MessageSend and isinstance(envelope, dict):
        size = _utf8_size(envelope)
        if size > MAX_ENVELOPE_BYTES:
            raise TooLarge(f"envelope is {size} bytes, more than {MAX_ENVELOPE_BYTES}")
    else:
        _utf8_size(raw)


def _check_audience(envelope: Envelope) -> None:
    # PROTOCOL.md "The envelope": the audience is sorted and always holds care; epoch_id is
    # non-null exactly when investigation is in it; a needs_note goes to care + investigation.
    if envelope.audience not in (["care"], ["care", "investigation"]):
        raise Invalid('audience must be ["care"] or ["care", "investigation"]')
    if (envelope.epoch_id is not None) != envelope.investigation:
        raise Invalid("epoch_id must be set exactly when investigation is in the audience")
    if envelope.kind == "needs_note" and not envelope.investigation:
        raise Invalid("a needs_note goes to the care and investigation scopes")
    unknown = set(envelope.keys) - {"victim", "care", "investigation"}
    if unknown:
        raise Invalid(f"unknown key names: {', '.join(sorted(unknown))}")


def decode_event(event: str, args: tuple[Any, ...]) -> _Strict:
    """Validate one client event by its name; exactly one JSON object payload is accepted."""
    known = EVENTS_BY_NAME.get(event)
    if known is None:
        raise Invalid(f"unknown event {event[:64]!r}")
    return decode_payload(known.schema, args)


def decode_payload(schema: type[T], args: tuple[Any, ...]) -> T:
    """Validate the payloads of one event against ``schema``: exactly one JSON object."""
    if len(args) != 1:
        raise Invalid("an event carries exactly one payload")
    raw = args[0]
    if not isinstance(raw, dict):
        raise Invalid("the payload must be a JSON object")
    _check_size(raw, schema)
    payload = _convert(raw, schema)
    if isinstance(payload, MessageSend):
        _check_audience(payload.envelope)
    return payload


def decode_body(raw: bytes, schema: type[T]) -> T:
    """Validate an HTTP JSON body."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise Invalid("the body is not JSON") from None
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    _utf8_size(data)
    return _convert(data, schema)
