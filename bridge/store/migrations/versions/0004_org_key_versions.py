"""Org key versions: an org may have several keys (``fier-1``, ``fier-2``, ...), and each sealed
scope key names the one it is sealed to.

Every key made before is version 1 of its org, and every scope key was sealed to it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("org_keys", schema=None, recreate="always") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint("pk_org_keys", type_="primary")
        batch_op.create_primary_key("pk_org_keys", ["key_id"])
        batch_op.create_unique_constraint("uq_org_keys_org_version", ["org", "version"])
    with op.batch_alter_table("org_keys", schema=None) as batch_op:
        batch_op.alter_column("version", existing_type=sa.Integer(), server_default=None)
    # Plain ALTER TABLE (SQLite 3.35 and later too): a batch would copy these tables, which
    # other tables' foreign keys point at.
    op.add_column("conversations", sa.Column("care_key_id", sa.String(length=64), nullable=True))
    op.add_column("epochs", sa.Column("key_id", sa.String(length=64), nullable=True))
    first = "(SELECT key_id FROM org_keys WHERE org = '{}' AND version = 1)"
    op.execute(f"UPDATE conversations SET care_key_id = {first.format('fier')}")
    op.execute(f"UPDATE epochs SET key_id = {first.format('avim')}")


def downgrade() -> None:
    # The schema before holds one key per org: with a rotated key, going back would lose the
    # keys that open older scopes, so it is refused.
    rotated = op.get_bind().scalar(sa.text("SELECT COUNT(*) FROM org_keys WHERE version > 1"))
    if rotated:
        raise RuntimeError("org keys were rotated: the schema before 0004 cannot hold them")
    op.drop_column("epochs", "key_id")
    op.drop_column("conversations", "care_key_id")
    with op.batch_alter_table("org_keys", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("uq_org_keys_org_version", type_="unique")
        batch_op.drop_constraint("pk_org_keys", type_="primary")
        batch_op.create_primary_key("pk_org_keys", ["org"])
        batch_op.drop_column("version")
