"""Web workspace: once-only keys for the remaining forms

A grant of a right to use, an organisation, an invitation and a designation each keep the idempotency key
of the request that created them, under a unique index, so a form sent twice (double tap, retry after a
timeout) records once. Changes of a right keep theirs in idempotency_record, beside the holder's event keys.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 07:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table → (index name, indexed columns); the key column is request_key in each.
KEYS: dict[str, tuple[str, list[str]]] = {
    "right_to_use": ("ix_right_to_use_designation_id_request_key", ["designation_id", "request_key"]),
    "organisation": ("ix_organisation_request_key", ["request_key"]),
    "user": ("ix_user_organisation_id_request_key", ["organisation_id", "request_key"]),
    "designation": ("ix_designation_request_key", ["request_key"]),
}


def upgrade() -> None:
    # Unique indexes, not constraints: SQLite adds them without rebuilding tables other tables point to.
    for table, (index, columns) in KEYS.items():
        op.add_column(table, sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        op.create_index(index, table, columns, unique=True)


def downgrade() -> None:
    for table, (index, _columns) in reversed(KEYS.items()):
        op.drop_index(index, table_name=table)
        op.drop_column(table, "request_key")  # SQLite drops a plain column in place (as 0008 does)
