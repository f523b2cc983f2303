"""Lineage: backward (to the growing areas) and forward (to every descendant and holder) traces,
as recursive SQL that runs on SQLite and PostgreSQL, and their FSMA 204 export."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, col, or_, select

from trace import csvfile, spreadsheets
from trace.access import Actor
from trace.errors import NotFound
from trace.events.models import Event, EventType
from trace.events.query import events_public
from trace.events.schemas import EventPublic
from trace.locations import Location
from trace.lots import QTY, Lot, LotStatus, involved_in
from trace.organisations import Organisation, PartyRow, shown_party
from trace.platform.timeutil import localise
from trace.products import Product


class Direction(StrEnum):
    BACKWARD = "backward"
    FORWARD = "forward"


# Each direction's step: the column that leads on, and the one the walk has reached.
_STEP = {Direction.BACKWARD: ("parent_lot_id", "child_lot_id"), Direction.FORWARD: ("child_lot_id", "parent_lot_id")}
# UNION (not UNION ALL) drops paths already seen, so diamonds (merge then split) stay finite.
_WALK = """WITH RECURSIVE walk(id) AS (
    SELECT CAST({root} AS INTEGER)
    UNION
    SELECT e.{next} FROM lot_edge e JOIN walk w ON e.{this} = w.id
) SELECT id FROM walk"""
_ROOT = {"sqlite": ":root", "postgresql": "%(root)s"}  # the driver's parameter style


@cache
def _walk(dialect: str, direction: Direction) -> str:
    following, this = _STEP[direction]
    return _WALK.format(root=_ROOT[dialect], next=following, this=this)


@contextmanager
def _driver_cursor(connection: Connection) -> Iterator[Any]:
    """A DB-API cursor on the connection, for reads where SQLAlchemy's set-up per statement would
    cost more than the statement. Its errors come out as SQLAlchemy's (the API answers a busy
    database with 503 by them) and a lost connection is invalidated, as SQLAlchemy would."""
    cursor = connection.connection.cursor()
    try:
        yield cursor
    except connection.dialect.loaded_dbapi.Error as error:
        lost = connection.dialect.is_disconnect(error, connection.connection, cursor)
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(
            None,
            None,
            error,
            connection.dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=connection.dialect,
        ) from error
    finally:
        cursor.close()


def lot_ids(*, session: Session, lot_id: int, direction: Direction) -> list[int]:
    """The lot and all its ancestors (backward) or descendants (forward)."""
    connection = session.connection()
    with _driver_cursor(connection) as cursor:
        cursor.execute(_walk(connection.dialect.name, direction), {"root": lot_id})
        return [row[0] for row in cursor.fetchall()]


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


CHUNK = 5_000  # event ids per IN list: PostgreSQL takes at most 65,535 parameters in a statement

# A trace is two statements on the DB-API cursor of the session's connection: SQLAlchemy's cost per
# statement (~50 µs to build, find the compiled form and set up a result) was most of a small
# trace, and its rows and validated models most of a large one.
#  1. The walk and, by the ids it found, the lots' own columns and (forward) their holders and unit
#     counts. Holders are a LEFT JOIN, one row per lot and holder, so quantities come back as
#     stored. The walk starts from the root's row: an unknown lot gives no rows.
#  2. The rest, by the ids the first one found, each list as ONE parameter (a PostgreSQL array, a
#     JSON array on SQLite: no limit on bound parameters), in rows of five shapes told apart by
#     their first column: the edges inside the walk, the ids of the events on its lots, and the
#     names of its products, producers and origins. A recall has a thousand lots but a handful of
#     those: joined to each lot, their five name columns were a third of what it read.
# "Among the walked ids" and "among the ids of a parameter", in each dialect's words. Joining the
# walk to lot makes either planner scan all of lot (it cannot know the walk is small); reading an
# id list from the walk keeps to the primary key.
_AMONG = {
    "sqlite": ("IN (SELECT id FROM walk)", "IN (SELECT value FROM json_each(:{}))"),
    "postgresql": ("= ANY(ARRAY(SELECT id FROM walk))", "= ANY(%({})s)"),
}
# Beyond 64 bits psycopg sends a numeric, which PostgreSQL compares with every id (no index), and
# sqlite3 refuses it: no lot has such an id.
_IDS = range(-(2**63), 2**63)
_PRODUCER = "SELECT producer_organisation_id FROM lot WHERE id = {root}"
_LOTS = """WITH RECURSIVE walk(id) AS (
    SELECT id FROM lot WHERE id = {root}
    UNION
    SELECT e.{next} FROM lot_edge e JOIN walk w ON e.{this} = w.id)
SELECT l.id, l.gtin, l.lot_code, l.product_id, l.quantity, l.unit, l.status, l.production_date, l.expiry_date,
       l.producer_organisation_id, l.origin_location_id{holders}
