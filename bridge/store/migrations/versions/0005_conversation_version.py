"""A conversation's version: a number that every change to what decides who may send what in it
moves on, in the transaction of the change itself.

The message path keeps what it checks a message against (the conversation's state and
counsellor, its bridge in force, its officers) in memory, and takes a message's number only
``WHERE version = <the version it checked against>``; a version that moved means the checks run
again on the rows as they are now, on any node. Triggers move it, so no path that changes a
conversation, a bridge request or a participant can forget to.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The columns of a conversation the checks read (``last_seq`` is not one: it moves with every
# message).
_CONVERSATION_COLUMNS = "state, counsellor_account_id, closed_at"
_CHILD_TABLES = ("bridge_requests", "participants")


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER conversations_version ON conversations")
        for table in _CHILD_TABLES:
            op.execute(f"DROP TRIGGER {table}_conversation_version ON {table}")
        op.execute("DROP FUNCTION bridge_conversation_version()")
        op.execute("DROP FUNCTION bridge_child_conversation_version()")
    else:
        op.execute("DROP TRIGGER conversations_version")
        for table in _CHILD_TABLES:
            for action in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_{action}_conversation_version")
    op.drop_column("conversations", "version")


def _sqlite_triggers() -> None:
    # SQLite's triggers cannot assign NEW: the row is updated again (recursive triggers are off,
    # and ``version`` is not among the columns that fire it).
    op.execute(
        f"CREATE TRIGGER conversations_version AFTER UPDATE OF {_CONVERSATION_COLUMNS} "
        "ON conversations BEGIN "
        "UPDATE conversations SET version = version + 1 WHERE id = NEW.id; END"
    )
    for table in _CHILD_TABLES:
        for action, row in (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD")):
            op.execute(
                f"CREATE TRIGGER {table}_{action}_conversation_version "
                f"AFTER {action.upper()} ON {table} BEGIN "
                "UPDATE conversations SET version = version + 1 "
                f"WHERE id = {row}.conversation_id; END"
            )


def _postgresql_triggers() -> None:
    op.execute(
        "CREATE FUNCTION bridge_conversation_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN NEW.version := OLD.version + 1; RETURN NEW; END $$"
    )
    columns = _CONVERSATION_COLUMNS.split(", ")
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
    op.execute(
        f"CREATE TRIGGER conversations_version BEFORE UPDATE OF {_CONVERSATION_COLUMNS} "
        f"ON conversations FOR EACH ROW WHEN ({changed}) "
        "EXECUTE FUNCTION bridge_conversation_version()"
    )
    op.execute(
        "CREATE FUNCTION bridge_child_conversation_version() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ DECLARE changed text; BEGIN "
        "IF TG_OP = 'DELETE' THEN changed := OLD.conversation_id; "
        "ELSE changed := NEW.conversation_id; END IF; "
        "UPDATE conversations SET version = version + 1 WHERE id = changed; "
        "RETURN NULL; END $$"
    )
    for table in _CHILD_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_conversation_version "
            f"AFTER INSERT OR UPDATE OR DELETE ON {table} FOR EACH ROW "
            "EXECUTE FUNCTION bridge_child_conversation_version()"
        )
