"""dashboard figures kept as lots and codes are written: lot_bucket (lots made, not cancelled, per quarter
hour and kind of making event) and code_bucket (active package codes per lot and quarter hour); backfilled
from the lots, their events and the units

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _quarter(dialect: str, column: str) -> str:
    """The quarter hour (UTC) an instant falls in, as the columns store instants
    (trace.reports.tally_check.quarter_sql when this revision was written)."""
    if dialect == "postgresql":
        return f"to_timestamp(floor(extract(epoch FROM {column}) / 900) * 900)"
    # SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): keep the hour, round the minutes down to 15.
    return (
        f"substr({column}, 1, 14) || printf('%02d', (CAST(substr({column}, 15, 2) AS INTEGER) / 15) * 15)"
        " || '\\:00.000000'"  # the backslash keeps text() from reading ":00" as a parameter
    )


def _backfill() -> None:
    # What the dashboard counted before, kept from now on as the lots and codes are written.
    dialect = op.get_bind().dialect.name
    op.execute(
        "INSERT INTO lot_bucket (starts_at, kind, lots) "
        "SELECT starts_at, kind, count(*) FROM ("
        f"SELECT {_quarter(dialect, 'lot.created_at')} AS starts_at, event.type AS kind "
        "FROM lot JOIN event ON event.id = lot.created_event_id "
        "WHERE lot.status <> 'cancelled' AND event.type IN ('harvest', 'transform')"
        ") made GROUP BY starts_at, kind"
    )
    op.execute(
        "INSERT INTO code_bucket (lot_id, starts_at, codes) "
        "SELECT lot_id, starts_at, count(*) FROM ("
        f"SELECT unit.lot_id AS lot_id, {_quarter(dialect, 'unit.created_at')} AS starts_at "
        "FROM unit WHERE unit.level = 'unit' AND unit.status = 'active'"
        ") codes GROUP BY lot_id, starts_at"
    )


def upgrade() -> None:
    op.create_table(
        "lot_bucket",
        sa.Column("starts_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("lots", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("starts_at", "kind"),
    )
    op.create_table(
        "code_bucket",
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("codes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["lot_id"], ["lot.id"]),
        sa.PrimaryKeyConstraint("lot_id", "starts_at"),
    )
    with op.batch_alter_table("code_bucket", schema=None) as batch_op:
        batch_op.create_index("ix_code_bucket_starts_at", ["starts_at", "lot_id"], unique=False)
    _backfill()


def downgrade() -> None:
    with op.batch_alter_table("code_bucket", schema=None) as batch_op:
        batch_op.drop_index("ix_code_bucket_starts_at")
    op.drop_table("code_bucket")
    op.drop_table("lot_bucket")
