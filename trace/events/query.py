"""Reading the log: filters modelled on EPCIS query parameters, with per-field visibility."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, or_, select

from trace.access import Actor, can_see_private
from trace.errors import NotFound
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import EventLotPublic, EventPublic
from trace.lots import Lot, involved
from trace.organisations import Organisation
from trace.platform.paging import Page, key_order, page, paged
from trace.platform.timeutil import to_utc

# Serials and codes are private too: a counterfeiter reading a lot's public events must not
# learn the valid codes it could print on fakes.
PRIVATE_PAYLOAD = (
    "inputs_used",
    "kde",
    "note",
    "photos",
    "serials",
    "serials_sha256",
    "units",
    "children",
    "override",
    "quota",
)
_EVENT_FIELDS = [name for name in EventPublic.model_fields if name in Event.model_fields]
CBV_BIZ_STEP = "https://ref.gs1.org/cbv/BizStep-"


def _practices_public(session: Session, organisation_id: int, cache: dict[int, bool]) -> bool:
    if organisation_id not in cache:
        org = session.get(Organisation, organisation_id)
        cache[organisation_id] = bool(org and org.practices_public)
    return cache[organisation_id]


def events_public(*, session: Session, actor: Actor | None, events: Sequence[Event]) -> list[EventPublic]:
    """API shapes of events; private fields stripped unless the actor may see them."""
    if not events:
        return []
    ids = [e.id for e in events]
    lots: dict[str, list[EventLotPublic]] = defaultdict(list)
    for row in session.exec(select(EventLot).where(col(EventLot.event_id).in_(ids)).order_by(EventLot.id)):  # type: ignore[arg-type]
        lots[row.event_id].append(
            EventLotPublic(lot_id=row.lot_id, role=row.role, quantity=row.quantity, unit=row.unit)
        )
    corrected = dict(
        session.exec(select(Event.corrects_event_id, Event.id).where(col(Event.corrects_event_id).in_(ids))).all()
    )
    practices: dict[int, bool] = {}
    out = []
    for event in events:
        if "payload" not in event.__dict__:  # expired: load it
            session.refresh(event)
        fields = {name: event.__dict__.get(name) for name in _EVENT_FIELDS}
        fields["lots"], fields["corrected_by_event_id"] = lots.get(event.id, []), corrected.get(event.id)
        public = EventPublic.model_validate(fields)
        if not can_see_private(actor, event.organisation_id):
            payload = dict(event.payload)
            keep_inputs = _practices_public(session, event.organisation_id, practices)
            for key in PRIVATE_PAYLOAD:
                if key == "inputs_used" and keep_inputs:
                    continue
                payload.pop(key, None)
            public.payload = payload
            public.biz_transactions = None
            public.redacted = True
        out.append(public)
    return out


def get_event(*, session: Session, actor: Actor, event_id: str) -> EventPublic:
    """One event, if the actor may see it (its own, addressed to it, or on a lot it is involved with)."""
    event = session.get(Event, event_id)
    if event is None or not _may_read(session, actor, event):
        raise NotFound(f"Event {event_id} not found")
    return events_public(session=session, actor=actor, events=[event])[0]


def _may_read(session: Session, actor: Actor, event: Event) -> bool:
    if actor.reads_everything:
        return True
    org = actor.organisation_id
    if org is not None and org in (
        event.organisation_id,
        event.source_organisation_id,
        event.destination_organisation_id,
    ):
        return True
    for lot_id in session.exec(select(EventLot.lot_id).where(EventLot.event_id == event.id)):
        lot = session.get(Lot, lot_id)
        if lot is not None and involved(session=session, actor=actor, lot=lot):
            return True
    return False


def bare_biz_step(value: str) -> str:
    """A CBV bizStep in any form EPCIS accepts (``shipping``, the GS1 web URI, the 1.x URN) → ``shipping``."""
    for prefix in (CBV_BIZ_STEP, "urn:epcglobal:cbv:bizstep:"):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


# Newest first; the id (a UUID) only breaks ties between events of the same instant.
EVENT_ORDER = key_order("events", (col(Event.event_time), datetime, True), (col(Event.id), str, False))


def list_events(
    *,
    session: Session,
    actor: Actor,
    event_type: EventType | None = None,
    biz_step: str | None = None,
    lot_id: int | None = None,
    product_id: int | None = None,
    organisation_id: int | None = None,
    ge_event_time: datetime | None = None,
    lt_event_time: datetime | None = None,
    cursor: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[EventPublic]:
    """Events, newest first. Non-inspectors see their own organisation's events, plus all events of
    a lot they are involved with when filtering by that lot."""
    query = select(Event)
    if lot_id is not None:
        lot = session.get(Lot, lot_id)
        if lot is None or not involved(session=session, actor=actor, lot=lot):
            raise NotFound(f"Lot {lot_id} not found")
        query = query.where(col(Event.id).in_(select(EventLot.event_id).where(EventLot.lot_id == lot_id)))
    elif not actor.reads_everything:
        org = actor.organisation_id
        query = query.where(
            or_(
                Event.organisation_id == org,
                Event.source_organisation_id == org,
                Event.destination_organisation_id == org,
            )
        )
    if event_type is not None:
        query = query.where(Event.type == event_type)
    if biz_step:
        query = query.where(Event.biz_step == bare_biz_step(biz_step))
    if product_id is not None:
        query = query.where(
            col(Event.id).in_(
                select(EventLot.event_id)
                .join(Lot, Lot.id == EventLot.lot_id)  # type: ignore[arg-type]
                .where(Lot.product_id == product_id)
            )
        )
    if organisation_id is not None:
        query = query.where(Event.organisation_id == organisation_id)
    if ge_event_time is not None:
        query = query.where(Event.event_time >= to_utc(ge_event_time)[0])
    if lt_event_time is not None:
        query = query.where(Event.event_time < to_utc(lt_event_time)[0])
    rows = page(
        session.exec(paged(query, EVENT_ORDER, cursor=cursor, offset=offset, limit=limit)),
        EVENT_ORDER,
        limit=limit,
        key=lambda x: (x.event_time, x.id),
    )
    found = Page(events_public(session=session, actor=actor, events=rows))
    found.next = rows.next
    return found
