"""Sign-in pause: wrong passwords in a row per account, and until when its sign-in is paused

The per-address rate limit cannot see guesses spread over many addresses; ten wrong passwords in a row
for one account pause its sign-in for fifteen minutes (settings).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 12:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user", sa.Column("failed_sign_ins", sa.Integer(), server_default="0", nullable=False))
    op.add_column("user", sa.Column("sign_in_paused_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("user", "sign_in_paused_until")  # SQLite drops a plain column in place (as 0012 does)
    op.drop_column("user", "failed_sign_ins")
