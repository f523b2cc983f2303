"""Reading the log as EPCIS: a lot's whole chain, one event by its EPCIS id, and an EPCIS-style query
with keyset paging (an opaque ``nextPageToken``).

Visibility is the existing events endpoint's: your organisation's events (as recorder, sender or
receiver); every event of a lot you are involved with when the query names that lot
(``MATCH_epcClass``) or when you export its chain; everything for inspectors and administrators.
Private facts are redacted per event (``trace/epcis/render.py``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlmodel import Session, col

from trace import lineage
from trace.access import Actor
from trace.epcis import render, vocab
from trace.epcis.document import CONTEXT, document
from trace.epcis.ids import lookup
from trace.epcis.refs import Resolver
from trace.errors import InvalidIdentifier, NotFound, RuleViolation
from trace.events import query as event_query
from trace.events.models import EventType
from trace.lots import Lot, involved, visible_lot
from trace.platform.sqltypes import IN_CHUNK, in_chunks
from trace.platform.timeutil import to_utc
from trace.units import Unit

E, EL = render.EVENTS, render.EVENT_LOTS
PAGE = 2000  # events rendered per batch of an export
UNIT_EVENTS = (EventType.COMMISSION.value, EventType.PACK.value, EventType.DECOMMISSION.value)
EPCIS_TYPES = ("ObjectEvent", "AggregationEvent", "TransformationEvent", "TransactionEvent", "AssociationEvent")


def _rendered(session: Session, actor: Actor, ids: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
    """The events with these ids (already in order), rendered a batch at a time."""
    connection = session.connection()
    for start in range(0, len(ids), PAGE):
        part = ids[start : start + PAGE]
        rows: dict[str, Any] = {}
        for chunk in in_chunks(part):
            rows.update(
                (r["id"], render.row(r)) for r in connection.execute(render.SELECT.where(E.c.id.in_(chunk))).mappings()
            )
        events = [rows[i] for i in part if i in rows]
        yield render.render(events, render.load(connection, events), actor)


def _ordered(rows: Sequence[Any]) -> list[str]:
    return [r[2] for r in sorted(rows, key=lambda r: (r[0], r[1], r[2]))]


def _streamed(session: Session, actor: Actor, where: Any) -> Iterator[list[dict[str, Any]]]:
    """The events matching ``where`` with their lot rows, oldest first, read and rendered a batch at a time."""
    connection = session.connection()
    query = render.SELECT_LOTS.where(where).order_by(E.c.event_time, E.c.record_time, E.c.id, EL.c.id)
    # On the statement, not the connection: Connection.execution_options changes the connection itself.
    result = connection.execute(query.execution_options(yield_per=PAGE))
    for events, lot_rows in render.with_lots(list(result.keys()), result, PAGE):
        yield render.render(events, render.load(connection, events, lot_rows), actor)


def lot_chain(*, session: Session, actor: Actor, lot_id: int) -> Iterator[list[dict[str, Any]]]:
    """Every event of a lot's chain, both ways (its ancestors and descendants), oldest first, in batches."""
    visible_lot(session=session, actor=actor, lot_id=lot_id)
    lots = set(lineage.lot_ids(session=session, lot_id=lot_id, direction=lineage.Direction.BACKWARD))
    lots |= set(lineage.lot_ids(session=session, lot_id=lot_id, direction=lineage.Direction.FORWARD))
    if len(lots) <= IN_CHUNK:
        # One statement, read as it goes: a 100,000-event chain is never held whole.
        ids = select(EL.c.event_id).where(EL.c.lot_id.in_(sorted(lots)))
        return _streamed(session, actor, or_(E.c.id.in_(ids), E.c.corrects_event_id.in_(ids)))
    connection = session.connection()
    found: dict[str, Any] = {}
    for chunk in in_chunks(sorted(lots)):
        ids = select(EL.c.event_id).where(EL.c.lot_id.in_(chunk))
        query = select(E.c.event_time, E.c.record_time, E.c.id).where(
            or_(E.c.id.in_(ids), E.c.corrects_event_id.in_(ids))
        )
        found.update((r[2], r) for r in connection.execute(query))
    return _rendered(session, actor, _ordered(list(found.values())))


def get_event(*, session: Session, actor: Actor, epcis_id: str) -> dict[str, Any]:
    """One event by its EPCIS id, as a JSON-LD event (with ``errorDeclaration`` if it was declared erroneous)."""
    ours = lookup(session.connection(), [epcis_id]).get(epcis_id)
    if ours is None:
        raise NotFound(f"Event {epcis_id} not found")
    event_query.get_event(session=session, actor=actor, event_id=ours)  # NotFound unless the actor may read it
    correction = session.connection().execute(select(E.c.id).where(E.c.corrects_event_id == ours)).scalar()
    rendered = next(iter(_rendered(session, actor, [correction or ours])))[0]
    return {"@context": list(_context()), **rendered}


def document_of(*, session: Session, actor: Actor, event_ids: Sequence[str]) -> dict[str, Any]:
    """Our events (by our ids, in the order given) as one EPCISDocument, as ``actor`` may see them."""
    events = [e for batch in _rendered(session, actor, list(event_ids)) for e in batch]
    return document(events)


def _context() -> list[Any]:
    return CONTEXT


