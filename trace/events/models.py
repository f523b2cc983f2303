"""The event log: EPCIS-shaped events, their lot quantities, the per-organisation hash chain."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from trace.lots import qty_column
from trace.platform.sqltypes import enum_type


class EventType(StrEnum):
    HARVEST = "harvest"
    COMMISSION = "commission"  # units (serials) of a lot come into being
    SHIP = "ship"
    RECEIVE = "receive"
    TRANSFORM = "transform"
    PACK = "pack"
    SELL = "sell"
    STORE = "store"
    INSPECT = "inspect"
    LOSS = "loss"
    CORRECTION = "correction"
    DECOMMISSION = "decommission"  # printed codes voided (damaged sheet, lost roll)
    RIGHT = "right"  # a designation holder grants, suspends, reinstates or revokes a right to use
    HOLD = "hold"  # a lot stopped pending a decision
    RELEASE = "release"  # a hold lifted
    RECALL = "recall"  # a lot and its forward trace recalled


# (EPCIS event type, action, CBV bizStep, CBV disposition) for each of our types.
EPCIS_SHAPE: dict[EventType, tuple[str, str | None, str | None, str | None]] = {
    EventType.HARVEST: ("ObjectEvent", "ADD", "commissioning", "active"),
    EventType.COMMISSION: ("ObjectEvent", "ADD", "commissioning", "active"),
    EventType.SHIP: ("ObjectEvent", "OBSERVE", "shipping", "in_transit"),
    EventType.RECEIVE: ("ObjectEvent", "OBSERVE", "receiving", "in_progress"),
    EventType.TRANSFORM: ("TransformationEvent", None, "commissioning", "active"),
    EventType.PACK: ("AggregationEvent", "ADD", "packing", "in_progress"),
    EventType.SELL: ("ObjectEvent", "OBSERVE", "retail_selling", "retail_sold"),
    EventType.STORE: ("ObjectEvent", "OBSERVE", "storing", "sellable_not_accessible"),
    EventType.INSPECT: ("ObjectEvent", "OBSERVE", "inspecting", None),
    EventType.LOSS: ("ObjectEvent", "DELETE", "destroying", "destroyed"),
    EventType.CORRECTION: ("ObjectEvent", None, None, None),
    EventType.DECOMMISSION: ("ObjectEvent", "DELETE", "decommissioning", "inactive"),
    EventType.RIGHT: ("ObjectEvent", "OBSERVE", None, None),
    EventType.HOLD: ("ObjectEvent", "OBSERVE", "holding", "non_sellable_other"),
    EventType.RELEASE: ("ObjectEvent", "OBSERVE", "holding", "active"),
    EventType.RECALL: ("ObjectEvent", "OBSERVE", "holding", "recalled"),
}


class Event(SQLModel, table=True):
    """One thing that happened. Rows are never updated or deleted (triggers refuse it)."""

    __table_args__ = (
        UniqueConstraint("organisation_id", "seq"),
        Index("ix_event_time", "event_time"),
        Index("ix_event_type_time", "type", "event_time"),
        # An event is declared erroneous at most once; most events never are (partial index).
        Index(
            "ux_event_corrects",
            "corrects_event_id",
            unique=True,
            sqlite_where=text("corrects_event_id IS NOT NULL"),
            postgresql_where=text("corrects_event_id IS NOT NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    organisation_id: int = Field(foreign_key="organisation.id")  # whose chain it is in
    seq: int
    type: EventType = Field(sa_type=enum_type(EventType))
    epcis_type: str = Field(max_length=30)
    action: str | None = Field(default=None, max_length=10)
    biz_step: str | None = Field(default=None, max_length=40)
    disposition: str | None = Field(default=None, max_length=40)
    event_time: datetime  # UTC
    event_tz_offset: str = Field(max_length=6)
    record_time: datetime  # UTC
    actor_user_id: int | None = None
    actor_api_key_id: int | None = None
    location_id: int | None = Field(default=None, foreign_key="location.id")
    location_version: int | None = None
    source_organisation_id: int | None = None
    destination_organisation_id: int | None = None
    lot_id: int | None = None  # the main lot, for display; lineage queries go through event_lot
    biz_transactions: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    corrects_event_id: str | None = Field(default=None, max_length=36)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)  # the chain (seq, prev_hash) makes it unique; no index to keep up


class EventLot(SQLModel, table=True):
    """Which lots an event touched, in what role and quantity, and the custody change it made."""

    __tablename__ = "event_lot"
    __table_args__ = (Index("ix_event_lot_lot", "lot_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(foreign_key="event.id", index=True, max_length=36)
    lot_id: int = Field(foreign_key="lot.id")
    role: str = Field(max_length=10)  # object | input | output
    quantity: Decimal | None = Field(default=None, sa_column=qty_column(nullable=True))
    unit: str | None = Field(default=None, max_length=10)
    organisation_id: int | None = None  # whose holding changed
    delta: Decimal = Field(default=Decimal(0), sa_column=qty_column(nullable=False))


class ChainHead(SQLModel, table=True):
    """The last link of an organisation's chain; one row per organisation, locked while appending."""

    __tablename__ = "chain_head"

    organisation_id: int = Field(primary_key=True, foreign_key="organisation.id")
    seq: int = 0
    hash: str = Field(max_length=64)


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a request carrying an idempotency key, replayed on retries."""

    __tablename__ = "idempotency_record"

    organisation_id: int = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=100)
    fingerprint: str = Field(max_length=64)
    event_ids: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime
