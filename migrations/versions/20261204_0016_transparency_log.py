"""transparency log: tlog_pending, tlog_leaf, tlog_node, tlog_head, tlog_checkpoint, tlog_cosignature;
every existing event appended to the tree in its chain's order

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # SHA-256 of nothing
APPEND_ONLY = ("tlog_leaf", "tlog_node", "tlog_checkpoint", "tlog_cosignature")


def _append_only() -> None:
    # The log's rows are never edited or deleted; the database refuses it (as for events, see 0001).
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION hytrace_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION hytrace_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'hytrace: {verb} on {table} is refused: the log is append-only'); END"
                )


def _backfill() -> None:
    from sqlmodel import Session

    from trace.transparency import log

    bind = op.get_bind()
    bind.execute(sa.text("INSERT INTO tlog_pending (event_id) SELECT id FROM event"))
    with Session(bind=bind) as session:
        while log.sequence(session=session, limit=5000, chains=True):
            pass
        session.flush()


def upgrade() -> None:
    op.create_table(
        "tlog_pending",
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "tlog_leaf",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("salt", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
        sa.PrimaryKeyConstraint("idx"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_table(
        "tlog_node",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "tlog_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "tlog_checkpoint",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("key_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("signed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "tlog_cosignature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("witness", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("size", "witness"),
    )
    op.create_index(op.f("ix_tlog_cosignature_size"), "tlog_cosignature", ["size"], unique=False)
    op.execute(sa.text(f"INSERT INTO tlog_head (id, size, root) VALUES (1, 0, '{EMPTY_ROOT}')"))
    _append_only()
    _backfill()


def downgrade() -> None:
    op.drop_index(op.f("ix_tlog_cosignature_size"), table_name="tlog_cosignature")
    for table in ("tlog_cosignature", "tlog_checkpoint", "tlog_head", "tlog_node", "tlog_leaf", "tlog_pending"):
        op.drop_table(table)
