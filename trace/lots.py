"""Lots (GTIN + lot code), who holds how much of each, shipments in flight and lineage edges."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Column, Index, Numeric, UniqueConstraint, func
from sqlmodel import Field, Session, SQLModel, col, select

from trace.access import Actor, Role
from trace.designations.models import ClaimStatus
from trace.errors import NotFound
from trace.identifiers import normalize_gtin
from trace.platform.paging import Page, key_order, page, paged
from trace.platform.sqltypes import enum_type, in_chunks
from trace.units import has_loose_units

QTY = Numeric(18, 3)


def qty_column(**kwargs: object) -> Column:  # type: ignore[type-arg]
    """A quantity column: exact decimals, three places (grams of a kg, ...)."""
    return Column(QTY, **kwargs)  # type: ignore[arg-type]


class LotStatus(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    RECALLED = "recalled"
    CONSUMED = "consumed"
    CANCELLED = "cancelled"  # its creating event was declared erroneous


class Lot(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("gtin", "lot_code"),
        # A product's first lot (the dashboard's products traced) is one index probe per product.
        Index("ix_lot_product_created", "product_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    gtin: str = Field(max_length=14)
    lot_code: str = Field(max_length=20)
    quantity: Decimal = Field(sa_column=qty_column(nullable=False))
    unit: str = Field(max_length=10)
    producer_organisation_id: int = Field(foreign_key="organisation.id", index=True)
    origin_location_id: int | None = Field(default=None, foreign_key="location.id")
    production_date: date
    expiry_date: date | None = None
    status: LotStatus = Field(default=LotStatus.ACTIVE, sa_type=enum_type(LotStatus))
    created_event_id: str = Field(max_length=36)
    created_at: datetime  # event time (UTC) of the creating event
    product_version: int = 1


class Holding(SQLModel, table=True):
    """How much of a lot an organisation holds now (derived from events)."""

    # An organisation's lots read from the index alone (its lot list, on every page).
    __table_args__ = (Index("ix_holding_organisation_lot", "organisation_id", "lot_id"),)

    lot_id: int = Field(foreign_key="lot.id", primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", primary_key=True, index=True)
    quantity: Decimal = Field(sa_column=qty_column(nullable=False))


class ShipmentStatus(StrEnum):
    OPEN = "open"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class Shipment(SQLModel, table=True):
    """Goods in flight: a ship event waiting for the receiver's receive event(s)."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=36, unique=True)
    lot_id: int = Field(foreign_key="lot.id", index=True)
    from_organisation_id: int = Field(foreign_key="organisation.id")
    to_organisation_id: int = Field(foreign_key="organisation.id", index=True)
    quantity: Decimal = Field(sa_column=qty_column(nullable=False))
    received_quantity: Decimal = Field(default=Decimal(0), sa_column=qty_column(nullable=False))
    status: ShipmentStatus = Field(default=ShipmentStatus.OPEN, sa_type=enum_type(ShipmentStatus))
    shipped_at: datetime


class LotEdge(SQLModel, table=True):
    """Lineage: ``child`` was made from ``parent`` by a transformation event."""

    __tablename__ = "lot_edge"
    __table_args__ = (Index("ix_lot_edge_child_parent", "child_lot_id", "parent_lot_id"),)

    parent_lot_id: int = Field(foreign_key="lot.id", primary_key=True)
    child_lot_id: int = Field(foreign_key="lot.id", primary_key=True)
    event_id: str = Field(max_length=36)


class LotPublic(SQLModel):
    id: int
    product_id: int
    gtin: str
    lot_code: str
    quantity: Decimal
    unit: str
    producer_organisation_id: int
    origin_location_id: int | None
    production_date: date
    expiry_date: date | None
    status: LotStatus
    created_event_id: str
    created_at: datetime
    held: Decimal | None = None  # what the caller's organisation holds now
    holders: list[HoldingPublic] | None = None
    claims: list[ClaimStatus] = []  # designations it carries, judged at harvest and today


class HoldingPublic(SQLModel):
    organisation_id: int
    quantity: Decimal


def get_lot(*, session: Session, lot_id: int) -> Lot:
    """One lot, or NotFound."""
    lot = session.get(Lot, lot_id)
    if lot is None:
        raise NotFound(f"Lot {lot_id} not found")
    return lot


def visible_lot(*, session: Session, actor: Actor, lot_id: int) -> Lot:
    """A lot the actor may see (its organisation is involved with it), else NotFound.

    A lot of others gets the same answer as one that does not exist: whether it exists is not theirs to know.
    """
    lot = session.get(Lot, lot_id)
    if lot is None or not involved(session=session, actor=actor, lot=lot):
        raise NotFound(f"Lot {lot_id} not found")
    return lot


def lot_by_code(*, session: Session, gtin: str, lot_code: str) -> Lot:
    """A lot by GTIN (any form) and lot code, or NotFound."""
    lot = session.exec(select(Lot).where(Lot.gtin == normalize_gtin(gtin), Lot.lot_code == lot_code)).first()
    if lot is None:
        raise NotFound(f"No lot {lot_code} of GTIN {gtin}")
    return lot


def held_by(*, session: Session, lot_id: int, organisation_id: int) -> Decimal:
    """What one organisation holds of a lot now."""
    row = session.get(Holding, (lot_id, organisation_id))
    return row.quantity if row else Decimal(0)


def holders(*, session: Session, lot_id: int) -> list[Holding]:
    """Who holds a lot now (positive holdings)."""
    return list(session.exec(select(Holding).where(Holding.lot_id == lot_id, Holding.quantity > 0)))