FROM lot l{join}
WHERE l.id {walked} ORDER BY l.id{order}"""
_HOLDERS = {
    "holders": ", h.organisation_id, h.quantity, (SELECT count(*) FROM unit u WHERE u.lot_id = l.id)",
    "join": " LEFT JOIN holding h ON h.lot_id = l.id AND h.quantity > 0",
    "order": ", h.organisation_id",
}
_EDGE, _EVENT, _PRODUCT, _ORGANISATION, _PLACE = range(5)
_REST = f"""SELECT {_EDGE}, parent_lot_id, child_lot_id, event_id, NULL, NULL FROM lot_edge WHERE {{this}} {{lots}}
UNION ALL SELECT {_EVENT}, NULL, NULL, event_id, NULL, NULL
  FROM (SELECT DISTINCT event_id FROM event_lot WHERE lot_id {{lots}}) ev
UNION ALL SELECT {_PRODUCT}, id, NULL, name_vi, NULL, NULL FROM product WHERE id {{products}}
UNION ALL SELECT {_ORGANISATION}, id, CAST(personal_name_consent AS INTEGER), name, kind, commune_code
    FROM organisation WHERE id {{organisations}}
UNION ALL SELECT {_PLACE}, id, NULL, name, code, commune_code FROM location WHERE id {{places}}"""
_LISTS = ("lots", "products", "organisations", "places")


@cache
def _statements(dialect: str, direction: Direction) -> tuple[str, str, str]:
    """The producer, lots and rest statements for a dialect and direction."""
    root, (walked, among) = _ROOT[dialect], _AMONG[dialect]
    following, this = _STEP[direction]
    holders = _HOLDERS if direction is Direction.FORWARD else dict.fromkeys(_HOLDERS, "")
    lots = _LOTS.format(root=root, next=following, this=this, walked=walked, **holders)
    rest = _REST.format(this=this, **{name: among.format(name) for name in _LISTS})
    return _PRODUCER.format(root=root), lots, rest


def _json_ids(ids: list[int]) -> str:
    # What json.dumps writes for a list of ints, in a third of the time (a trace sends four).
    return f"[{','.join(map(str, ids))}]"


M = TypeVar("M", bound=SQLModel)


def _construct(model: type[M], values: Iterable[dict[str, Any]]) -> list[M]:
    """Instances of a non-table model from already-valid values, every field given: what
    :func:`trace.platform.sqltypes.fast_model` does, in one loop and without SQLModel's ``__new__`` (which
    sets the same slots once more); a recall builds a few thousand."""
    new, put, every = object.__new__, object.__setattr__, set(model.model_fields)
    out = []
    for value in values:
        row = new(model)
        put(row, "__dict__", value)
        # One set for all: every field is set, so setting one later adds nothing to it.
        put(row, "__pydantic_fields_set__", every)
        put(row, "__pydantic_extra__", None)
        put(row, "__pydantic_private__", None)
        out.append(row)
    return out


_STATUS = {status.value: status for status in LotStatus}
_QTY = f"%.{QTY.scale}f"  # how SQLAlchemy's Numeric turns SQLite's REAL or INTEGER into a Decimal


def _lots(rows: Sequence[Any], names: dict[int, dict[Any, Any]], sqlite: bool, forward: bool) -> list[TraceLot]:
    """The lots statement's rows (by lot id; forward: one per lot and holder) as TraceLots."""
    status, fmt, day = _STATUS, _QTY, date.fromisoformat
    products, organisations, places = names[_PRODUCT], names[_ORGANISATION], names[_PLACE]
    lots: list[dict[str, Any]] = []
    holders: list[dict[str, object]] = []
    last = None
    for row in rows:
        if row[0] != last:
            last, holders = row[0], []
            if sqlite:  # dates are text there: converted as SQLAlchemy's types would
                quantity, made, expires = Decimal(fmt % row[4]), day(row[7]), row[8] and day(row[8])
            else:
                quantity, made, expires = row[4], row[7], row[8]
            place, code, commune = places[row[10]]
            lots.append(
                {
                    "id": last,
                    "gtin": row[1],
                    "lot_code": row[2],
                    "product_name": products[row[3]],
                    "quantity": quantity,
                    "unit": row[5],
                    "status": status[row[6]],
                    "production_date": made,
                    "expiry_date": expires,
                    "producer_organisation_id": row[9],
                    "producer_name": organisations[row[9]],
                    "origin_location_id": row[10],
                    "origin_location_name": place,
                    "planting_area_code": code,
                    "commune_code": commune,
                    "holders": holders,
                    "units": row[13] if forward else 0,
                }
            )
        if forward and row[11] is not None:
            holders.append({"organisation_id": row[11], "quantity": Decimal(fmt % row[12]) if sqlite else row[12]})
    return _construct(TraceLot, lots)


