"""Derived state recomputed from the events alone, and compared row by row with what the tables hold.

The hash chain (chain.py) proves the events were not altered; this proves that everything built from
them was not either: each event's lot rows (``event_lot``), the holdings, the shipments, the lineage
edges, the lots (their quantities, dates and statuses), the units (status, carton) and the stored EPCIS
ids. Each check reads its tables as sorted streams, merged as they go (keyset order, a server-side
cursor on PostgreSQL), so memory stays bounded whatever the size of the log: a page of events, or the
units of a chunk of lots, at a time. The first row that differs is named and the check stops there.

What an event implies, by type (the recorders in capture.py, corrections.py, recalls/ and
designations/rights.py make exactly these changes):

- harvest: an output row for its new lot (``event.lot_id``), +quantity to the organisation;
  transform: an input row per input (-quantity), an output row per new lot (+quantity), a lineage
  edge from every input to every output; ship, sell, loss: -quantity; receive: +quantity;
  commission, store, inspect, hold, release: a row without quantity on the event's lot; decommission
  and pack: one such row per lot of the units they name; recall: one per lot of its reach (the
  recall's ``recall_lot`` rows, as many as its payload counts); a right to use and a correction: none.
- The scans' figures (``scan_tally``, ``scan_sighting``, ``scan_bucket``) are recomputed from the scans
  by :mod:`trace.scans.check`, after the tables the events make; the dashboard's lots and codes per
  quarter hour (``lot_bucket``, ``code_bucket``) from the lots, events and units (checked by then) by
  :mod:`trace.reports.tally_check`.
- A corrected event's custody changes are undone: its deltas count for nothing, its outputs are
  cancelled, its lineage edges gone, its shipment cancelled, its units void (a commission), valid
  again (a decommission) or out of their carton (a pack).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

from sqlalchemy import Connection, case, func, literal, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from trace.epcis import ids as epcis_ids
from trace.epcis import render, vocab
from trace.events import chain
from trace.events.models import Event, EventLot, EventType
from trace.lots import Holding, Lot, LotEdge, LotStatus, Shipment, ShipmentStatus
from trace.platform import recount
from trace.platform.sqltypes import in_chunks
from trace.platform.timeutil import localise
from trace.recalls.models import Recall, RecallLot
from trace.reports import tally_check
from trace.scans import check as scan_check
from trace.transparency import verify as transparency
from trace.units import Unit, UnitStatus, serials_digest

Progress = Callable[[int], None]  # percent done, 0–100
PAGE = 2000
LOT_CHUNK = 200
Q = Decimal("0.001")

E = Event.__table__  # type: ignore[attr-defined]
EL = EventLot.__table__  # type: ignore[attr-defined]
LOTS = Lot.__table__  # type: ignore[attr-defined]
HOLDINGS = Holding.__table__  # type: ignore[attr-defined]
SHIPMENTS = Shipment.__table__  # type: ignore[attr-defined]
EDGES = LotEdge.__table__  # type: ignore[attr-defined]
UNITS = Unit.__table__  # type: ignore[attr-defined]
RECALLS = Recall.__table__  # type: ignore[attr-defined]
RECALL_LOTS = RecallLot.__table__  # type: ignore[attr-defined]
IDS = render.IDS
TALLIES = scan_check.TALLY
STAGES = (
    "event_lot",
    "holding",
    "shipment",
    "lot_edge",
    "lot",
    "unit",
    "epcis_event_id",
    *scan_check.CHECKS,  # the scans' figures, recomputed from the scans (trace/scans/check.py)
    *tally_check.CHECKS,  # the dashboard's lots and codes, from the lots, events and units
)


@dataclass
class Difference:
    """The first derived row that is not what the events imply."""

    table: str
    row: dict[str, Any]  # the row's key (or the event it should come from, for a missing row)
    problem: str


@dataclass
class DerivedReport:
    ok: bool
    checked: dict[str, int] = field(default_factory=dict)  # rows compared, per table
    difference: Difference | None = None


class _Found(Exception):
    def __init__(self, difference: Difference) -> None:
        self.difference = difference


def _differs(table: str, row: dict[str, Any], problem: str) -> NoReturn:
    raise _Found(Difference(table, row, problem))


def q(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Q)


def _payload(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str) else dict(value)


def _sorted(connection: Connection, column: Any) -> Any:
    """A string column in byte order on every database (PostgreSQL's default collation ignores '-')."""
    return column.collate("C") if connection.dialect.name == "postgresql" else column


def _stream(connection: Connection, query: Any) -> Iterator[Any]:
    return iter(connection.execute(query.execution_options(yield_per=PAGE)))


def _outer(left: Iterable[tuple[Any, Any]], right: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any, Any]]:
    """Two streams of (key, item) sorted by key → (key, left item or None, right item or None)."""
    a, b = iter(left), iter(right)
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            yield x[0], x[1], None  # type: ignore[index]
            x = next(a, None)
        elif x is None or y[0] < x[0]:
            yield y[0], None, y[1]
            y = next(b, None)
        else:
            yield x[0], x[1], y[1]
            x, y = next(a, None), next(b, None)


