"""Signed werkafspraken: the organisations' policy-signing keys and the policies put in force.

A bridge upgraded to this schema has no policy in force until both organisations' keys are
registered and a policy signed by both is applied (docs/governance.md); what was logged before
(``policy.changed`` with a hash only) stays in the log as it was.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_keys",
        sa.Column("vkey", sa.String(length=160), nullable=False),
        sa.Column("org", sa.String(length=16), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("vkey", name="pk_policy_keys"),
    )
    op.create_table(
        "policies",
        sa.Column("serial", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=43), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("serial", name="pk_policies"),
    )


def downgrade() -> None:
    op.drop_table("policies")
    op.drop_table("policy_keys")