def trace(*, session: Session, actor: Actor, lot_id: int, direction: Direction) -> Trace:
    """A lot's trace in one direction, every event on every lot in it (redacted for the actor).

    Lots, edges, holders and event ids come from two statements on the driver's own cursor, without
    ORM objects or SQLAlchemy rows: a recall can reach thousands of lots.
    """
    if lot_id not in _IDS:
        raise NotFound(f"Lot {lot_id} not found")
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    producer_sql, lots_sql, rest_sql = _statements(connection.dialect.name, direction)
    with _driver_cursor(connection) as cursor:
        # Who may see it is settled before any walking is done; those who read everything only
        # need the lot to exist, which the walk's first step checks.
        if not actor.reads_everything:
            cursor.execute(producer_sql, {"root": lot_id})
            found = cursor.fetchone()
            if found is None or not involved_in(session=session, actor=actor, lot_id=lot_id, producer_id=found[0]):
                raise NotFound(f"Lot {lot_id} not found")
        cursor.execute(lots_sql, {"root": lot_id})
        rows = cursor.fetchall()
        if not rows:
            raise NotFound(f"Lot {lot_id} not found")
        lists = (
            list(dict.fromkeys(row[0] for row in rows)),
            list({row[3] for row in rows}),
            list({row[9] for row in rows}),
            list({row[10] for row in rows} - {None}),
        )
        cursor.execute(rest_sql, dict(zip(_LISTS, map(_json_ids, lists) if sqlite else lists, strict=True)))
        rest = cursor.fetchall()
    names: dict[int, dict[Any, Any]] = {_PRODUCT: {}, _ORGANISATION: {}, _PLACE: {None: (None, None, None)}}
    edges: list[dict[str, Any]] = []
    event_ids: list[str] = []
    for kind, key, child, value, code, commune in rest:
        if kind == _EDGE:
            edges.append({"parent_lot_id": key, "child_lot_id": child, "event_id": value})
        elif kind == _EVENT:
            event_ids.append(value)
        elif kind == _ORGANISATION:  # the consent flag rides in the child column, the kind in the code one
            names[kind][key] = shown_party(PartyRow(key, code, value, commune, bool(child)), actor).name
        else:
            names[kind][key] = (value, code, commune) if kind == _PLACE else value
    return _construct(
        Trace,
        [
            {
                "root_lot_id": lot_id,
                "direction": direction,
                "lots": _lots(rows, names, sqlite, direction is Direction.FORWARD),
                "edges": _construct(TraceEdge, edges),
                "events": _events(session, actor, event_ids),
            }
        ],
    )[0]


def _events(session: Session, actor: Actor, event_ids: list[str]) -> list[EventPublic]:
    """The events, and the corrections that declared any of them erroneous, in time order."""
    events: dict[str, Event] = {}
    ordered = sorted(event_ids)
    for start in range(0, len(ordered), CHUNK):
        part = ordered[start : start + CHUNK]
        query = select(Event).where(or_(col(Event.id).in_(part), col(Event.corrects_event_id).in_(part)))
        events.update((event.id, event) for event in session.exec(query))
    return events_public(
        session=session, actor=actor, events=sorted(events.values(), key=lambda e: (e.event_time, e.record_time, e.id))
    )


# Every event type has a row, under this name in "critical_tracking_event": FSMA 204's own CTEs
# keep the rule's words; the other events on a lot are what an inspector following it needs as well
# (who stopped, released, recalled or relabelled it, and when), named for what they are, with
# their "reason". A type missing here was a KeyError, and a 500 for every trace that held one
# (issue 13): tests/trace/test_fsma_export.py fails while any type lacks a name.
CTE: dict[EventType, str] = {
    EventType.HARVEST: "Harvesting",
    EventType.SHIP: "Shipping",
    EventType.RECEIVE: "Receiving",
    EventType.TRANSFORM: "Transformation",
    EventType.PACK: "Initial Packing",
    EventType.COMMISSION: "Labelling",
    EventType.SELL: "Retail Sale",
    EventType.STORE: "Storing",
    EventType.INSPECT: "Inspection",
    EventType.LOSS: "Disposal",
    EventType.CORRECTION: "Correction",
    EventType.DECOMMISSION: "Label Voiding",
    EventType.HOLD: "Hold",
    EventType.RELEASE: "Hold Release",
    EventType.RECALL: "Recall",
    # A right names a designation and an organisation, not a lot, so no trace reaches one today;
    # it is named all the same, so that a right recorded on a lot one day is a row, not a 500.
    EventType.RIGHT: "Designation Right",
}
FSMA_COLUMNS = [
    "traceability_lot_code",
    "gtin",
    "lot_code",
    "product_description",
    "critical_tracking_event",
    "event_date",
    "event_time",
    "quantity",
    "unit_of_measure",
    "location_description",
    "location_identifier",
    "commune_code",
    "traceability_lot_code_source",
    "ship_from",
    "ship_to",
    "input_traceability_lot_codes",
    "reference_document_type",
    "reference_document_number",
    "recorded_by",
    "event_id",
    "corrected_by_event_id",
    "reason",
]