def _grouped(rows: Iterable[Any], key: Callable[[Any], Any]) -> Iterator[tuple[Any, list[Any]]]:
    for k, group in itertools.groupby(rows, key):
        yield k, list(group)


class _Meter:
    """Progress over the stages, each stage's share advanced by the rows it has read."""

    def __init__(self, on_progress: Progress | None, totals: dict[str, int]) -> None:
        self.on_progress, self.totals, self.last = on_progress, totals, -1
        self.stage = 0

    def at(self, stage: str, done: int) -> None:
        if self.on_progress is None:
            return
        index = STAGES.index(stage)
        total = max(self.totals.get(stage, 0), 1)
        percent = int(100 * (index + min(done / total, 1.0)) / len(STAGES))
        if percent != self.last:
            self.last = percent
            self.on_progress(percent)


# --- event_lot: what each event's lot rows must be ------------------------------------------------------

_ROW_FIELDS = ("lot_id", "role", "quantity", "unit", "organisation_id", "delta")


def _row(lot_id: Any, role: str, org: int, quantity: Any = None, unit: Any = None, delta: Any = 0) -> tuple[Any, ...]:
    return (lot_id, role, q(quantity), unit, org, q(delta))


def _implied_rows(
    event: Any, payload: dict[str, Any], outputs: dict[tuple[str, str], int], reach: dict[int, list[int]]
) -> list[tuple[Any, ...]]:
    kind, org, lot = EventType(event.type), event.organisation_id, event.lot_id
    quantity, unit = payload.get("quantity"), payload.get("unit")
    if kind == EventType.HARVEST:
        return [_row(lot, "output", org, quantity, unit, quantity)]
    if kind in (EventType.SHIP, EventType.SELL, EventType.LOSS):
        return [_row(lot, "object", org, quantity, unit, -Decimal(str(quantity)))]
    if kind == EventType.RECEIVE:
        return [_row(lot, "object", org, quantity, unit, quantity)]
    if kind == EventType.TRANSFORM:
        rows = [
            _row(i["lot_id"], "input", org, i["quantity"], i["unit"], -Decimal(str(i["quantity"])))
            for i in payload.get("inputs", [])
        ]
        for o in payload.get("outputs", []):
            rows.append(
                _row(outputs.get((o["gtin"], o["lot_code"])), "output", org, o["quantity"], o["unit"], o["quantity"])
            )
        return rows
    if kind in (EventType.COMMISSION, EventType.STORE, EventType.INSPECT, EventType.HOLD, EventType.RELEASE):
        return [_row(lot, "object", org)]
    if kind == EventType.DECOMMISSION:
        return [_row(lid, "object", org) for lid in sorted({u["lot_id"] for u in payload.get("units", [])})]
    if kind == EventType.PACK:
        return [_row(lid, "object", org) for lid in dict.fromkeys(c["lot_id"] for c in payload.get("children", []))]
    if kind == EventType.RECALL:
        also = [lid for lid in reach.get(payload.get("recall_id"), []) if lid != lot]  # type: ignore[arg-type]
        return [_row(lot, "object", org), *(_row(lid, "object", org) for lid in also)]
    return []  # a right to use, a correction


def _tuple(r: Any) -> tuple[Any, ...]:
    return (r.lot_id, r.role, q(r.quantity), r.unit, r.organisation_id, q(r.delta))


def _sort_key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in row)


