"""Holds and recalls: stopping a lot, and everything made from it, wherever it went."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from trace.timeutil import utcnow


class Recall(SQLModel, table=True):
    """One recall of a lot and its forward trace."""

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int = Field(foreign_key="lot.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True, description="Who recalled")
    reason: str = Field(max_length=1000)
    event_id: str = Field(max_length=36)
    lots_affected: int = 0
    units_affected: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class RecallLot(SQLModel, table=True):
    """A lot a recall reached (the recalled lot itself included)."""

    __tablename__ = "recall_lot"

    recall_id: int = Field(foreign_key="recall.id", primary_key=True)
    lot_id: int = Field(foreign_key="lot.id", primary_key=True, index=True)
    depth: int = 0  # transformations between the recalled lot and this one