@dataclass
class Params:
    """The EPCIS query parameters we answer (lists are ORed, parameters ANDed)."""

    event_types: list[str] = field(default_factory=list)
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    biz_steps: list[str] = field(default_factory=list)
    biz_locations: list[str] = field(default_factory=list)
    match_epc: list[str] = field(default_factory=list)
    match_any_epc: list[str] = field(default_factory=list)
    match_epc_class: list[str] = field(default_factory=list)
    per_page: int = 100
    next_page_token: str | None = None

    def fingerprint(self) -> str:
        """What a page token is bound to: the same query, other pages."""
        data = {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in self.__dict__.items()
            if k not in ("per_page", "next_page_token")
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Page:
    events: list[dict[str, Any]]
    next_page_token: str | None


def _token(event_time: datetime, event_id: str, fingerprint: str) -> str:
    moment = event_time if event_time.tzinfo else event_time.replace(tzinfo=UTC)
    raw = json.dumps([moment.astimezone(UTC).isoformat(), event_id, fingerprint]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(token: str, fingerprint: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        when, event_id, bound = json.loads(raw)
        moment = datetime.fromisoformat(when)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, TypeError) as error:
        raise RuleViolation("nextPageToken is not one this server gave", code="bad_page_token") from error
    if bound != fingerprint:
        raise RuleViolation("nextPageToken belongs to a query with other parameters", code="bad_page_token")
    return moment, str(event_id)


def _lots_of(session: Session, uris: Sequence[str], units_only: bool) -> tuple[set[int], bool]:
    """Lots named by EPC (class) URIs; and whether any named a unit (then only unit events match)."""
    lots: set[int] = set()
    unit = False
    for uri in uris:
        try:
            ref = vocab.read(uri)
        except InvalidIdentifier as error:
            raise RuleViolation(f"{uri} is not an EPC we can read: {error.message}", code="bad_epc") from None
        if ref.kind == "lot" and not units_only:
            lot = session.exec(select(Lot.id).where(Lot.gtin == ref.gtin, Lot.lot_code == ref.lot)).first()  # type: ignore[call-overload]
            lots.update([lot[0]] if lot else [])
        elif ref.kind == "unit":
            unit = True
            query = (
                select(col(Unit.lot_id))
                .join(Lot, col(Lot.id) == col(Unit.lot_id))
                .where(col(Lot.gtin) == ref.gtin, col(Unit.serial) == ref.serial)
            )
            if ref.lot:
                query = query.where(col(Lot.lot_code) == ref.lot)
            lots.update(r[0] for r in session.exec(query))  # type: ignore[call-overload]
    return lots, unit


def _places(session: Session, uris: Sequence[str]) -> set[int]:
    resolver = Resolver(session)
    return {place for uri in uris if (place := resolver.location(uri)) is not None}


def query_events(*, session: Session, actor: Actor, params: Params) -> Page:
    """One page of events matching ``params``, oldest first."""
    if not 1 <= params.per_page <= 1000:
        raise RuleViolation("perPage is 1 to 1000", code="bad_per_page")
    conditions: list[Any] = []
    open_to_lot = False
    for values, units_only in (
        (params.match_epc, True),
        (params.match_any_epc, False),
        (params.match_epc_class, False),
    ):
        if not values:
            continue
        lots, unit = _lots_of(session, values, units_only)
        lot_events = select(EL.c.event_id).where(EL.c.lot_id.in_(sorted(lots) or [-1]))
        condition = E.c.id.in_(lot_events)
        if unit and values is not params.match_epc_class:
            condition = and_(condition, E.c.type.in_(UNIT_EVENTS))
        conditions.append(condition)
        # Naming lots one is involved with opens all their events (as /api/v1/events?lot_id= does).
        open_to_lot = bool(lots) and all(
            involved(session=session, actor=actor, lot=session.get(Lot, lot))  # type: ignore[arg-type]
            for lot in lots
        )
    if not actor.reads_everything and not open_to_lot:
        org = actor.organisation_id
        conditions.append(
            or_(E.c.organisation_id == org, E.c.source_organisation_id == org, E.c.destination_organisation_id == org)
        )
    if params.event_types:
        unknown = set(params.event_types) - set(EPCIS_TYPES)
        if unknown:
            raise RuleViolation(f"Unknown eventType {', '.join(sorted(unknown))}", code="bad_event_type")
        conditions.append(E.c.epcis_type.in_(params.event_types))
    if params.ge_event_time is not None:
        conditions.append(E.c.event_time >= _utc(params.ge_event_time))
    if params.lt_event_time is not None:
        conditions.append(E.c.event_time < _utc(params.lt_event_time))
    if params.biz_steps:
        conditions.append(E.c.biz_step.in_([event_query.bare_biz_step(s) for s in params.biz_steps]))
    if params.biz_locations:
        conditions.append(E.c.location_id.in_(sorted(_places(session, params.biz_locations)) or [-1]))
    fingerprint = params.fingerprint()
    if params.next_page_token:
        when, last = _untoken(params.next_page_token, fingerprint)
        conditions.append(or_(E.c.event_time > when, and_(E.c.event_time == when, E.c.id > last)))
    result = session.connection().execute(
        render.SELECT.where(*conditions).order_by(E.c.event_time, E.c.id).limit(params.per_page + 1)
    )
    rows = render.rows(list(result.keys()), result)
    more = len(rows) > params.per_page
    rows = rows[: params.per_page]
    connection = session.connection()
    events = render.render(rows, render.load(connection, rows), actor)
    token = _token(rows[-1]["event_time"], rows[-1]["id"], fingerprint) if more else None
    return Page(events, token)


def _utc(value: datetime) -> datetime:
    """A query time as a UTC instant (naive times are taken as UTC, as EPCIS has no zone-less times)."""
    return to_utc(value)[0] if value.tzinfo else value.replace(tzinfo=UTC)