def _check_event_lots(connection: Connection, meter: _Meter) -> int:
    last, seen_rows, done = "", 0, 0
    key = _sorted(connection, E.c.id)
    while True:
        events = connection.execute(
            select(E.c.id, E.c.type, E.c.organisation_id, E.c.lot_id, E.c.payload)
            .where(key > last)
            .order_by(key)
            .limit(PAGE)
        ).all()
        if not events:
            break
        ids = [e.id for e in events]
        found: dict[str, list[Any]] = {i: [] for i in ids}
        for chunk in in_chunks(ids):
            for r in connection.execute(select(EL).where(EL.c.event_id.in_(chunk)).order_by(EL.c.id)):
                found[r.event_id].append(r)
        payloads = {e.id: _payload(e.payload) for e in events}
        wanted = [
            (o["gtin"], o["lot_code"])
            for e in events
            if e.type == EventType.TRANSFORM.value
            for o in payloads[e.id].get("outputs", [])
        ]
        outputs: dict[tuple[str, str], int] = {}
        for chunk in in_chunks(sorted({code for _, code in wanted})):
            for lot in connection.execute(
                select(LOTS.c.id, LOTS.c.gtin, LOTS.c.lot_code).where(
                    LOTS.c.lot_code.in_(chunk), LOTS.c.gtin.in_(sorted({g for g, _ in wanted}))
                )
            ):
                outputs[(lot.gtin, lot.lot_code)] = lot.id
        recalls = [payloads[e.id].get("recall_id") for e in events if e.type == EventType.RECALL.value]
        reach: dict[int, list[int]] = {}
        for chunk in in_chunks([r for r in recalls if r is not None]):
            for r in connection.execute(
                select(RECALL_LOTS.c.recall_id, RECALL_LOTS.c.lot_id)
                .where(RECALL_LOTS.c.recall_id.in_(chunk))
                .order_by(RECALL_LOTS.c.recall_id, RECALL_LOTS.c.lot_id)
            ):
                reach.setdefault(r.recall_id, []).append(r.lot_id)
        for e in events:
            payload = payloads[e.id]
            if e.type == EventType.RECALL.value and len(reach.get(payload.get("recall_id"), [])) != payload.get(  # type: ignore[arg-type]
                "lots_affected"
            ):
                _differs(
                    "recall_lot",
                    {"recall_id": payload.get("recall_id")},
                    f"the recall reached {payload.get('lots_affected')} lot(s); "
                    f"{len(reach.get(payload.get('recall_id'), []))} are recorded",  # type: ignore[arg-type]
                )
            expected = sorted(_implied_rows(e, payload, outputs, reach), key=_sort_key)
            rows = found[e.id]
            actual = sorted((_tuple(r) for r in rows), key=_sort_key)
            if expected != actual:
                extra = [r for r in rows if _tuple(r) not in expected]
                missing = [x for x in expected if x not in actual]
                if extra:
                    bad = extra[0]
                    _differs(
                        "event_lot",
                        {"id": bad.id, "event_id": e.id, "lot_id": bad.lot_id},
                        f"the {e.type} event implies {_show(missing[0]) if missing else 'no such row'}; "
                        f"the row holds {_show(_tuple(bad))}",
                    )
                _differs(
                    "event_lot",
                    {"event_id": e.id, "lot_id": missing[0][0]},
                    f"the {e.type} event implies {_show(missing[0])}; there is no such row",
                )
            seen_rows += len(rows)
        done += len(events)
        meter.at("event_lot", done)
        last = ids[-1]
    total = connection.execute(select(func.count()).select_from(EL)).scalar_one()
    if total != seen_rows:
        _differs("event_lot", {}, f"{total - seen_rows} row(s) belong to no event")
    return seen_rows


def _show(row: tuple[Any, ...]) -> str:
    return ", ".join(f"{name}={value}" for name, value in zip(_ROW_FIELDS, row, strict=True))


# --- holdings: the sum of the uncorrected deltas --------------------------------------------------------


def _correction() -> Any:
    return aliased(E, name="fix")


def _check_holdings(connection: Connection, meter: _Meter) -> int:
    fix = _correction()
    implied = (
        select(
            EL.c.lot_id,
            EL.c.organisation_id,
            func.sum(case((fix.c.id.is_(None), EL.c.delta), else_=literal(0))).label("quantity"),
        )
        .select_from(EL.outerjoin(fix, fix.c.corrects_event_id == EL.c.event_id))
        .where(EL.c.delta != 0)
        .group_by(EL.c.lot_id, EL.c.organisation_id)
        .order_by(EL.c.lot_id, EL.c.organisation_id)
    )
    held = select(HOLDINGS.c.lot_id, HOLDINGS.c.organisation_id, HOLDINGS.c.quantity).order_by(
        HOLDINGS.c.lot_id, HOLDINGS.c.organisation_id
    )
    count = 0
    for key, want, have in _outer(
        (((r.lot_id, r.organisation_id), r) for r in _stream(connection, implied)),
        (((r.lot_id, r.organisation_id), r) for r in _stream(connection, held)),
    ):
        row = {"lot_id": key[0], "organisation_id": key[1]}
        if have is None:
            _differs("holding", row, f"the events leave {q(want.quantity)} held; there is no holding row")
        if want is None:
            _differs(
                "holding",
                row,
                f"no event moved this lot to or from this organisation; the row holds {q(have.quantity)}",
            )
        if q(want.quantity) != q(have.quantity):
            _differs("holding", row, f"the events leave {q(want.quantity)}; the row holds {q(have.quantity)}")
        count += 1
        if count % PAGE == 0:
            meter.at("holding", count)
    return count


