"""Units: single labelled packages of a lot, identified by GTIN + lot + a random serial."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from trace.sqltypes import enum_type
from trace.timeutil import utcnow

# Crockford's base32: no I, L, O, U, so a serial read aloud or typed is unambiguous.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class UnitStatus(StrEnum):
    ACTIVE = "active"
    VOID = "void"


class Unit(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("lot_id", "serial"),)

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int = Field(foreign_key="lot.id", index=True)
    serial: str = Field(max_length=20)
    parent_id: str | None = Field(default=None, max_length=120, index=True)  # carton/pallet
    status: UnitStatus = Field(default=UnitStatus.ACTIVE, sa_type=enum_type(UnitStatus))
    created_event_id: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utcnow)


def new_serial(bits: int = 50) -> str:
    """A random serial of ``bits`` bits in Crockford base32 (10 characters for 50 bits)."""
    value = secrets.randbits(bits)
    chars = []
    for _ in range((bits + 4) // 5):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))
