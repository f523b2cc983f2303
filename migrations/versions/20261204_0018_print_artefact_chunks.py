"""print_artefact_chunk: a run's file in 1 MiB rows instead of one print_artefact.content value;
every stored file moved into chunks

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK_BYTES = 1 << 20  # trace.printing.models.CHUNK_BYTES at this revision

artefact = sa.table("print_artefact", sa.column("print_run_id", sa.Integer), sa.column("content", sa.LargeBinary))
chunk = sa.table(
    "print_artefact_chunk",
    sa.column("print_run_id", sa.Integer),
    sa.column("seq", sa.Integer),
    sa.column("data", sa.LargeBinary),
)


def upgrade() -> None:
    op.create_table(
        "print_artefact_chunk",
        sa.Column("print_run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["print_run_id"], ["print_artefact.print_run_id"]),
        sa.PrimaryKeyConstraint("print_run_id", "seq"),
    )
    bind = op.get_bind()
    ids = bind.execute(sa.select(artefact.c.print_run_id).order_by(artefact.c.print_run_id)).scalars().all()
    # One file at a time: before this revision every file was made in memory, so each one fits there.
    for run_id in ids:
        content = bind.execute(sa.select(artefact.c.content).where(artefact.c.print_run_id == run_id)).scalar_one()
        for seq, start in enumerate(range(0, len(content), CHUNK_BYTES)):
            bind.execute(chunk.insert().values(print_run_id=run_id, seq=seq, data=content[start : start + CHUNK_BYTES]))
    # In place, not by batch mode: SQLite's copy-and-rename of print_artefact would drop a table that the
    # chunks now refer to (a foreign key failure). SQLite drops a plain column itself since 3.35.
    op.execute("ALTER TABLE print_artefact DROP COLUMN content")


def downgrade() -> None:
    op.add_column("print_artefact", sa.Column("content", sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    ids = bind.execute(sa.select(artefact.c.print_run_id).order_by(artefact.c.print_run_id)).scalars().all()
    for run_id in ids:
        parts = bind.execute(
            sa.select(chunk.c.data).where(chunk.c.print_run_id == run_id).order_by(chunk.c.seq)
        ).scalars()
        bind.execute(artefact.update().where(artefact.c.print_run_id == run_id).values(content=b"".join(parts)))
    op.drop_table("print_artefact_chunk")  # first: batch mode may now copy print_artefact and drop the old one
    with op.batch_alter_table("print_artefact") as batch:
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
