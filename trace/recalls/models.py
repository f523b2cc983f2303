"""Holds and recalls: stopping a lot, and everything made from it, wherever it went."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from trace.lots import LotStatus
from trace.platform.timeutil import utcnow


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


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000)]


class ReasonIn(SQLModel):
    """Why a lot is held, released or recalled (kept in the event, shown to whoever reads it)."""

    reason: Reason = Field(description="Why, in a sentence: the finding, the decision and its number")


class HoldPublic(SQLModel):
    """A lot's status after a hold or a release, and the event that recorded it."""

    lot_id: int
    status: LotStatus
    previous_status: LotStatus
    reason: str
    event_id: str


class RecallPublic(SQLModel):
    """A recall: the lot recalled, by whom, why, and how far it reached."""

    id: int
    lot_id: int
    gtin: str
    lot_code: str
    product_name: str
    organisation_id: int
    organisation_name: str
    reason: str
    event_id: str
    lots_affected: int
    units_affected: int = Field(description="Active unit codes on the affected lots when recalled")
    created_at: datetime


class AffectedLotPublic(SQLModel):
    """A lot your organisation holds, held, or has on its way to it, that a recall reached."""

    recall_id: int
    recalled_at: datetime
    reason: str
    recalled_lot_id: int
    recalled_gtin: str
    recalled_lot_code: str
    lot_id: int
    gtin: str
    lot_code: str
    product_name: str
    depth: int
    lot_status: LotStatus
    quantity_held: Decimal
    unit: str
    quantity_in_transit: Decimal = Field(default=Decimal(0), description="Shipped to you, not yet received")
