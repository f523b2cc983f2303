"""Column types shared by the table models."""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa


def enum_type(enum: type[StrEnum], length: int = 30) -> sa.Enum:
    """An enum stored as its plain string value (VARCHAR): new members need no migration."""
    return sa.Enum(enum, native_enum=False, create_constraint=False, length=length,
                   values_callable=lambda members: [m.value for m in members])
