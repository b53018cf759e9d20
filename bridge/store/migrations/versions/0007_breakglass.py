"""Break-glass requests under the meldcode: the request (conversation, category, who asked) and
its decision by a second person.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breakglass_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=36), nullable=False),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_breakglass_requests_conversation_id_conversations",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["accounts.id"], name="fk_breakglass_requests_requested_by_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["accounts.id"], name="fk_breakglass_requests_decided_by_accounts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_breakglass_requests"),
    )
    op.create_index(
        "ix_breakglass_requests_conversation_id", "breakglass_requests", ["conversation_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_breakglass_requests_conversation_id", table_name="breakglass_requests")
    op.drop_table("breakglass_requests")
