"""Holds: an authority or the lot's producer stops a lot (it may not move) and later lifts the hold."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from trace.access import Actor, Role
from trace.errors import Conflict, Forbidden, NotFound
from trace.events import rules as r
from trace.events.effects import lot_row, refresh_status, seal
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import EventCommon
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation, OrgKind
from trace.recalls.models import HoldPublic, ReasonIn

STOPPED = {LotStatus.RECALLED: "lot_recalled", LotStatus.CANCELLED: "lot_cancelled"}


def locked_lot(*, session: Session, lot_id: int) -> Lot:
    """A lot read under a row lock (PostgreSQL), so two holds or recalls of it take turns."""
    lot = session.exec(select(Lot).where(Lot.id == lot_id).with_for_update()
                       .execution_options(populate_existing=True)).first()
    if lot is None:
        raise NotFound(f"Lot {lot_id} not found")
    return lot


def is_authority(*, session: Session, actor: Actor) -> bool:
    """A market inspector of an authority, or the province administrator acting for an organisation."""
    if actor.organisation_id is None:
        return False
    if actor.role == Role.ADMIN:
        return True
    if actor.role != Role.INSPECTOR:
        return False
    org = session.get(Organisation, actor.organisation_id)
    return org is not None and org.kind == OrgKind.AUTHORITY


def acting_organisation(*, session: Session, actor: Actor, lot: Lot, action: str) -> int:
    """The organisation whose chain records the hold or recall: an authority's or the lot's producer's."""
    if actor.organisation_id is None:
        # Every event sits in an organisation's hash chain; an account of none cannot sign one.
        raise Forbidden(f"A {action} is recorded for an organisation: use an account of an authority",
                        code="no_organisation")
    if is_authority(session=session, actor=actor):
        return actor.organisation_id
    if actor.role in (Role.ORG_ADMIN, Role.MEMBER) and actor.organisation_id == lot.producer_organisation_id:
        return actor.organisation_id
    raise Forbidden(f"Only an inspector or the producer of lot {lot.lot_code} may {action} it",
                    code=f"{action}_not_allowed")


def record(*, session: Session, actor: Actor, organisation_id: int, type: EventType, lot: Lot,
           payload: dict[str, Any]) -> Event:
    """A hold, release or recall event on a lot, sealed in the organisation's chain."""
    common = EventCommon()
    event = r.new_event(actor=actor, organisation_id=organisation_id, type=type, when=r.event_time(common),
                        data=common, location=None, lot_id=lot.id, payload=payload)
    rows = [lot_row(event_id=event.id, lot_id=lot.id, role="object", organisation_id=organisation_id)]  # type: ignore[arg-type]
    return seal(session=session, event=event, lots=rows)


def hold(*, session: Session, actor: Actor, lot_id: int, data: ReasonIn) -> HoldPublic:
    """Put a lot on hold: until released it may not be shipped, transformed, packed or sold."""
    lot = locked_lot(session=session, lot_id=lot_id)
    org = acting_organisation(session=session, actor=actor, lot=lot, action="hold")
    if lot.status == LotStatus.ON_HOLD:
        raise Conflict(f"Lot {lot.lot_code} is already on hold", code="already_on_hold")
    if lot.status in STOPPED:
        raise Conflict(f"Lot {lot.lot_code} is {lot.status.value}: there is nothing to hold",
                       code=STOPPED[lot.status])
    previous = lot.status
    with session.begin_nested():
        event = record(session=session, actor=actor, organisation_id=org, type=EventType.HOLD, lot=lot,
                       payload={"reason": data.reason, "previous_status": previous.value})
        lot.status = LotStatus.ON_HOLD
        session.add(lot)
    return HoldPublic(lot_id=lot.id, status=lot.status, previous_status=previous, reason=data.reason,  # type: ignore[arg-type]
                      event_id=event.id)


def _placed_by(session: Session, lot: Lot) -> int | None:
    """The organisation that placed the lot's current hold (the latest hold event on it)."""
    return session.exec(
        select(Event.organisation_id).join(EventLot, col(EventLot.event_id) == Event.id)
        .where(EventLot.lot_id == lot.id, Event.type == EventType.HOLD)
        .order_by(col(Event.record_time).desc()).limit(1)
    ).first()


def release(*, session: Session, actor: Actor, lot_id: int, data: ReasonIn) -> HoldPublic:
    """Lift a hold: the lot is active again, or consumed if nobody holds any of it any more."""
    lot = locked_lot(session=session, lot_id=lot_id)
    org = acting_organisation(session=session, actor=actor, lot=lot, action="release")
    if lot.status in STOPPED:
        raise Conflict(f"Lot {lot.lot_code} is {lot.status.value}; it cannot be released",
                       code=STOPPED[lot.status])
    if lot.status != LotStatus.ON_HOLD:
        raise Conflict(f"Lot {lot.lot_code} is not on hold", code="not_on_hold")
    placed = _placed_by(session, lot)
    if placed is not None and placed != org and not is_authority(session=session, actor=actor):
        # A producer may lift its own precaution, never an inspector's decision.
        raise Forbidden(f"Lot {lot.lot_code} was put on hold by an authority; only an authority may lift it",
                        code="held_by_authority")
    with session.begin_nested():
        lot.status = LotStatus.ACTIVE
        # Custody may have changed while held (a receipt, a loss): the status is worked out again.
        refresh_status(session=session, lot=lot)
        event = record(session=session, actor=actor, organisation_id=org, type=EventType.RELEASE, lot=lot,
                       payload={"reason": data.reason, "previous_status": LotStatus.ON_HOLD.value,
                                "status": lot.status.value})
        session.add(lot)
    return HoldPublic(lot_id=lot.id, status=lot.status, previous_status=LotStatus.ON_HOLD,  # type: ignore[arg-type]
                      reason=data.reason, event_id=event.id)
