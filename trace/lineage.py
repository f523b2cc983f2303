"""Lineage: backward (to the growing areas) and forward (to every descendant and holder) traces,
as recursive SQL that runs on SQLite and PostgreSQL, and their FSMA 204 export."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, String, any_, bindparam, func, text
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, SQLModel, col, or_, select

from trace.access import Actor
from trace.errors import NotFound
from trace.events.models import Event, EventLot, EventType
from trace.events.query import events_public
from trace.events.schemas import EventPublic
from trace.locations import Location
from trace.lots import Holding, Lot, LotEdge, LotStatus, involved_in
from trace.organisations import Organisation
from trace.products import Product
from trace.sqltypes import fast_model
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


CHUNK = 5_000  # ids per IN list: PostgreSQL takes at most 65,535 parameters in a statement


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


SMALL = 64  # below this many ids SQLite answers a plain IN list faster than json_each


def _among(column: Any, dialect: str, size: int) -> Any:
    """``column IN (the ids)`` with the ids as ONE parameter (an array; JSON on SQLite for large
    sets): no expanding IN to render per call, and no limit on bound parameters."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(Integer)))
    if size <= SMALL:
        return column.in_(bindparam("ids", expanding=True))
    values = func.json_each(bindparam("ids", type_=String)).table_valued("value")
    return column.in_(sa_select(values.c.value))


def _ids(dialect: str, chunk: list[int], size: int) -> dict[str, Any]:
    """The parameter for a statement built by :func:`_among` with the same ``size``."""
    return {"ids": json.dumps(chunk) if dialect == "sqlite" and size > SMALL else chunk}


def _dicts(result: Any) -> Iterator[dict[str, Any]]:
    # The column names once per result, not once per row (RowMapping rebuilds them each time).
    keys = list(result.keys())
    return (dict(zip(keys, row, strict=True)) for row in result)


def _lot_rows(session: Session, ids: list[int]) -> list[Any]:
    lot, product, org, place = (Lot.__table__, Product.__table__, Organisation.__table__,  # type: ignore[attr-defined]
                                Location.__table__)  # type: ignore[attr-defined]
    query = (
        sa_select(lot.c.id, lot.c.gtin, lot.c.lot_code, lot.c.quantity, lot.c.unit, lot.c.status, lot.c.production_date,
               lot.c.expiry_date, lot.c.producer_organisation_id, lot.c.origin_location_id,
               product.c.name_vi.label("product_name"), org.c.name.label("producer_name"),
               place.c.name.label("origin_location_name"), place.c.code.label("planting_area_code"),
               place.c.commune_code)
        .join(product, product.c.id == lot.c.product_id)
        .join(org, org.c.id == lot.c.producer_organisation_id)
        .outerjoin(place, place.c.id == lot.c.origin_location_id)
    )
    connection = session.connection()
    dialect = connection.dialect.name
    size = min(len(ids), CHUNK)
    query = query.where(_among(lot.c.id, dialect, size))
    rows: list[Any] = []
    for chunk in _chunks(ids):
        rows.extend(_dicts(connection.execute(query, _ids(dialect, chunk, size))))
    return sorted(rows, key=lambda row: row["id"])


def trace(*, session: Session, actor: Actor, lot_id: int, direction: Direction) -> Trace:
    """A lot's trace in one direction, every event on every lot in it (redacted for the actor).

    Lots, edges and holders are read with a few Core queries (no ORM objects per lot): a recall
    can reach thousands of lots.
    """
    connection = session.connection()
    lot = Lot.__table__  # type: ignore[attr-defined]
    producer = connection.execute(sa_select(lot.c.producer_organisation_id).where(lot.c.id == lot_id)).scalar()
    # Who may see it is settled before any walking is done.
    if producer is None or not involved_in(session=session, actor=actor, lot_id=lot_id, producer_id=producer):
        raise NotFound(f"Lot {lot_id} not found")
    ids = lot_ids(session=session, lot_id=lot_id, direction=direction)
    rows = _lot_rows(session, ids)
    edge, holding, unit, event_lot = (LotEdge.__table__, Holding.__table__, Unit.__table__,  # type: ignore[attr-defined]
                                      EventLot.__table__)  # type: ignore[attr-defined]
    # Every edge inside the closure has its child (backward) or its parent (forward) in it.
    inside = edge.c.child_lot_id if direction is Direction.BACKWARD else edge.c.parent_lot_id
    edges: list[TraceEdge] = []
    held: dict[int, list[dict[str, object]]] = defaultdict(list)
    units: dict[int, int] = {}
    event_ids: set[str] = set()
    dialect, size = connection.dialect.name, min(len(ids), CHUNK)
    edges_of = sa_select(edge.c.parent_lot_id, edge.c.child_lot_id, edge.c.event_id).where(_among(inside, dialect, size))
    holders_of = sa_select(holding).where(_among(holding.c.lot_id, dialect, size), holding.c.quantity > 0)
    units_of = sa_select(unit.c.lot_id, func.count()).where(_among(unit.c.lot_id, dialect, size)).group_by(unit.c.lot_id)
    events_of = sa_select(event_lot.c.event_id).where(_among(event_lot.c.lot_id, dialect, size))
    for chunk in _chunks(ids):
        param = _ids(dialect, chunk, size)
        edges.extend(fast_model(TraceEdge, row) for row in _dicts(connection.execute(edges_of, param)))
        if direction is Direction.FORWARD:
            for h in connection.execute(holders_of, param):
                held[h.lot_id].append({"organisation_id": h.organisation_id, "quantity": h.quantity})
            units.update((lot, count) for lot, count in connection.execute(units_of, param))
        event_ids.update(connection.execute(events_of, param).scalars())
    events: list[Event] = []
    ordered = sorted(event_ids)
    for start in range(0, len(ordered), CHUNK):
        part = ordered[start:start + CHUNK]
        # The events, and the corrections that declared any of them erroneous.
        events.extend(session.exec(select(Event).where(
            or_(col(Event.id).in_(part), col(Event.corrects_event_id).in_(part)))))
    lots = [fast_model(TraceLot, {**row, "holders": held.get(row["id"], []), "units": units.get(row["id"], 0)})
            for row in rows]
    return Trace.model_construct(
        root_lot_id=lot_id, direction=direction, lots=lots, edges=edges,
        events=events_public(session=session, actor=actor, events=sorted(
            {e.id: e for e in events}.values(), key=lambda e: (e.event_time, e.id))),
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
