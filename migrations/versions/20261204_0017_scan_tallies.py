"""scan figures kept as scans are written: scan_tally (per lot and unit), scan_sighting (each network's
first scan of a code, at most 256 per code), scan_bucket (scans per quarter hour); backfilled from the scans

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 20:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES_KEPT = 256  # trace.scans.tallies.SOURCES_KEPT when this revision was written


def _bucket(dialect: str) -> str:
    """The quarter hour (UTC) a scan falls in, as the column stores instants (trace.scans.tallies.bucket_sql)."""
    if dialect == "postgresql":
        return "to_timestamp(floor(extract(epoch FROM scanned_at) / 900) * 900)"
    # SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): keep the hour, round the minutes down to 15.
    return (
        "substr(scanned_at, 1, 14) || printf('%02d', (CAST(substr(scanned_at, 15, 2) AS INTEGER) / 15) * 15)"
        " || '\\:00.000000'"  # the backslash keeps text() from reading ":00" as a parameter
    )


def _backfill() -> None:
    # The figures the scans already written make, as trace.scans.tallies would have kept them had the
    # scans been written in time order: an upgraded instance shows what it showed before.
    bind = op.get_bind()
    for scope, column, where in (("lot", "lot_id", ""), ("unit", "unit_id", "WHERE unit_id IS NOT NULL")):
        op.execute(
            "INSERT INTO scan_tally (scope, code_id, scans, first_at, last_at, networks, places) "
            f"SELECT '{scope}', {column}, count(*), min(scanned_at), max(scanned_at), 0, 0 FROM scan {where} "
            f"GROUP BY {column}"
        )
        op.execute(
            "INSERT INTO scan_sighting (scope, code_id, network, first_at, scan_id, place) "
            f"SELECT '{scope}', code_id, network, scanned_at, id, place FROM ("
            "  SELECT code_id, network, scanned_at, id, place,"
            "         row_number() OVER (PARTITION BY code_id ORDER BY scanned_at, id) AS k"
            "  FROM ("
            f"    SELECT {column} AS code_id, network, scanned_at, id, place,"
            f"           row_number() OVER (PARTITION BY {column}, network ORDER BY scanned_at, id) AS n"
            f"    FROM scan {where}"
            "  ) firsts WHERE n = 1"
            f") ranked WHERE k <= {SOURCES_KEPT}"
        )
    op.execute(
        "UPDATE scan_tally SET"
        " networks = (SELECT count(*) FROM scan_sighting s"
        "             WHERE s.scope = scan_tally.scope AND s.code_id = scan_tally.code_id),"
        " places = (SELECT count(DISTINCT s.place) FROM scan_sighting s"
        "           WHERE s.scope = scan_tally.scope AND s.code_id = scan_tally.code_id)"
    )
    op.execute(
        "INSERT INTO scan_bucket (starts_at, people, bots) "
        "SELECT starts_at, sum(CASE WHEN agent <> 'bot' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN agent = 'bot' THEN 1 ELSE 0 END) "
        f"FROM (SELECT {_bucket(bind.dialect.name)} AS starts_at, agent FROM scan) quarters GROUP BY starts_at"
    )


def upgrade() -> None:
    op.create_table(
        "scan_tally",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("scans", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("networks", sa.Integer(), nullable=False),
        sa.Column("places", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "code_id"),
    )
    op.create_table(
        "scan_sighting",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("network", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("first_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("scan_id", sa.Integer(), nullable=False),
        sa.Column("place", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.ForeignKeyConstraint(["scan_id"], ["scan.id"]),
        sa.PrimaryKeyConstraint("scope", "code_id", "network"),
    )
    op.create_table(
        "scan_bucket",
        sa.Column("starts_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("people", sa.BigInteger(), nullable=False),
        sa.Column("bots", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("starts_at"),
    )
    _backfill()


def downgrade() -> None:
    op.drop_table("scan_bucket")
    op.drop_table("scan_sighting")
    op.drop_table("scan_tally")
