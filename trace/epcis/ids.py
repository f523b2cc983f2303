"""Every event's EPCIS event id, stored when the event is recorded (same transaction).

A flush hook computes the CBV 2.0 hash id of each new event (corrections excepted: in EPCIS they are
the corrected event again, with its id) from its complete EPCIS form, a batch of events at a time.
Events captured from an EPCIS document keep the id they were sent with (``trace/epcis/capture.py``
stores those itself and switches the hook off meanwhile). Two events of identical content have one
hash id; the second (which EPCIS would call a duplicate, but our log holds as its own event) gets
``urn:uuid:<event id>`` instead, so recording never fails on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, event, select
from sqlalchemy.orm import Session as OrmSession

from trace.epcis import render
from trace.epcis.hashid import hash_id
from trace.errors import Conflict
from trace.events.models import Event, EventLot, EventType
from trace.sqltypes import in_chunks

SKIP = "hytrace_epcis_ids_off"
IDS = render.IDS


def compute(connection: Connection, events: Sequence[Mapping[Any, Any]],
            lot_rows: dict[str, list[Mapping[Any, Any]]] | None = None) -> dict[str, str]:
    """Our event id → CBV hash id, for events that are not corrections."""
    wanted = [e for e in events if str(e["type"]) != EventType.CORRECTION]
    if not wanted:
        return {}
    facts = render.load(connection, wanted, lot_rows)
    return {e["id"]: hash_id(render.full_event(e, facts)) for e in wanted}


def store(connection: Connection, ids: Mapping[str, str], *, fallback: bool = True) -> None:
    """Insert event id → EPCIS id rows; an id already taken falls back to ``urn:uuid:<event id>`` (our own
    events) or is refused (``fallback=False``: captured events, whose id says they are already here)."""
    if not ids:
        return
    taken: set[str] = set()
    values = list(ids.values())
    for chunk in in_chunks(values):
        taken.update(connection.execute(select(IDS.c.epcis_id).where(IDS.c.epcis_id.in_(chunk))).scalars())
    rows = []
    for event_id, epcis_id in ids.items():
        if epcis_id in taken:
            if not fallback:
                raise Conflict(f"Event {epcis_id} is already recorded", code="duplicate_events", event_ids=[epcis_id])
            epcis_id = f"urn:uuid:{event_id}"
        taken.add(epcis_id)
        rows.append({"event_id": event_id, "epcis_id": epcis_id})
    connection.execute(IDS.insert(), rows)


def assign(connection: Connection, events: Sequence[Mapping[Any, Any]],
           lot_rows: dict[str, list[Mapping[Any, Any]]] | None = None) -> None:
    """Compute and store the ids of new events; a receipt after the shipment it names (its form cites the
    shipment's id, which must be stored first)."""
    batch = {e["id"] for e in events}
    cites = [e for e in events if (e["payload"] or {}).get("ship_event_id") in batch]
    first = [e for e in events if (e["payload"] or {}).get("ship_event_id") not in batch]
    store(connection, compute(connection, first, lot_rows))
    if cites:
        store(connection, compute(connection, cites, lot_rows))


@event.listens_for(OrmSession, "after_flush")
def _new_events(session: OrmSession, _context: object) -> None:
    if session.info.get(SKIP):
        return
    new = [obj for obj in session.new if isinstance(obj, Event)]
    if not new:
        return
    # The events' lot rows were written in this same flush: read them from the session, not the database.
    # (An event with none here, a correction say, is looked up in the database as usual.)
    lot_rows: dict[str, list[Mapping[Any, Any]]] = {}
    for obj in sorted((o for o in session.new if isinstance(o, EventLot)), key=lambda o: o.id or 0):
        lot_rows.setdefault(obj.event_id, []).append(obj.__dict__)
    connection = session.connection()
    assign(connection, [render.event_row(e) for e in new], lot_rows)


def backfill(connection: Connection, page: int = 2000) -> int:
    """Give every event without an EPCIS id its hash id (the migration runs it once), oldest first:
    a receipt's form cites the id of the shipment before it."""
    events = render.EVENTS
    done = 0
    while True:
        rows = connection.execute(
            select(events).where(events.c.type != EventType.CORRECTION.value, events.c.id.not_in(select(IDS.c.event_id)))
            .order_by(events.c.event_time, events.c.id).limit(page)).mappings().all()
        if not rows:
            return done
        assign(connection, rows)
        done += len(rows)


def lookup(connection: Connection, epcis_ids: Sequence[str]) -> dict[str, str]:
    """EPCIS id → our event id, for the ids we know."""
    found: dict[str, str] = {}
    for chunk in in_chunks(list(epcis_ids)):
        found.update((r[0], r[1]) for r in connection.execute(
            select(IDS.c.epcis_id, IDS.c.event_id).where(IDS.c.epcis_id.in_(chunk))))
    return found
