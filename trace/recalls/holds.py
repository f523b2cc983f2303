"""Holds: an authority or the lot's producer stops a lot (it may not move) and later lifts the hold."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from trace.access import Actor, Role
from trace.errors import Conflict, Forbidden, NotFound
from trace.events import rules as r
from trace.events.effects import lot_row, refresh_status, seal
from trace.events.models import Event, EventLot, EventType, IdempotencyRecord
from trace.events.schemas import EventCommon
from trace.idempotency import checked_key, key_reused
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation, OrgKind
from trace.platform.timeutil import utcnow
from trace.recalls.models import HoldPublic, ReasonIn

STOPPED = {LotStatus.RECALLED: "lot_recalled", LotStatus.CANCELLED: "lot_cancelled"}


def locked_lot(*, session: Session, lot_id: int) -> Lot:
    """A lot read under its row lock (rules.lock_lots), so holds, recalls and moves of it take turns."""
    lot = r.lock_lots(session=session, lot_ids=[lot_id]).get(lot_id)
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
        raise Forbidden(
            f"A {action} is recorded for an organisation: use an account of an authority", code="no_organisation"
        )
    if is_authority(session=session, actor=actor):
        return actor.organisation_id
    if actor.role in (Role.ORG_ADMIN, Role.MEMBER) and actor.organisation_id == lot.producer_organisation_id:
        return actor.organisation_id
    raise Forbidden(
        f"Only an inspector or the producer of lot {lot.lot_code} may {action} it", code=f"{action}_not_allowed"
    )


def record(
    *,
    session: Session,
    actor: Actor,
    organisation_id: int,
    type: EventType,
    lot: Lot,
    payload: dict[str, Any],
    also: Iterable[int] = (),
) -> Event:
    """A hold, release or recall event on a lot (and on the lots ``also`` names: a recall's reach), sealed in
    the organisation's chain with all its lot rows, so its EPCIS id is the hash of its whole form."""
    common = EventCommon()
    event = r.new_event(
        actor=actor,
        organisation_id=organisation_id,
        type=type,
        when=r.event_time(common),
        data=common,
        location=None,
        lot_id=lot.id,
        payload=payload,
    )
    rows = [
        lot_row(event_id=event.id, lot_id=lot_id, role="object", organisation_id=organisation_id)  # type: ignore[arg-type]
        for lot_id in (lot.id, *also)
    ]
    seal(session=session, event=event, lots=rows)
    return event


def _fingerprint(action: str, lot_id: int, data: ReasonIn) -> str:
    return hashlib.sha256(f"{action}\x1f{lot_id}\x1f{data.reason}".encode()).hexdigest()


def replayed(
    *, session: Session, organisation_id: int, key: str | None, action: str, lot_id: int, data: ReasonIn
) -> Event | None:
    """The event a first request with this key recorded (a double tap, a retry), or None; the key sent
    with another lot, action or reason is refused. Read under the lot's lock, so the two take turns."""
    if checked_key(key) is None:
        return None
    found = session.get(IdempotencyRecord, (organisation_id, key))
    if found is None:
        return None
    if found.fingerprint != _fingerprint(action, lot_id, data):
        raise key_reused("hold, release or recall")
    return session.get(Event, found.event_ids[0])


def remember(
    *, session: Session, organisation_id: int, key: str | None, action: str, lot_id: int, data: ReasonIn, event: Event
) -> None:
    """Keep the key with the event it recorded, for its retries."""
    if key is not None:
        session.add(
            IdempotencyRecord(
                organisation_id=organisation_id,
                key=key,
                event_ids=[event.id],
                fingerprint=_fingerprint(action, lot_id, data),
                created_at=utcnow(),
            )
        )


def _public(lot: Lot, event: Event) -> HoldPublic:
    """A hold or release as answered, from its event (the first answer, on a replay)."""
    status = LotStatus.ON_HOLD if event.type == EventType.HOLD else LotStatus(event.payload["status"])
    return HoldPublic(
        lot_id=lot.id,  # type: ignore[arg-type]
        status=status,
        previous_status=LotStatus(event.payload["previous_status"]),
        reason=event.payload["reason"],
        event_id=event.id,
    )


def hold(
    *, session: Session, actor: Actor, lot_id: int, data: ReasonIn, idempotency_key: str | None = None
) -> HoldPublic:
    """Put a lot on hold: until released it may not be shipped, transformed, packed or sold. Sent
    again with the same idempotency key, it answers as the first time and records nothing."""
    lot = locked_lot(session=session, lot_id=lot_id)
    org = acting_organisation(session=session, actor=actor, lot=lot, action="hold")
    first = replayed(session=session, organisation_id=org, key=idempotency_key, action="hold", lot_id=lot_id, data=data)
    if first is not None:
        return _public(lot, first)
    if lot.status == LotStatus.ON_HOLD:
        raise Conflict(f"Lot {lot.lot_code} is already on hold", code="already_on_hold")
    if lot.status in STOPPED:
        raise Conflict(f"Lot {lot.lot_code} is {lot.status.value}: there is nothing to hold", code=STOPPED[lot.status])
    previous = lot.status
    with session.begin_nested():
        event = record(
            session=session,
            actor=actor,
            organisation_id=org,
            type=EventType.HOLD,
            lot=lot,
            payload={"reason": data.reason, "previous_status": previous.value},
        )
        lot.status = LotStatus.ON_HOLD
        session.add(lot)
        remember(
            session=session,
            organisation_id=org,
            key=idempotency_key,
            action="hold",
            lot_id=lot_id,
            data=data,
            event=event,
        )
    return _public(lot, event)


def _placed_by(session: Session, lot: Lot) -> int | None:
    """The organisation that placed the lot's current hold (the latest hold event on it)."""
    return session.exec(
        select(Event.organisation_id)
        .join(EventLot, col(EventLot.event_id) == Event.id)
        .where(EventLot.lot_id == lot.id, Event.type == EventType.HOLD)
        .order_by(col(Event.record_time).desc())
        .limit(1)
    ).first()


def release(
    *, session: Session, actor: Actor, lot_id: int, data: ReasonIn, idempotency_key: str | None = None
) -> HoldPublic:
    """Lift a hold: the lot is active again, or consumed if nobody holds any of it any more (once per
    idempotency key, like a hold)."""
    lot = locked_lot(session=session, lot_id=lot_id)
    org = acting_organisation(session=session, actor=actor, lot=lot, action="release")
    first = replayed(
        session=session, organisation_id=org, key=idempotency_key, action="release", lot_id=lot_id, data=data
    )
    if first is not None:
        return _public(lot, first)
    if lot.status in STOPPED:
        raise Conflict(f"Lot {lot.lot_code} is {lot.status.value}; it cannot be released", code=STOPPED[lot.status])
    if lot.status != LotStatus.ON_HOLD:
        raise Conflict(f"Lot {lot.lot_code} is not on hold", code="not_on_hold")
    placed = _placed_by(session, lot)
    if placed is not None and placed != org and not is_authority(session=session, actor=actor):
        # A producer may lift its own precaution, never an inspector's decision.
        raise Forbidden(
            f"Lot {lot.lot_code} was put on hold by an authority; only an authority may lift it",
            code="held_by_authority",
        )
    with session.begin_nested():
        lot.status = LotStatus.ACTIVE
        # Custody may have changed while held (a receipt, a loss): the status is worked out again.
        refresh_status(session=session, lot=lot)
        event = record(
            session=session,
            actor=actor,
            organisation_id=org,
            type=EventType.RELEASE,
            lot=lot,
            payload={"reason": data.reason, "previous_status": LotStatus.ON_HOLD.value, "status": lot.status.value},
        )
        session.add(lot)
        remember(
            session=session,
            organisation_id=org,
            key=idempotency_key,
            action="release",
            lot_id=lot_id,
            data=data,
            event=event,
        )
    return _public(lot, event)
