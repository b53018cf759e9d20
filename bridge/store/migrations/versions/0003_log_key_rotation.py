"""Log key rotation: the log records which key signs from now on, and its entries are found by
kind (the rotations make the key history).

The key that signed the latest checkpoint is the one that signs on.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("log_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE log_state SET key_id = (SELECT key_id FROM checkpoints ORDER BY id DESC LIMIT 1)"
    )
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_log_entries_kind"), ["kind"], unique=False)


def downgrade() -> None:
    # The rotation entries stay in the log; the schema before this one signs with whatever key
    # its node holds, so roll back only to a version that has the current key file.
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_log_entries_kind"))
    with op.batch_alter_table("log_state", schema=None) as batch_op:
        batch_op.drop_column("key_id")
