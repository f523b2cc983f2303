"""location.request_key: the creating request's idempotency key (a resent form registers a place once)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 06:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A unique index, not a constraint: SQLite adds it without rebuilding a table other tables point to.
    op.add_column("location", sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
    op.create_index(
        "ix_location_organisation_id_request_key", "location", ["organisation_id", "request_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_location_organisation_id_request_key", table_name="location")
    op.drop_column("location", "request_key")
