"""EPCIS 2.0 interface: event ids as EPCIS hash ids

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 07:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # the EPCIS interface's tables come in its own change


def downgrade() -> None:
    pass
