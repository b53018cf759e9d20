"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 07:25:53.460721
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("org", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_accounts_username")),
    )
    op.create_table(
        "log_entries",
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=True),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.String(length=43), nullable=False),
        sa.Column("chain_hash", sa.String(length=43), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_log_entries")),
    )
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_log_entries_conversation", ["conversation_id", "idx"], unique=False
        )

    op.create_table(
        "org_keys",
        sa.Column("org", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("x25519", sa.String(length=43), nullable=False),
        sa.Column("sealed", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("org", name=op.f("pk_org_keys")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.Column("ed25519", sa.String(length=43), nullable=False),
        sa.Column("x25519", sa.String(length=43), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_devices_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("ed25519", name=op.f("uq_devices_ed25519")),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("victim_device_id", sa.String(length=40), nullable=False),
        sa.Column("care_public", sa.String(length=43), nullable=False),
        sa.Column("care_sealed_private", sa.String(length=107), nullable=True),
        sa.Column("counsellor_account_id", sa.String(length=36), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["counsellor_account_id"],
            ["accounts.id"],
            name=op.f("fk_conversations_counsellor_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["victim_device_id"],
            ["devices.id"],
            name=op.f("fk_conversations_victim_device_id_devices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversations_state"), ["state"], unique=False)

    op.create_table(
        "bridge_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("proposed_by", sa.String(length=36), nullable=False),
        sa.Column("prompt_lang", sa.String(length=8), nullable=False),
        sa.Column("prompt_expires_at", sa.DateTime(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=True),
        sa.Column("epoch_id", sa.String(length=36), nullable=True),
        sa.Column("officer_account_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_bridge_requests_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["officer_account_id"],
            ["accounts.id"],
            name=op.f("fk_bridge_requests_officer_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"], ["accounts.id"], name=op.f("fk_bridge_requests_proposed_by_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bridge_requests")),
    )
    with op.batch_alter_table("bridge_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bridge_requests_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_bridge_requests_state"), ["state"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("client_msg_id", sa.String(length=36), nullable=False),
        sa.Column("sender_device_id", sa.String(length=40), nullable=False),
        sa.Column("sender_role", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("investigation", sa.Boolean(), nullable=False),
        sa.Column("epoch_id", sa.String(length=36), nullable=True),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("envelope_sha256", sa.String(length=43), nullable=False),
        sa.Column("server_time", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["sender_device_id"], ["devices.id"], name=op.f("fk_messages_sender_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("client_msg_id", name=op.f("uq_messages_client_msg_id")),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    )
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.Column("conversation_id", sa.String(length=36), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_tokens_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_tokens_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_tokens")),
    )
    op.create_table(
        "epochs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("public", sa.String(length=43), nullable=False),
        sa.Column("sealed_private", sa.String(length=107), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_epochs_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["bridge_requests.id"],
            name=op.f("fk_epochs_request_id_bridge_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epochs")),
    )
    with op.batch_alter_table("epochs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_epochs_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "invites",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("accepted_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["accepted_by"], ["accounts.id"], name=op.f("fk_invites_accepted_by_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_invites_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["bridge_requests.id"],
            name=op.f("fk_invites_request_id_bridge_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
    )
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invites_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invites_state"), ["state"], unique=False)

    op.create_table(
        "participants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("epoch_id", sa.String(length=36), nullable=True),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_participants_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_participants_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_participants_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["epoch_id"], ["epochs.id"], name=op.f("fk_participants_epoch_id_epochs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participants")),
    )
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_participants_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "shared_keys",
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("epoch_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=107), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_shared_keys_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["epoch_id"], ["epochs.id"], name=op.f("fk_shared_keys_epoch_id_epochs")
        ),
        sa.PrimaryKeyConstraint("conversation_id", "seq", "epoch_id", name=op.f("pk_shared_keys")),
    )


def downgrade() -> None:
    op.drop_table("shared_keys")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participants_conversation_id"))

    op.drop_table("participants")
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invites_state"))
        batch_op.drop_index(batch_op.f("ix_invites_request_id"))

    op.drop_table("invites")
    with op.batch_alter_table("epochs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_epochs_conversation_id"))

    op.drop_table("epochs")
    op.drop_table("tokens")
    op.drop_table("messages")
    with op.batch_alter_table("bridge_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bridge_requests_state"))
        batch_op.drop_index(batch_op.f("ix_bridge_requests_conversation_id"))

    op.drop_table("bridge_requests")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_state"))

    op.drop_table("conversations")
    op.drop_table("devices")
    op.drop_table("org_keys")
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_log_entries_conversation")

    op.drop_table("log_entries")
    op.drop_table("accounts")
