"""Every event's EPCIS event id, stored when the event is recorded (same transaction).

:func:`give_ids` computes the CBV 2.0 hash id of each new event (corrections excepted: in EPCIS they are
the corrected event again, with its id) from its complete EPCIS form, a batch of events at a time. A capture
call (``trace/events/ledger.py``) calls it once after its final flush; an event sealed outside one (a hold,
a recall, a right to use) gets its id as it is sealed (``trace/events/effects.py``'s ``seal``). Events
captured from an EPCIS document keep the id they were sent with (``trace/epcis/capture.py`` stores those
itself and asks capture not to). Two events of identical content have one hash id; the second (which EPCIS
would call a duplicate, but our log holds as its own event) gets ``urn:uuid:<event id>`` instead, so
recording never fails on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from trace.epcis import render
from trace.epcis.hashid import hash_id
from trace.errors import Conflict
from trace.events.models import Event, EventLot, EventType
from trace.locations import Location
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform.sqltypes import in_chunks

IDS = render.IDS


def compute(
    connection: Connection,
    events: Sequence[Mapping[Any, Any]],
    lot_rows: dict[str, list[Mapping[Any, Any]]] | None = None,
    known: render.Known | None = None,
) -> dict[str, str]:
    """Our event id → CBV hash id, for events that are not corrections."""
    wanted = [e for e in events if str(e["type"]) != EventType.CORRECTION]
    if not wanted:
        return {}
    facts = render.load(connection, wanted, lot_rows, known)
    return {e["id"]: hash_id(render.full_event(e, facts)) for e in wanted}


def store(connection: Connection, ids: Mapping[str, str], *, fallback: bool = True) -> None:
    """Insert event id → EPCIS id rows; an id already taken falls back to ``urn:uuid:<event id>`` (our own
    events) or is refused (``fallback=False``: captured events, whose id says they are already here)."""
    if not ids:
        return
    if fallback and connection.dialect.name in _UPSERT:
        _store_new(connection, ids)
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


# INSERT … ON CONFLICT (epcis_id) DO NOTHING: the database finds the ids already taken while it inserts
# (a SELECT of them first cost as much again on PostgreSQL). Other conflicts (an event id stored twice)
# still raise.
_UPSERT = {
    name: dialect.insert(IDS).on_conflict_do_nothing(index_elements=[IDS.c.epcis_id])
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


def _store_new(connection: Connection, ids: Mapping[str, str]) -> None:
    """:func:`store` with fallback, as one upsert: the ids taken (before, or earlier in this batch) get
    ``urn:uuid:<event id>``, the first holder in ``ids``' order keeping the hash id, as :func:`store` does."""
    rows, fallbacks, seen = [], [], set()
    for event_id, epcis_id in ids.items():
        if epcis_id in seen:  # identical events in one batch: decided here, not by the database's row order
            fallbacks.append(event_id)
        else:
            seen.add(epcis_id)
            rows.append({"event_id": event_id, "epcis_id": epcis_id})
    upsert = _UPSERT[connection.dialect.name]
    if connection.dialect.supports_sane_multi_rowcount:  # SQLite: a plain executemany tells how many went in
        if connection.execute(upsert, rows).rowcount != len(rows):
            stored: set[str] = set()
            for chunk in in_chunks([r["event_id"] for r in rows]):
                stored.update(connection.execute(select(IDS.c.event_id).where(IDS.c.event_id.in_(chunk))).scalars())
            fallbacks += [r["event_id"] for r in rows if r["event_id"] not in stored]
    else:  # PostgreSQL's executemany counts nothing: the rows that went in are returned
        stored = set(connection.execute(upsert.returning(IDS.c.event_id), rows).scalars())
        if len(stored) != len(rows):
            fallbacks += [r["event_id"] for r in rows if r["event_id"] not in stored]
    if fallbacks:
        connection.execute(IDS.insert(), [{"event_id": e, "epcis_id": f"urn:uuid:{e}"} for e in fallbacks])


def assign(
    connection: Connection,
    events: Sequence[Mapping[Any, Any]],
    lot_rows: dict[str, list[Mapping[Any, Any]]] | None = None,
    known: render.Known | None = None,
) -> None:
    """Compute and store the ids of new events; a receipt after the shipment it names (its form cites the
    shipment's id, which must be stored first)."""
    batch = {e["id"] for e in events}
    cites = [e for e in events if (e["payload"] or {}).get("ship_event_id") in batch]
    first = [e for e in events if (e["payload"] or {}).get("ship_event_id") not in batch]
    store(connection, compute(connection, first, lot_rows, known))
    if cites:
        store(connection, compute(connection, cites, lot_rows, known))


class _SessionRows(dict[tuple[str, Any], Mapping[str, Any]]):
    """The lot, place and party rows :func:`render.load` wants, taken from the objects the session holds
    (just flushed: as the database has them) before it reads any; kept for the rest of a capture call."""

    _MODELS: ClassVar[dict[str, tuple[type, tuple[str, ...]]]] = {
        "lot": (Lot, render.LOT_COLUMNS),
        "place": (Location, render.PLACE_COLUMNS),
        "org": (Organisation, render.ORG_COLUMNS),
    }

    def __init__(self, session: OrmSession) -> None:
        super().__init__()
        self.session = session

    def __missing__(self, key: tuple[str, Any]) -> Mapping[str, Any]:
        model, columns = self._MODELS[key[0]]
        held = self.session.identity_map.get((model, (key[1],), None))
        if held is None:
            raise KeyError(key)
        loaded = held.__dict__  # the object's own values (no attribute machinery)
        try:
            found = self[key] = {column: loaded[column] for column in columns}  # a copy: kept for the whole call
        except KeyError:  # expired: read from the database
            raise KeyError(key) from None
        return found


def give_ids(*, session: Session, sealed: Sequence[tuple[Event, Sequence[EventLot]]]) -> None:
    """Store the EPCIS ids of events just sealed and flushed, each with its lot rows, in the order made."""
    if not sealed:
        return
    session.flush()
    # The events' lot rows are in the session: read them there, not from the database. (An event without
    # any, a correction say, is looked up in the database as usual.)
    lot_rows: dict[str, list[Mapping[Any, Any]]] = {}
    for made, rows in sealed:
        if rows:
            lot_rows[made.id] = [row.__dict__ for row in sorted(rows, key=lambda o: o.id or 0)]
    # Lots, places and parties too, as far as the session holds them (none of them changes in a capture call).
    assign(session.connection(), [render.event_row(e) for e, _ in sealed], lot_rows, _SessionRows(session))


def backfill(connection: Connection, page: int = 2000) -> int:
    """Give every event without an EPCIS id its hash id (the migration runs it once), oldest first:
    a receipt's form cites the id of the shipment before it."""
    events = render.EVENTS
    done = 0
    while True:
        rows = (
            connection.execute(
                select(events)
                .where(events.c.type != EventType.CORRECTION.value, events.c.id.not_in(select(IDS.c.event_id)))
                .order_by(events.c.event_time, events.c.id)
                .limit(page)
            )
            .mappings()
            .all()
        )
        if not rows:
            return done
        assign(connection, rows)
        done += len(rows)


def lookup(connection: Connection, epcis_ids: Sequence[str]) -> dict[str, str]:
    """EPCIS id → our event id, for the ids we know."""
    found: dict[str, str] = {}
    for chunk in in_chunks(list(epcis_ids)):
        found.update(
            (r[0], r[1])
            for r in connection.execute(select(IDS.c.epcis_id, IDS.c.event_id).where(IDS.c.epcis_id.in_(chunk)))
        )
    return found
