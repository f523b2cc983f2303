"""Province dashboard targets and report jobs

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 07:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "indicator",
            sa.Enum("organisations", "products", "labels", "scans", name="indicator", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("set_by_user_id", sa.Integer(), nullable=True),
        sa.Column("set_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["set_by_user_id"],
            ["user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    with op.batch_alter_table("plan_target", schema=None) as batch_op:
        batch_op.create_index("ix_plan_target_indicator_year", ["indicator", "year"], unique=False)

    op.create_table(
        "report_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("requested_by_user_id", sa.Integer(), nullable=True),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column(
            "format", sa.Enum("xlsx", "csv", "zip", name="reportformat", native_enum=False, length=10), nullable=False
        ),
        sa.Column("section", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column(
            "status",
            sa.Enum("queued", "building", "done", "failed", name="reportstatus", native_enum=False, length=12),
            nullable=False,
        ),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"],
            ["user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    with op.batch_alter_table("report_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_job_organisation_id"), ["organisation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_report_job_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_job_status"))
        batch_op.drop_index(batch_op.f("ix_report_job_organisation_id"))
    op.drop_table("report_job")
    with op.batch_alter_table("plan_target", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_target_indicator_year")
    op.drop_table("plan_target")
