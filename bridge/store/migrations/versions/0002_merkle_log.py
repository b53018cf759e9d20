"""The Merkle log: the tree head kept incrementally, and signed checkpoints.

The hash chain of the first schema gives way to RFC 9162 hashing; the tree head of the entries
already logged is computed once here.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.crypto import b64u_decode, b64u_encode, sha256
from bridge.log.merkle import frontier_append

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=43), nullable=False),
        sa.Column("time", sa.String(length=20), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("sig", sa.String(length=86), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
    )
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkpoints_size"), ["size"], unique=False)
    log_state = op.create_table(
        "log_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("frontier", sa.JSON(), nullable=False),
        sa.Column("checkpoint_size", sa.Integer(), nullable=True),
        sa.Column("checkpoint_root", sa.String(length=43), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_state")),
    )
    frontier: list[bytes] = []
    size = 0
    rows = op.get_bind().execute(sa.text("SELECT leaf_hash FROM log_entries ORDER BY idx"))
    for (leaf,) in rows:
        frontier = frontier_append(frontier, size, b64u_decode(leaf))
        size += 1
    op.bulk_insert(
        log_state,
        [
            {
                "id": 1,
                "size": size,
                "frontier": [b64u_encode(node) for node in frontier],
                "checkpoint_size": None,
                "checkpoint_root": None,
            }
        ],
    )
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.drop_column("chain_hash")


def downgrade() -> None:
    # The first schema's hash chain is rebuilt from the entries (chain_i = SHA-256(chain_{i-1} as
    # b64u text || leaf_i), from SHA-256 of nothing); the signed checkpoints have no place there
    # and go. Upgrading again computes the same tree head, so a receipt given out still proves.
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_hash", sa.String(length=43), nullable=True))
    bind = op.get_bind()
    chain = b64u_encode(sha256(b""))
    rows = bind.execute(sa.text("SELECT idx, leaf_hash FROM log_entries ORDER BY idx")).all()
    for idx, leaf in rows:
        chain = b64u_encode(sha256(chain.encode() + b64u_decode(leaf)))
        bind.execute(
            sa.text("UPDATE log_entries SET chain_hash = :chain WHERE idx = :idx"),
            {"chain": chain, "idx": idx},
        )
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.alter_column("chain_hash", existing_type=sa.String(length=43), nullable=False)
    op.drop_table("log_state")
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkpoints_size"))
    op.drop_table("checkpoints")