def fsma_csv(*, session: Session, actor: Actor, lot_id: int, direction: Direction) -> str:
    """The trace as a sortable spreadsheet: one row per lot per critical tracking event (FSMA 204 KDEs)."""
    rows = fsma_rows(session=session, actor=actor, lot_id=lot_id, direction=direction)
    return csvfile.text(FSMA_COLUMNS, ([row[c] for c in FSMA_COLUMNS] for row in rows))


def fsma_xlsx(*, session: Session, actor: Actor, lot_id: int, direction: Direction) -> bytes:
    """:func:`fsma_csv` as an XLSX workbook (bold frozen header, filters, numbers), as the recall report."""
    rows = fsma_rows(session=session, actor=actor, lot_id=lot_id, direction=direction)
    return spreadsheets.workbook(rows, columns=FSMA_COLUMNS, title=f"{direction} {lot_id}")


def fsma_rows(*, session: Session, actor: Actor, lot_id: int, direction: Direction) -> list[dict[str, Any]]:
    """The rows of :func:`fsma_csv`, by column name (quantities as decimals, "" where there is none)."""
    result = trace(session=session, actor=actor, lot_id=lot_id, direction=direction)
    lots = {lot.id: lot for lot in result.lots}
    missing = {row.lot_id for e in result.events for row in e.lots} - set(lots)
    for extra in session.exec(select(Lot).where(col(Lot.id).in_(missing))):
        product = session.get(Product, extra.product_id)
        lots[extra.id] = TraceLot(  # type: ignore[index]
            id=extra.id,  # type: ignore[arg-type]
            gtin=extra.gtin,
            lot_code=extra.lot_code,
            product_name=product.name_vi if product else "",
            quantity=extra.quantity,
            unit=extra.unit,
            status=extra.status,
            production_date=extra.production_date,
            expiry_date=extra.expiry_date,
            producer_organisation_id=extra.producer_organisation_id,
            producer_name="",
            origin_location_id=extra.origin_location_id,
        )
    org_ids = (
        {e.organisation_id for e in result.events}
        | {e.source_organisation_id for e in result.events if e.source_organisation_id}
        | {e.destination_organisation_id for e in result.events if e.destination_organisation_id}
    )
    orgs = {o.id: o for o in session.exec(select(Organisation).where(col(Organisation.id).in_(org_ids)))}
    places = {
        p.id: p
        for p in session.exec(
            select(Location).where(col(Location.id).in_({e.location_id for e in result.events if e.location_id}))
        )
    }
    out: list[dict[str, Any]] = []
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
            out.append(
                {
                    "traceability_lot_code": f"(01){lot.gtin}(10){lot.lot_code}" if lot else "",
                    "gtin": lot.gtin if lot else "",
                    "lot_code": lot.lot_code if lot else "",
                    "product_description": lot.product_name if lot else "",
                    "critical_tracking_event": CTE[event.type],
                    "event_date": local.date().isoformat(),
                    "event_time": local.isoformat(),
                    "quantity": row.quantity if row and row.quantity is not None else "",
                    "unit_of_measure": row.unit if row and row.unit else "",
                    "location_description": place.name if place else "",
                    "location_identifier": (place.gln or place.code or f"location:{place.id}") if place else "",
                    "commune_code": place.commune_code if place else "",
                    "traceability_lot_code_source": (origin.code or origin.name) if origin else "",
                    "ship_from": shown_party(orgs[event.source_organisation_id], actor).name
                    if event.source_organisation_id
                    else "",
                    "ship_to": shown_party(orgs[event.destination_organisation_id], actor).name
                    if event.destination_organisation_id
                    else "",
                    "input_traceability_lot_codes": " ".join(f"(01){i.gtin}(10){i.lot_code}" for i in inputs)
                    if row and row.role == "output"
                    else "",
                    "reference_document_type": " ".join(d["type"] for d in docs),
                    "reference_document_number": " ".join(d["id"] for d in docs),
                    "recorded_by": shown_party(orgs[event.organisation_id], actor).name
                    if event.organisation_id in orgs
                    else "",
                    "event_id": event.id,
                    "corrected_by_event_id": event.corrected_by_event_id or "",
                    "reason": _reason(event),
                }
            )
    return out


def _reason(event: EventPublic) -> str:
    """Why a hold, release, recall, voiding, loss or correction was recorded, as its payload says."""
    reason = event.payload.get("reason")
    return reason if isinstance(reason, str) else ""
