"""EPCIS 2.0 interface: event ids as EPCIS hash ids

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 07:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A side table, not a column: event rows are append-only (triggers refuse UPDATE), so existing
    # events could not be given a column value.
    op.create_table(
        "epcis_event_id",
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("epcis_id", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("epcis_event_id", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_epcis_event_id_epcis_id"), ["epcis_id"], unique=True)
    # Existing events get their CBV 2.0 hash ids, computed as for new ones.
    from trace.epcis.ids import backfill

    backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("epcis_event_id", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_epcis_event_id_epcis_id"))
    op.drop_table("epcis_event_id")
