"""Corrections: a new event declares an earlier one erroneous and undoes its effects."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, delete, select

from trace.access import Actor, require_writer
from trace.errors import Conflict, NotFound, RuleViolation
from trace.events import chain
from trace.events import rules as r
from trace.events.effects import refresh_status, seal
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import CorrectionIn
from trace.lots import Lot, LotEdge, LotStatus, Shipment, ShipmentStatus
from trace.reports import tallies
from trace.units import Unit, UnitStatus


def _corrected_ids(session: Session) -> Any:
    return select(Event.corrects_event_id).where(col(Event.corrects_event_id).is_not(None))


def _require_untouched(session: Session, lot: Lot, creating_event_id: str) -> None:
    later = session.exec(
        select(EventLot.event_id).where(
            EventLot.lot_id == lot.id,
            EventLot.event_id != creating_event_id,
            col(EventLot.event_id).not_in(_corrected_ids(session)),
        )
    ).first()
    if later is not None:
        raise Conflict(
            f"Lot {lot.lot_code} has later events (e.g. {later}); correct those first",
            code="lot_in_use",
            later_event_id=later,
        )


def record_correction(*, session: Session, actor: Actor, data: CorrectionIn) -> Event:
    """Declare one of your organisation's events erroneous; its custody effects are reversed."""
    org = require_writer(actor)
    when = r.event_time(data)
    target = session.get(Event, data.event_id)
    if target is None or target.organisation_id != org:
        raise NotFound(f"Event {data.event_id} is not one of your organisation's")
    if target.type == EventType.CORRECTION:
        raise RuleViolation("A correction cannot be corrected; record the event again", code="correct_correction")
    undo = {
        EventType.HOLD: "release the lot",
        EventType.RELEASE: "hold the lot again",
        EventType.RECALL: "a recall is final",
        EventType.RIGHT: "change the right again (reinstate, suspend)",
    }
    if target.type in undo:
        # These carry decisions with their own way back; reversing them by correction would leave
        # lot statuses and rights out of step with the log.
        raise RuleViolation(
            f"A {target.type.value} event cannot be declared erroneous: {undo[target.type]}", code="not_correctable"
        )
    rows = list(session.exec(select(EventLot).where(EventLot.event_id == target.id)))
    # The lots' locks first (in id order), then the chain head's: two corrections of one event take
    # turns, and the second sees the first.
    r.lock_lots(session=session, lot_ids=[row.lot_id for row in rows])
    lots = {row.lot_id: r.lot_for_update(session=session, lot_id=row.lot_id) for row in rows}
    chain.lock_head(session=session, organisation_id=org)
    if session.exec(select(Event.id).where(Event.corrects_event_id == target.id)).first():
        raise Conflict(f"Event {target.id} was already declared erroneous", code="already_corrected")
    if target.type in (EventType.HARVEST, EventType.TRANSFORM):
        for row in rows:
            if row.role == "output":
                _require_untouched(session, lots[row.lot_id], target.id)
    if target.type == EventType.SHIP:
        shipment = session.exec(
            select(Shipment).where(Shipment.event_id == target.id).execution_options(populate_existing=True)
        ).one()
        if shipment.received_quantity > 0:
            raise Conflict(
                "The shipment was (partly) received; the receiver must correct its receipt first",
                code="shipment_received",
            )
        shipment.status = ShipmentStatus.CANCELLED
        session.add(shipment)
    if target.type == EventType.RECEIVE:
        receipt = r.fresh_row(session, Shipment, target.payload["shipment_id"])
        assert receipt is not None
        receipt.received_quantity = r.q(receipt.received_quantity - r.q(target.payload["quantity"]))
        receipt.status = ShipmentStatus.OPEN
        session.add(receipt)
    if target.type == EventType.COMMISSION:
        units = list(
            session.exec(
                select(Unit).where(Unit.created_event_id == target.id).execution_options(populate_existing=True)
            )
        )
        if any(u.parent_id for u in units):
            raise Conflict("Some of these units were packed; correct the pack event first", code="units_packed")
        tallies.codes_changed(
            connection=session.connection(), units=[u for u in units if u.status == UnitStatus.ACTIVE], active=False
        )
        for unit in units:
            unit.status = UnitStatus.VOID
            session.add(unit)
    if target.type == EventType.DECOMMISSION:
        # Voided by mistake: the codes are valid again.
        for ref in target.payload["units"]:
            unit = session.exec(select(Unit).where(Unit.lot_id == ref["lot_id"], Unit.serial == ref["serial"])).one()
            if unit.status != UnitStatus.ACTIVE:
                tallies.codes_changed(connection=session.connection(), units=[unit], active=True)
            unit.status = UnitStatus.ACTIVE
            session.add(unit)
    if target.type == EventType.PACK:
        for child in target.payload["children"]:
            unit = session.exec(
                select(Unit).where(Unit.lot_id == child["lot_id"], Unit.serial == child["serial"])
            ).one()
            unit.parent_id = None
            session.add(unit)
    # Undo every custody change, newest effect first: outputs vanish, inputs come back.
    for row in sorted(rows, key=lambda x: x.delta, reverse=True):
        if row.delta == 0 or row.organisation_id is None:
            continue
        lot = lots[row.lot_id]
        if row.delta > 0:
            r.take(session=session, lot=lot, organisation_id=row.organisation_id, quantity=row.delta, forbid=False)
        else:
            r.give(session=session, lot=lot, organisation_id=row.organisation_id, quantity=-row.delta)
    if target.type == EventType.TRANSFORM:
        session.exec(delete(LotEdge).where(LotEdge.event_id == target.id))  # type: ignore[call-overload,arg-type]
    for row in rows:
        lot = lots[row.lot_id]
        if row.role == "output":
            if lot.status != LotStatus.CANCELLED:
                tallies.add_lots(connection=session.connection(), made=[(lot.created_at, target.type)], sign=-1)
            lot.status = LotStatus.CANCELLED
            session.add(lot)
        else:
            refresh_status(session=session, lot=lot)
    event = r.new_event(
        actor=actor,
        organisation_id=org,
        type=EventType.CORRECTION,
        when=when,
        data=data,
        location=None,
        lot_id=target.lot_id,
        corrects=target.id,
        payload={"reason": data.reason, "corrected_type": str(target.type)},
    )
    return seal(session=session, event=event, lots=[])
