"""Lineage: backward (to the growing areas) and forward (to every descendant and holder) traces,
as recursive SQL that runs on SQLite and PostgreSQL, and their FSMA 204 export."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import text
from sqlmodel import Session, SQLModel, col, select

from trace.access import Actor
from trace.errors import NotFound
from trace.events.models import Event, EventLot, EventType
from trace.events.query import events_public
from trace.events.schemas import EventPublic
from trace.locations import Location
from trace.lots import Holding, Lot, LotEdge, LotStatus, involved
from trace.organisations import Organisation
from trace.products import Product
from trace.timeutil import localise
from trace.units import Unit


class Direction(StrEnum):
    BACKWARD = "backward"
    FORWARD = "forward"


# UNION (not UNION ALL) drops paths already seen, so diamonds (merge then split) stay finite.
_SQL = {
    Direction.BACKWARD: """
        WITH RECURSIVE walk(id) AS (
            SELECT CAST(:root AS INTEGER)
            UNION
            SELECT e.parent_lot_id FROM lot_edge e JOIN walk w ON e.child_lot_id = w.id
        ) SELECT id FROM walk""",
    Direction.FORWARD: """
        WITH RECURSIVE walk(id) AS (
            SELECT CAST(:root AS INTEGER)
            UNION
            SELECT e.child_lot_id FROM lot_edge e JOIN walk w ON e.parent_lot_id = w.id
        ) SELECT id FROM walk""",
}


def lot_ids(*, session: Session, lot_id: int, direction: Direction) -> list[int]:
    """The lot and all its ancestors (backward) or descendants (forward)."""
    return [row[0] for row in session.connection().execute(text(_SQL[direction]), {"root": lot_id})]


class TraceLot(SQLModel):
    id: int
    gtin: str
    lot_code: str
    product_name: str
    quantity: Decimal
    unit: str
    status: LotStatus
    production_date: date
    expiry_date: date | None
    producer_organisation_id: int
    producer_name: str
    origin_location_id: int | None
    origin_location_name: str | None = None
    planting_area_code: str | None = None
    commune_code: str | None = None
    holders: list[dict[str, object]] = []
    units: int = 0


class TraceEdge(SQLModel):
    parent_lot_id: int
    child_lot_id: int
    event_id: str


class Trace(SQLModel):
    root_lot_id: int
    direction: Direction
    lots: list[TraceLot]
    edges: list[TraceEdge]
    events: list[EventPublic]


def trace(*, session: Session, actor: Actor, lot_id: int, direction: Direction) -> Trace:
    """A lot's trace in one direction, every event on every lot in it (redacted for the actor)."""
    root = session.get(Lot, lot_id)
    if root is None or not involved(session=session, actor=actor, lot=root):
        raise NotFound(f"Lot {lot_id} not found")
    ids = lot_ids(session=session, lot_id=lot_id, direction=direction)
    lots = list(session.exec(select(Lot).where(col(Lot.id).in_(ids)).order_by(Lot.id)))  # type: ignore[arg-type]
    edges = list(session.exec(select(LotEdge).where(col(LotEdge.child_lot_id).in_(ids), col(LotEdge.parent_lot_id).in_(ids))))
    products = {p.id: p for p in session.exec(select(Product).where(col(Product.id).in_({x.product_id for x in lots})))}
    orgs = {o.id: o for o in session.exec(select(Organisation).where(
        col(Organisation.id).in_({x.producer_organisation_id for x in lots})))}
    places = {p.id: p for p in session.exec(select(Location).where(
        col(Location.id).in_({x.origin_location_id for x in lots if x.origin_location_id})))}
    held: dict[int, list[dict[str, object]]] = defaultdict(list)
    units: dict[int, int] = {}
    if direction is Direction.FORWARD:
        for h in session.exec(select(Holding).where(col(Holding.lot_id).in_(ids), Holding.quantity > 0)):
            held[h.lot_id].append({"organisation_id": h.organisation_id, "quantity": h.quantity})
        from sqlalchemy import func
        units = dict(session.exec(select(Unit.lot_id, func.count()).where(col(Unit.lot_id).in_(ids)).group_by(Unit.lot_id)).all())  # type: ignore[arg-type]
    event_ids = select(EventLot.event_id).where(col(EventLot.lot_id).in_(ids))
    events = list(session.exec(select(Event).where(col(Event.id).in_(event_ids)).order_by(Event.event_time, Event.id)))  # type: ignore[arg-type]
    corrections = list(session.exec(select(Event).where(col(Event.corrects_event_id).in_([e.id for e in events]))))
    out_lots = []
    for lot in lots:
        place = places.get(lot.origin_location_id)
        out_lots.append(TraceLot(
            id=lot.id, gtin=lot.gtin, lot_code=lot.lot_code, product_name=products[lot.product_id].name_vi,  # type: ignore[arg-type]
            quantity=lot.quantity, unit=lot.unit, status=lot.status, production_date=lot.production_date,
            expiry_date=lot.expiry_date, producer_organisation_id=lot.producer_organisation_id,
            producer_name=orgs[lot.producer_organisation_id].name, origin_location_id=lot.origin_location_id,
            origin_location_name=place.name if place else None, planting_area_code=place.code if place else None,
            commune_code=place.commune_code if place else None, holders=held.get(lot.id, []), units=units.get(lot.id, 0),  # type: ignore[arg-type]
        ))
    return Trace(
        root_lot_id=lot_id, direction=direction, lots=out_lots,
        edges=[TraceEdge(parent_lot_id=e.parent_lot_id, child_lot_id=e.child_lot_id, event_id=e.event_id) for e in edges],
        events=events_public(session=session, actor=actor, events=sorted(events + corrections, key=lambda e: (e.event_time, e.id))),
    )