# --- shipments: one per ship event, received by its uncorrected receipts --------------------------------


def _check_shipments(connection: Connection, meter: _Meter) -> int:
    fix = _correction()
    ships = (
        select(
            E.c.id,
            E.c.lot_id,
            E.c.organisation_id,
            E.c.destination_organisation_id,
            E.c.payload,
            E.c.event_time,
            fix.c.id.label("corrected_by"),
        )
        .select_from(E.outerjoin(fix, fix.c.corrects_event_id == E.c.id))
        .where(E.c.type == EventType.SHIP.value)
        .order_by(_sorted(connection, E.c.id))
    )
    shipments = select(SHIPMENTS).order_by(_sorted(connection, SHIPMENTS.c.event_id))
    count = 0
    for event_id, ship, row in _outer(
        ((r.id, r) for r in _stream(connection, ships)), ((r.event_id, r) for r in _stream(connection, shipments))
    ):
        if row is None:
            _differs("shipment", {"event_id": event_id}, "the ship event has no shipment")
        if ship is None:
            _differs("shipment", {"id": row.id, "event_id": event_id}, "no ship event made this shipment")
        payload = _payload(ship.payload)
        expected = {
            "lot_id": ship.lot_id,
            "from_organisation_id": ship.organisation_id,
            "to_organisation_id": ship.destination_organisation_id,
            "quantity": q(payload.get("quantity")),
            "shipped_at": _utc(ship.event_time),
        }
        for name, value in expected.items():
            found = (
                q(row.quantity)
                if name == "quantity"
                else _utc(row.shipped_at)
                if name == "shipped_at"
                else row._mapping[name]
            )
            if found != value:
                _differs(
                    "shipment",
                    {"id": row.id, "event_id": event_id},
                    f"{name}: the ship event says {value}; the row holds {found}",
                )
        if ship.corrected_by is not None and row.status != ShipmentStatus.CANCELLED.value:
            _differs(
                "shipment",
                {"id": row.id, "event_id": event_id},
                f"the ship event was corrected; the row is {row.status}",
            )
        count += 1
        if count % PAGE == 0:
            meter.at("shipment", count // 2)
    # Then by shipment id: what its uncorrected receipts add up to.
    receipts = (
        select(E.c.id, E.c.payload, fix.c.id.label("corrected_by"))
        .select_from(E.outerjoin(fix, fix.c.corrects_event_id == E.c.id))
        .where(E.c.type == EventType.RECEIVE.value)
        .order_by(E.c.payload["shipment_id"].as_integer(), _sorted(connection, E.c.id))
    )
    by_id = select(SHIPMENTS).order_by(SHIPMENTS.c.id)
    done = 0
    for shipment_id, got, row in _outer(
        _grouped(_stream(connection, receipts), lambda r: _payload(r.payload).get("shipment_id")),
        ((r.id, r) for r in _stream(connection, by_id)),
    ):
        if row is None:
            _differs("shipment", {"id": shipment_id}, "receive events name a shipment that does not exist")
        received = Decimal(0)
        for receipt in got or []:
            payload = _payload(receipt.payload)
            if payload.get("ship_event_id") != row.event_id:
                _differs(
                    "shipment",
                    {"id": row.id, "event_id": row.event_id},
                    f"receive event {receipt.id} names ship event {payload.get('ship_event_id')} for this shipment",
                )
            if receipt.corrected_by is None:
                received += Decimal(str(payload["quantity"]))
        if q(received) != q(row.received_quantity):
            _differs(
                "shipment",
                {"id": row.id, "event_id": row.event_id},
                f"received_quantity: the receive events add up to {q(received)}; "
                f"the row holds {q(row.received_quantity)}",
            )
        if row.status != ShipmentStatus.CANCELLED.value:
            status = ShipmentStatus.RECEIVED if received >= Decimal(row.quantity) else ShipmentStatus.OPEN
            if row.status != status.value:
                _differs(
                    "shipment",
                    {"id": row.id, "event_id": row.event_id},
                    f"status: the events make it {status}; the row is {row.status}",
                )
        done += 1
        if done % PAGE == 0:
            meter.at("shipment", (count + done) // 2)
    return count


def _utc(value: Any) -> Any:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC) if isinstance(value, datetime) else value


# --- lineage edges: every input to every output of an uncorrected transformation ------------------------


def _check_edges(connection: Connection, meter: _Meter) -> int:
    fix = _correction()
    transforms = (
        select(E.c.id, fix.c.id.label("corrected_by"))
        .select_from(E.outerjoin(fix, fix.c.corrects_event_id == E.c.id))
        .where(E.c.type == EventType.TRANSFORM.value)
        .order_by(_sorted(connection, E.c.id))
    )
    # The edges an event implies, from its (already verified) lot rows.
    rows = (
        select(EL.c.event_id, EL.c.lot_id, EL.c.role)
        .select_from(EL.join(E, E.c.id == EL.c.event_id))
        .where(E.c.type == EventType.TRANSFORM.value)
        .order_by(_sorted(connection, EL.c.event_id), EL.c.id)
    )
    edges = select(EDGES).order_by(_sorted(connection, EDGES.c.event_id), EDGES.c.parent_lot_id, EDGES.c.child_lot_id)
    implied = _grouped(_stream(connection, rows), lambda r: r.event_id)
    made = _outer(((r.id, r) for r in _stream(connection, transforms)), implied)
    count = 0
    for event_id, want, have in _outer(
        ((k, (t, lot_rows)) for k, t, lot_rows in made),
        _grouped(_stream(connection, edges), lambda r: r.event_id),
    ):
        transform, lot_rows = want if want is not None else (None, None)
        if transform is None:
            bad = (have or [None])[0]
            _differs(
                "lot_edge",
                {
                    "event_id": event_id,
                    **({"parent_lot_id": bad.parent_lot_id, "child_lot_id": bad.child_lot_id} if bad else {}),
                },
                f"no transformation {event_id} made this",
            )
        expected: set[tuple[int, int]] = set()
        if transform.corrected_by is None:
            inputs = [r.lot_id for r in lot_rows or [] if r.role == "input"]
            outputs = [r.lot_id for r in lot_rows or [] if r.role == "output"]
            expected = {(p, c) for p in inputs for c in outputs}
        found = {(e.parent_lot_id, e.child_lot_id) for e in have or []}
        for parent, child in sorted(found - expected):
            _differs(
                "lot_edge",
                {"parent_lot_id": parent, "child_lot_id": child, "event_id": event_id},
                "the transformation does not imply this edge",
            )
        for parent, child in sorted(expected - found):
            _differs(
                "lot_edge",
                {"parent_lot_id": parent, "child_lot_id": child, "event_id": event_id},
                "the transformation implies this edge; there is none",
            )
        count += len(found)
        if count % PAGE == 0:
            meter.at("lot_edge", count)
    return count


# --- lots: made by one event, and in the status the events leave them -----------------------------------


def _check_lots(connection: Connection, meter: _Meter) -> int:
    fix = _correction()
    made = (
        select(
            EL.c.lot_id,
            EL.c.quantity,
            EL.c.unit,
            E.c.id,
            E.c.type,
            E.c.organisation_id,
            E.c.location_id,
            E.c.event_time,
            E.c.event_tz_offset,
            E.c.payload,
            fix.c.id.label("corrected_by"),
        )
        .select_from(EL.join(E, E.c.id == EL.c.event_id).outerjoin(fix, fix.c.corrects_event_id == E.c.id))
        .where(EL.c.role == "output")
        .order_by(EL.c.lot_id)
    )
    kinds = (EventType.HOLD.value, EventType.RELEASE.value, EventType.RECALL.value)
    stops = (
        select(
            EL.c.lot_id,
            *(func.sum(case((E.c.type == k, 1), else_=0)).label(k) for k in kinds),
        )
        .select_from(EL.join(E, E.c.id == EL.c.event_id))
        .where(E.c.type.in_(kinds))
        .group_by(EL.c.lot_id)
        .order_by(EL.c.lot_id)
    )
    held = (
        select(HOLDINGS.c.lot_id, func.sum(HOLDINGS.c.quantity).label("quantity"))
        .group_by(HOLDINGS.c.lot_id)
        .order_by(HOLDINGS.c.lot_id)
    )
    flying = (
        select(SHIPMENTS.c.lot_id, func.count().label("open"))
        .where(SHIPMENTS.c.status == ShipmentStatus.OPEN.value)
        .group_by(SHIPMENTS.c.lot_id)
        .order_by(SHIPMENTS.c.lot_id)
    )
    lots = select(LOTS).order_by(LOTS.c.id)
    sides = _Beside(
        made=_grouped(_stream(connection, made), lambda r: r.lot_id),
        stops=((r.lot_id, r) for r in _stream(connection, stops)),
        held=((r.lot_id, r.quantity) for r in _stream(connection, held)),
        flying=((r.lot_id, r.open) for r in _stream(connection, flying)),
    )
    count = 0
    for lot in _stream(connection, lots):
        sides.advance(lot.id)
        made_by = sides.take("made", lot.id)
        row = {"id": lot.id, "gtin": lot.gtin, "lot_code": lot.lot_code}
        if not made_by:
            _differs("lot", row, "no harvest or transformation made this lot")
        if len(made_by) > 1:
            _differs("lot", row, f"{len(made_by)} events claim to have made this lot")
        source = made_by[0]
        payload = _payload(source.payload)
        entry = (
            payload
            if source.type == EventType.HARVEST.value
            else next(
                (o for o in payload.get("outputs", []) if (o["gtin"], o["lot_code"]) == (lot.gtin, lot.lot_code)), None
            )
        )
        if entry is None:
            _differs("lot", row, f"lot_code: transformation {source.id} made no lot {lot.gtin} {lot.lot_code}")
        expected = {
            "created_event_id": source.id,
            "producer_organisation_id": source.organisation_id,
            "origin_location_id": source.location_id,
            "product_id": entry["product_id"],
            "product_version": entry.get("product_version", 1),
            "gtin": entry["gtin"],
            "lot_code": entry["lot_code"],
            "quantity": q(entry["quantity"]),
            "unit": entry["unit"],
            "production_date": localise(_utc(source.event_time), source.event_tz_offset).date(),
            "expiry_date": entry.get("expiry_date"),
            "created_at": _utc(source.event_time),
        }
        for name, value in expected.items():
            found = lot._mapping[name]
            if name == "quantity":
                found = q(found)
            elif name == "created_at":
                found = _utc(found)
            elif name in ("production_date", "expiry_date"):
                found, value = (None if found is None else str(found)), (None if value is None else str(value))
            if found != value:
                _differs("lot", row, f"{name}: the events say {value}; the row holds {found}")
        stop = sides.take("stops", lot.id)
        if source.corrected_by is not None:
            status = LotStatus.CANCELLED
        elif stop is not None and stop.recall:
            status = LotStatus.RECALLED
        elif stop is not None and stop.hold > stop.release:
            status = LotStatus.ON_HOLD
        else:
            quantity = sides.take("held", lot.id) or 0
            empty = Decimal(str(quantity)) <= 0 and not sides.take("flying", lot.id)
            status = LotStatus.CONSUMED if empty else LotStatus.ACTIVE
        if lot.status != status.value:
            _differs("lot", row, f"status: the events leave it {status.value}; the row is {lot.status}")
        count += 1
        if count % PAGE == 0:
            meter.at("lot", count)
    sides.advance(None)
    return count


class _Beside:
    """Sorted (key, value) streams read alongside a stream of lots: each value of the lot in hand."""

    def __init__(self, **streams: Iterator[tuple[Any, Any]]) -> None:
        self.streams = streams
        self.ahead: dict[str, tuple[Any, Any] | None] = {name: next(s, None) for name, s in streams.items()}
        self.now: dict[str, Any] = {}

    def advance(self, key: Any) -> None:
        """Move every stream to ``key``; a value left behind belongs to no lot (None: to the end)."""
        self.now = {}
        for name, stream in self.streams.items():
            item = self.ahead[name]
            while item is not None and (key is None or item[0] < key):
                if name == "made":
                    _differs("lot", {"id": item[0]}, "an event made this lot; there is no such lot")
                item = next(stream, None)
            if item is not None and item[0] == key:
                self.now[name] = item[1]
                item = next(stream, None)
            self.ahead[name] = item

    def take(self, name: str, key: Any) -> Any:
        return self.now.get(name)


# --- units: as their commission made them, voided, packed -----------------------------------------------


def _check_units(connection: Connection, meter: _Meter) -> int:
    fix = _correction()
    kinds = (EventType.COMMISSION.value, EventType.DECOMMISSION.value, EventType.PACK.value)
    count, done = 0, 0
    lot_ids = _stream(connection, select(LOTS.c.id).order_by(LOTS.c.id))
    while chunk := [r.id for r in itertools.islice(lot_ids, LOT_CHUNK)]:
        expected: dict[tuple[int, str], dict[str, Any]] = {}
        voided: set[tuple[int, str]] = set()
        codes: dict[tuple[int, str], str] = {}
        packed: dict[tuple[int, str], str] = {}
        committed: dict[str, dict[str, Any]] = {}  # commissions that commit to their serials by a digest
        claimed: dict[str, list[str]] = {}  # the serials of the unit rows that name such a commission
        events = connection.execute(
            select(E.c.id, E.c.type, E.c.payload, EL.c.lot_id, fix.c.id.label("corrected_by"))
            .select_from(EL.join(E, E.c.id == EL.c.event_id).outerjoin(fix, fix.c.corrects_event_id == E.c.id))
            .where(EL.c.lot_id.in_(chunk), E.c.type.in_(kinds))
        )
        for e in events:
            payload = _payload(e.payload)
            if e.type == EventType.COMMISSION.value:
                if "serials" not in payload:
                    committed[e.id] = {"lot_id": e.lot_id, "payload": payload, "corrected_by": e.corrected_by}
                    claimed[e.id] = []
                for serial in payload.get("serials", []):
                    expected[(e.lot_id, serial)] = {
                        "created_event_id": e.id,
                        "level": payload.get("level", "unit"),
                        "print_run_id": payload.get("print_run_id"),
                        "status": UnitStatus.VOID.value if e.corrected_by else UnitStatus.ACTIVE.value,
                    }
            elif e.corrected_by is None:
                for ref in payload.get("units" if e.type == EventType.DECOMMISSION.value else "children", []):
                    if ref["lot_id"] != e.lot_id:
                        continue
                    if e.type == EventType.DECOMMISSION.value:
                        voided.add((ref["lot_id"], ref["serial"]))
                        codes[(ref["lot_id"], ref["serial"])] = ref["code"]
                    else:
                        packed[(ref["lot_id"], ref["serial"])] = payload["parent_id"]
        units = connection.execute(
            select(UNITS).where(UNITS.c.lot_id.in_(chunk)).order_by(UNITS.c.lot_id, UNITS.c.serial)
        )
        for unit in units:
            key = (unit.lot_id, unit.serial)
            row = {"id": unit.id, "lot_id": unit.lot_id, "serial": unit.serial}
            want = expected.pop(key, None)
            made = committed.get(unit.created_event_id) if want is None else None
            if made is not None and made["lot_id"] == unit.lot_id:
                claimed[unit.created_event_id].append(unit.serial)
                want = {
                    "level": made["payload"].get("level", "unit"),
                    "print_run_id": made["payload"].get("print_run_id"),
                    "status": UnitStatus.VOID.value if made["corrected_by"] else UnitStatus.ACTIVE.value,
                }
            if want is None:
                _differs("unit", row, "no commission event registered this unit")
            if key in voided:
                want["status"] = UnitStatus.VOID.value
            want["parent_id"] = packed.get(key)
            for name, value in want.items():
                if unit._mapping[name] != value:
                    _differs("unit", row, f"{name}: the events say {value}; the row holds {unit._mapping[name]}")
            if key in codes and unit.code != codes[key]:
                _differs("unit", row, f"code: the decommission event voided {codes[key]}; the row holds {unit.code}")
            count += 1
        for event_id, made in sorted(committed.items()):
            payload, serials = made["payload"], claimed[event_id]
            if len(serials) != payload.get("count") or serials_digest(serials) != payload.get("serials_sha256"):
                _differs(
                    "unit",
                    {"lot_id": made["lot_id"], "created_event_id": event_id},
                    f"commission event {event_id} registered {payload.get('count')} units (serials digest "
                    f"{payload.get('serials_sha256')}); the rows that name it hold {len(serials)} "
                    f"(digest {serials_digest(serials)})",
                )
        if expected:
            (lot_id, serial), want = sorted(expected.items())[0]
            _differs(
                "unit",
                {"lot_id": lot_id, "serial": serial},
                f"commission event {want['created_event_id']} registered this unit; there is no such row",
            )
        done += len(chunk)
        meter.at("unit", done)
    return count


# --- EPCIS event ids: the hash of each event's EPCIS form (or the id it was captured with) ----------------


def _check_ids(connection: Connection, meter: _Meter) -> int:
    query = render.SELECT_LOTS.order_by(render.EVENTS.c.id, render.EVENT_LOTS.c.id)
    result = connection.execute(query.execution_options(yield_per=PAGE))
    count, done = 0, 0
    for events, lot_rows in render.with_lots(list(result.keys()), result, PAGE):
        computed = epcis_ids.compute(connection, events, lot_rows)
        fallbacks = [
            computed[e["id"]] for e in events if e["epcis_id"] == f"urn:uuid:{e['id']}" and e["id"] in computed
        ]
        holders = epcis_ids.lookup(connection, fallbacks)
        for e in events:
            stored = e["epcis_id"]
            row = {"event_id": e["id"]}
            if str(e["type"]) == EventType.CORRECTION:
                if stored is not None:
                    _differs("epcis_event_id", row, f"a correction has no EPCIS id of its own; {stored} is stored")
                continue
            bound = (e["payload"] or {}).get("epcis_id")
            expected = bound or computed[e["id"]]
            if stored is None:
                _differs("epcis_event_id", row, f"the event's EPCIS id is {expected}; none is stored")
            if stored != expected:
                taken = holders.get(expected)
                if not (bound is None and stored == f"urn:uuid:{e['id']}" and taken not in (None, e["id"])):
                    said = (
                        f" was captured with id {bound}"
                        if bound
                        else f"'s EPCIS form (its URIs under {vocab.base()}) hashes to {expected}"
                    )
                    _differs("epcis_event_id", {**row, "epcis_id": stored}, f"the event{said}")
            count += 1
        done += len(events)
        meter.at("epcis_event_id", done)
    total = connection.execute(select(func.count()).select_from(IDS)).scalar_one()
    if total != count:
        _differs("epcis_event_id", {}, f"{total - count} stored id(s) belong to no event")
    return count


def _figures_stage(
    checks: dict[str, Callable[[Connection, recount.Progress], int]], stage: str
) -> Callable[[Connection, _Meter], int]:
    """A recount of kept figures (trace.platform.recount) as a stage of this check."""

    def run(connection: Connection, meter: _Meter) -> int:
        try:
            return checks[stage](connection, lambda done: meter.at(stage, done))
        except recount.Differs as found:
            _differs(found.table, found.row, found.problem)

    return run


CHECKS: dict[str, Callable[[Connection, _Meter], int]] = {
    "event_lot": _check_event_lots,
    "holding": _check_holdings,
    "shipment": _check_shipments,
    "lot_edge": _check_edges,
    "lot": _check_lots,
    "unit": _check_units,
    "epcis_event_id": _check_ids,
    **{stage: _figures_stage(scan_check.CHECKS, stage) for stage in scan_check.CHECKS},
    **{stage: _figures_stage(tally_check.CHECKS, stage) for stage in tally_check.CHECKS},
}


def verify(*, session: Session, on_progress: Progress | None = None) -> DerivedReport:
    """Recompute every derived table from the events and compare; the first row that differs, if any."""
    connection = session.connection()
    events = connection.execute(select(func.count()).select_from(E)).scalar_one()
    totals = {
        "event_lot": events,
        "holding": connection.execute(select(func.count()).select_from(HOLDINGS)).scalar_one(),
        "shipment": connection.execute(select(func.count()).select_from(SHIPMENTS)).scalar_one(),
        "lot_edge": connection.execute(select(func.count()).select_from(EDGES)).scalar_one(),
        "lot": connection.execute(select(func.count()).select_from(LOTS)).scalar_one(),
        "epcis_event_id": events,
    }
    totals["unit"] = totals["lot"]
    for stage, table in (("lot_bucket", tally_check.LOT_BUCKETS), ("code_bucket", tally_check.CODE_BUCKETS)):
        totals[stage] = connection.execute(select(func.count()).select_from(table)).scalar_one()
    totals.update(
        dict.fromkeys(scan_check.CHECKS, connection.execute(select(func.count()).select_from(TALLIES)).scalar_one())
    )
    meter = _Meter(on_progress, totals)
    report = DerivedReport(ok=True)
    try:
        for name, check in CHECKS.items():
            report.checked[name] = check(connection, meter)
    except _Found as found:
        report.ok, report.difference = False, found.difference
    if on_progress is not None:
        on_progress(100)
    return report


@dataclass
class LogReport:
    """verify-log's whole answer: the hash chains, then (for the whole instance) the derived tables."""

    ok: bool
    chain: dict[str, Any]
    derived: dict[str, Any] | None  # None: one organisation's chain was asked for
    public_log: dict[str, Any] | None = None  # the public log recomputed (None: not reached or not asked for)


def verify_log(
    *, session: Session, organisation_id: int | None = None, on_progress: Progress | None = None
) -> LogReport:
    """The chains (a third of the progress), then, unless one organisation's chain is asked for, every
    table derived from the events, then the public log; the first stage that fails stops it there."""
    events = session.connection().execute(select(func.count()).select_from(E)).scalar_one() or 1
    share = 100 if organisation_id is not None else 30

    def chain_progress(done: int) -> None:
        if on_progress is not None:
            on_progress(min(share, share * done // events))

    found = chain.verify(session=session, organisation_id=organisation_id, on_progress=chain_progress)
    if not found.ok or organisation_id is not None:
        if on_progress is not None:
            on_progress(100)
        return LogReport(ok=found.ok, chain=asdict(found), derived=None)

    def derived_progress(percent: int) -> None:
        if on_progress is not None:
            on_progress(share + (85 - share) * percent // 100)

    report = verify(session=session, on_progress=derived_progress)
    if not report.ok:
        if on_progress is not None:
            on_progress(100)
        return LogReport(ok=False, chain=asdict(found), derived=asdict(report))

    def log_progress(percent: int) -> None:
        if on_progress is not None:
            on_progress(85 + 15 * percent // 100)

    public = transparency.verify(session=session, on_progress=log_progress)
    return LogReport(ok=public.ok, chain=asdict(found), derived=asdict(report), public_log=asdict(public))