def in_transit(*, session: Session, lot_id: int) -> Decimal:
    """Shipped but not yet received."""
    total = session.exec(
        select(func.coalesce(func.sum(Shipment.quantity - Shipment.received_quantity), 0)).where(
            Shipment.lot_id == lot_id, Shipment.status == ShipmentStatus.OPEN
        )
    ).one()
    return Decimal(total)


def involved(*, session: Session, actor: Actor, lot: Lot) -> bool:
    """Whether the actor's organisation produced, holds, held or was shipped this lot."""
    return involved_in(session=session, actor=actor, lot_id=lot.id, producer_id=lot.producer_organisation_id)  # type: ignore[arg-type]


def involved_in(*, session: Session, actor: Actor, lot_id: int, producer_id: int) -> bool:
    """:func:`involved`, for a lot known by its id and producer."""
    if actor.reads_everything:
        return True
    org = actor.organisation_id
    if org is None:
        return False
    if producer_id == org or session.get(Holding, (lot_id, org)) is not None:
        return True
    return (
        session.exec(select(Shipment.id).where(Shipment.lot_id == lot_id, Shipment.to_organisation_id == org)).first()
        is not None
    )


LOT_ORDER = key_order("lots", (col(Lot.id), int, True))  # newest first


def list_lots(
    *,
    session: Session,
    actor: Actor,
    product_id: int | None = None,
    gtin: str | None = None,
    status: LotStatus | None = None,
    held_only: bool = False,
    cursor: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[Lot]:
    """Lots the actor's organisation produced or holds (everything for admins and inspectors), newest
    first, a page after ``cursor`` (``offset``: the slower legacy way)."""
    query = select(Lot)
    if not actor.reads_everything or held_only:
        holding = select(Holding.lot_id).where(Holding.organisation_id == actor.organisation_id)
        if held_only:
            holding = holding.where(Holding.quantity > 0)
            query = query.where(Lot.id.in_(holding))  # type: ignore[union-attr]
        else:
            query = query.where(
                (Lot.producer_organisation_id == actor.organisation_id) | Lot.id.in_(holding)  # type: ignore[union-attr]
            )
    if product_id is not None:
        query = query.where(Lot.product_id == product_id)
    if gtin:
        query = query.where(Lot.gtin == normalize_gtin(gtin))
    if status:
        query = query.where(Lot.status == status)
    rows = session.exec(paged(query, LOT_ORDER, cursor=cursor, offset=offset, limit=limit))
    return page(rows, LOT_ORDER, limit=limit, key=lambda x: (x.id,))


def incoming_shipments(
    *, session: Session, actor: Actor, open_only: bool = True, limit: int = 200
) -> list[tuple[Shipment, Lot]]:
    """Shipments addressed to the actor's organisation, newest first, each with its lot."""
    if actor.organisation_id is None:
        return []
    query = (
        select(Shipment, Lot)
        .join(Lot, col(Lot.id) == col(Shipment.lot_id))
        .where(col(Shipment.to_organisation_id) == actor.organisation_id)
    )
    if open_only:
        query = query.where(col(Shipment.status) == ShipmentStatus.OPEN)
    return list(session.exec(query.order_by(col(Shipment.id).desc()).limit(limit)).all())


def get_incoming(*, session: Session, actor: Actor, shipment_id: int) -> Shipment:
    """A shipment addressed to the actor's organisation, else NotFound (others' are not theirs to know of)."""
    shipment = session.get(Shipment, shipment_id)
    if shipment is None or actor.organisation_id is None or shipment.to_organisation_id != actor.organisation_id:
        raise NotFound(f"Shipment {shipment_id} not found")
    return shipment


def outgoing_shipments(*, session: Session, actor: Actor, limit: int = 200) -> list[tuple[Shipment, Lot]]:
    """Shipments the actor's organisation sent, newest first, each with its lot."""
    if actor.organisation_id is None:
        return []
    return list(
        session.exec(
            select(Shipment, Lot)
            .join(Lot, col(Lot.id) == col(Shipment.lot_id))
            .where(col(Shipment.from_organisation_id) == actor.organisation_id)
            .order_by(col(Shipment.shipped_at).desc(), col(Shipment.id).desc())
            .limit(limit)
        ).all()
    )


# The roles that record for their organisation: who is offered what to do with a lot it holds.
_WRITERS = (Role.MEMBER, Role.ORG_ADMIN)


def allowed_actions(*, session: Session, actor: Actor, lot: Lot) -> list[str]:
    """What a lot's page offers the actor: ship, print, store and sell to a writer of an organisation that
    holds some of an active lot; pack too while labelled packages of it are in no carton yet."""
    org = actor.organisation_id
    if actor.role not in _WRITERS or org is None or lot.status is not LotStatus.ACTIVE:
        return []
    if not held_by(session=session, lot_id=lot.id, organisation_id=org):  # type: ignore[arg-type]
        return []
    return ["ship", "print", "store", "sell"] + (["pack"] if has_loose_units(session=session, lot_id=lot.id) else [])  # type: ignore[arg-type]


def inputs_of(*, session: Session, lot_id: int) -> list[Lot]:
    """The lots a lot was made from directly (its transformation's inputs), by id; none for a harvest."""
    return list(
        session.exec(
            select(Lot)
            .join(LotEdge, col(LotEdge.parent_lot_id) == col(Lot.id))
            .where(col(LotEdge.child_lot_id) == lot_id)
            .order_by(col(Lot.id))
        )
    )


def lots_by_id(*, session: Session, ids: Iterable[int | None]) -> dict[int, Lot]:
    """Lots by id (ids of no lot are left out): one read for the lots a page names."""
    wanted = sorted({i for i in ids if i is not None})
    found: dict[int, Lot] = {}
    for chunk in in_chunks(wanted):
        found.update((lot.id, lot) for lot in session.exec(select(Lot).where(col(Lot.id).in_(chunk))))  # type: ignore[misc]
    return found
