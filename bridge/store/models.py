"""SQLAlchemy 2 models of everything the bridge keeps.

Nothing here holds content in the clear or a key that opens it: messages are envelopes, scope
keys are sealed to an org key, org keys are sealed under the org passphrase, tokens are stored
as their SHA-256 only. No column holds a victim's address, user agent or other identifying data.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Account",
    "Base",
    "BreakglassRequest",
    "BridgeRequest",
    "Conversation",
    "Device",
    "Epoch",
    "Invite",
    "LogEntry",
    "LogState",
    "Message",
    "OrgKey",
    "Participant",
    "PolicyKey",
    "PolicyVersion",
    "SharedKey",
    "StoredCheckpoint",
    "Token",
]

# Alembic's naming convention keeps constraint names identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite itself keeps no time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


Time = UTCDateTime()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    org: Mapped[str] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(64))
    gender: Mapped[str | None] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Time)


class Token(Base):
    """A bearer token, kept as its SHA-256: a stolen database yields no usable token."""

    __tablename__ = "tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id"))
    expires_at: Mapped[datetime] = mapped_column(Time)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    ed25519: Mapped[str] = mapped_column(String(43), unique=True)
    x25519: Mapped[str] = mapped_column(String(43))
    created_at: Mapped[datetime] = mapped_column(Time)


class OrgKey(Base):
    """One version of an org's key (``fier-1``, ``fier-2``, ...): the newest is the one to seal
    to; older ones stay, as scope keys sealed to them must still open."""

    __tablename__ = "org_keys"
    __table_args__ = (UniqueConstraint("org", "version", name="uq_org_keys_org_version"),)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    x25519: Mapped[str] = mapped_column(String(43))
    sealed: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Time)


class BreakglassRequest(Base):
    """A counsellor's break-glass request under the meldcode, and its decision by a second
    person. No reason in the clear: only the category (DESIGN.md, "Consent")."""

    __tablename__ = "breakglass_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(Time)
    decided_at: Mapped[datetime | None] = mapped_column(Time)


class PolicyKey(Base):
    """An organisation's policy-signing key (its C2SP verifier key), registered by an admin. A
    revoked key signs no new policy; what it signed before stays as it was put in force."""

    __tablename__ = "policy_keys"
    vkey: Mapped[str] = mapped_column(String(160), primary_key=True)
    org: Mapped[str] = mapped_column(String(16))
    registered_at: Mapped[datetime] = mapped_column(Time)
    revoked_at: Mapped[datetime | None] = mapped_column(Time)


class PolicyVersion(Base):
    """A signed policy put in force; the one with the highest serial is the one in force."""

    __tablename__ = "policies"
    serial: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(43))
    note: Mapped[str] = mapped_column(Text)
    applied_at: Mapped[datetime] = mapped_column(Time)


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lang: Mapped[str] = mapped_column(String(8))
    # waiting (no counsellor yet), open, closed
    state: Mapped[str] = mapped_column(String(16), index=True)
    victim_device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    care_public: Mapped[str] = mapped_column(String(43))
    care_sealed_private: Mapped[str | None] = mapped_column(String(107))
    # The fier key version the care scope key is sealed to (clients open it with that one).
    care_key_id: Mapped[str | None] = mapped_column(String(64))
    counsellor_account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Moved on by the database (migration 0005's triggers) with every change to the
    # conversation's state, counsellor, bridge requests or participants.
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Time)
    closed_at: Mapped[datetime | None] = mapped_column(Time)


class Participant(Base):
    """A device's membership of a conversation; an officer's is bound to one consent epoch."""

    __tablename__ = "participants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    role: Mapped[str] = mapped_column(String(16))
    epoch_id: Mapped[str | None] = mapped_column(ForeignKey("epochs.id"))
    joined_at: Mapped[datetime] = mapped_column(Time)
    ended_at: Mapped[datetime | None] = mapped_column(Time)
    end_reason: Mapped[str | None] = mapped_column(String(32))


class BridgeRequest(Base):
    """One proposal of a driegesprek and its consent: the state machine of bridge/consent."""

    __tablename__ = "bridge_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    preferences: Mapped[dict[str, object]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(32))
    proposed_by: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    prompt_lang: Mapped[str] = mapped_column(String(8))
    prompt_expires_at: Mapped[datetime] = mapped_column(Time)
    choices: Mapped[dict[str, object] | None] = mapped_column(JSON)
    epoch_id: Mapped[str | None] = mapped_column(String(36))
    officer_account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(Time)
    updated_at: Mapped[datetime] = mapped_column(Time)


class Epoch(Base):
    """A consent epoch: the investigation scope key the victim minted when granting."""

    __tablename__ = "epochs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("bridge_requests.id"))
    public: Mapped[str] = mapped_column(String(43))
    # Deleting the sealed private half shreds the epoch's investigation scope (retention).
    sealed_private: Mapped[str | None] = mapped_column(String(107))
    key_id: Mapped[str | None] = mapped_column(String(64))  # the avim key version it is sealed to
    created_at: Mapped[datetime] = mapped_column(Time)
    ended_at: Mapped[datetime | None] = mapped_column(Time)


class Invite(Base):
    __tablename__ = "invites"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("bridge_requests.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    purpose: Mapped[str] = mapped_column(String(16))
    preferences: Mapped[dict[str, object]] = mapped_column(JSON)
    # pending, accepted, expired, cancelled
    state: Mapped[str] = mapped_column(String(16), index=True)
    expires_at: Mapped[datetime] = mapped_column(Time)
    accepted_by: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(Time)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    seq: Mapped[int] = mapped_column(Integer)
    client_msg_id: Mapped[str] = mapped_column(String(36), unique=True)
    sender_device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    sender_role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    investigation: Mapped[bool] = mapped_column(Boolean)
    epoch_id: Mapped[str | None] = mapped_column(String(36))
    envelope: Mapped[str] = mapped_column(Text)
    envelope_sha256: Mapped[str] = mapped_column(String(43))
    server_time: Mapped[datetime] = mapped_column(Time)


class SharedKey(Base):
    """A content key the victim re-sealed to an epoch's investigation scope (history.share)."""

    __tablename__ = "shared_keys"
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch_id: Mapped[str] = mapped_column(ForeignKey("epochs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(107))


class LogEntry(Base):
    """An entry of the append-only Merkle log: its canonical JSON and leaf hash, never content."""

    __tablename__ = "log_entries"
    __table_args__ = (Index("ix_log_entries_conversation", "conversation_id", "idx"),)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(36))
    entry: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[str] = mapped_column(String(43))


class LogState(Base):
    """The log's tree head, kept incrementally: its size and the roots of the perfect subtrees
    that make it up (RFC 9162 compact range), the latest signed checkpoint, and the id of the log
    key that signs from now on (None before the first checkpoint). One row."""

    __tablename__ = "log_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)
    frontier: Mapped[list[str]] = mapped_column(JSON)
    checkpoint_size: Mapped[int | None] = mapped_column(Integer)
    checkpoint_root: Mapped[str | None] = mapped_column(String(43))
    key_id: Mapped[str | None] = mapped_column(String(64))


class StoredCheckpoint(Base):
    """A signed checkpoint ``{size, root, time, key_id, sig}`` of the log."""

    __tablename__ = "checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(Integer, index=True)
    root: Mapped[str] = mapped_column(String(43))
    time: Mapped[str] = mapped_column(String(20))
    key_id: Mapped[str] = mapped_column(String(64))
    sig: Mapped[str] = mapped_column(String(86))