CTE = {
    EventType.HARVEST: "Harvesting", EventType.SHIP: "Shipping", EventType.RECEIVE: "Receiving",
    EventType.TRANSFORM: "Transformation", EventType.PACK: "Initial Packing", EventType.COMMISSION: "Labelling",
    EventType.SELL: "Retail Sale", EventType.STORE: "Storing", EventType.INSPECT: "Inspection",
    EventType.LOSS: "Disposal", EventType.CORRECTION: "Correction",
}
FSMA_COLUMNS = [
    "traceability_lot_code", "gtin", "lot_code", "product_description", "critical_tracking_event",
    "event_date", "event_time", "quantity", "unit_of_measure", "location_description", "location_identifier",
    "commune_code", "traceability_lot_code_source", "ship_from", "ship_to", "input_traceability_lot_codes",
    "reference_document_type", "reference_document_number", "recorded_by", "event_id", "corrected_by_event_id",
]


def fsma_csv(*, session: Session, actor: Actor, lot_id: int, direction: Direction) -> str:
    """The trace as a sortable spreadsheet: one row per lot per critical tracking event (FSMA 204 KDEs)."""
    result = trace(session=session, actor=actor, lot_id=lot_id, direction=direction)
    lots = {lot.id: lot for lot in result.lots}
    missing = {row.lot_id for e in result.events for row in e.lots} - set(lots)
    for extra in session.exec(select(Lot).where(col(Lot.id).in_(missing))):
        product = session.get(Product, extra.product_id)
        lots[extra.id] = TraceLot(  # type: ignore[index]
            id=extra.id, gtin=extra.gtin, lot_code=extra.lot_code, product_name=product.name_vi if product else "",  # type: ignore[arg-type]
            quantity=extra.quantity, unit=extra.unit, status=extra.status, production_date=extra.production_date,
            expiry_date=extra.expiry_date, producer_organisation_id=extra.producer_organisation_id,
            producer_name="", origin_location_id=extra.origin_location_id)
    org_ids = {e.organisation_id for e in result.events} | {e.source_organisation_id for e in result.events if e.source_organisation_id} \
        | {e.destination_organisation_id for e in result.events if e.destination_organisation_id}
    orgs = {o.id: o for o in session.exec(select(Organisation).where(col(Organisation.id).in_(org_ids)))}
    places = {p.id: p for p in session.exec(select(Location).where(col(Location.id).in_({e.location_id for e in result.events if e.location_id})))}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FSMA_COLUMNS)
    writer.writeheader()
    for event in result.events:
        local = localise(event.event_time, event.event_tz_offset)
        place = places.get(event.location_id) if event.location_id else None
        inputs = [lots[r.lot_id] for r in event.lots if r.role == "input" and r.lot_id in lots]
        docs = event.biz_transactions or []
        origin = None
        for row in event.lots or [None]:  # type: ignore[list-item]
            lot = lots.get(row.lot_id) if row else None
            if lot is not None and lot.origin_location_id:
                origin = session.get(Location, lot.origin_location_id)
            writer.writerow({
                "traceability_lot_code": f"(01){lot.gtin}(10){lot.lot_code}" if lot else "",
                "gtin": lot.gtin if lot else "", "lot_code": lot.lot_code if lot else "",
                "product_description": lot.product_name if lot else "",
                "critical_tracking_event": CTE[event.type], "event_date": local.date().isoformat(),
                "event_time": local.isoformat(), "quantity": row.quantity if row and row.quantity is not None else "",
                "unit_of_measure": row.unit if row and row.unit else "",
                "location_description": place.name if place else "",
                "location_identifier": (place.gln or place.code or f"location:{place.id}") if place else "",
                "commune_code": place.commune_code if place else "",
                "traceability_lot_code_source": (origin.code or origin.name) if origin else "",
                "ship_from": orgs[event.source_organisation_id].name if event.source_organisation_id else "",
                "ship_to": orgs[event.destination_organisation_id].name if event.destination_organisation_id else "",
                "input_traceability_lot_codes": " ".join(f"(01){i.gtin}(10){i.lot_code}" for i in inputs) if row and row.role == "output" else "",
                "reference_document_type": " ".join(d["type"] for d in docs),
                "reference_document_number": " ".join(d["id"] for d in docs),
                "recorded_by": orgs[event.organisation_id].name if event.organisation_id in orgs else "",
                "event_id": event.id, "corrected_by_event_id": event.corrected_by_event_id or "",
            })
    return buffer.getvalue()
