"""Corrections: a new event declares an earlier one erroneous and reverses its custody effects."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, select

from tests import factories as f
from trace.errors import Conflict, DomainError, NotFound, RuleViolation
from trace.events import chain
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.query import get_event
from trace.events.schemas import CommissionIn, CorrectionIn, LossIn, PackIn, SellIn, UnitRef
from trace.lineage import Direction, lot_ids, trace
from trace.lots import Lot, LotEdge, LotStatus, Shipment, ShipmentStatus, held_by, in_transit
from trace.organisations import Organisation
from trace.units import Unit, UnitStatus

D = Decimal


def refused(code: str, fn: Callable[[], Any], kind: type[DomainError] = DomainError) -> DomainError:
    with pytest.raises(kind) as info:
        fn()
    assert info.value.code == code, info.value.message
    return info.value


def correct(session: Session, o: Organisation, event_id: str, reason: str = "did_not_occur") -> str:
    """Declare ``event_id`` erroneous on behalf of ``o``; the correction's id."""
    data = CorrectionIn(event_id=event_id, reason=reason)  # type: ignore[arg-type]
    return capture(session=session, actor=f.member(o), items=[(EventType.CORRECTION, data)]).events[0].id


def cap(session: Session, o: Organisation, kind: EventType, data: Any) -> Any:
    return capture(session=session, actor=f.member(o), items=[(kind, data)])


def lot(session: Session, lot_id: int) -> Lot:
    found = session.get(Lot, lot_id)
    assert found is not None
    return found


def test_correcting_a_harvest_cancels_its_lot(session: Session) -> None:
    coop = f.org(session)
    result = f.harvest(session, coop, "100")
    lot_id = result.lot_ids[0]
    correction_id = correct(session, coop, result.events[0].id)
    assert lot(session, lot_id).status == LotStatus.CANCELLED
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == 0
    # a cancelled lot cannot be used any more
    sell = SellIn(lot_id=lot_id, quantity=D(1), event_time=f.when(1))
    refused("not_holder", lambda: cap(session, coop, EventType.SELL, sell))
    # and the trace shows the harvest with the correction that voided it
    events = trace(session=session, actor=f.member(coop), lot_id=lot_id, direction=Direction.BACKWARD).events
    by_id = {e.id: e for e in events}
    assert by_id[result.events[0].id].corrected_by_event_id == correction_id
    assert by_id[correction_id].corrects_event_id == result.events[0].id
    assert by_id[correction_id].type == EventType.CORRECTION


def test_correcting_an_unreceived_shipment_gives_the_quantity_back(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    shipped = f.ship(session, coop, lot_id, proc, "100")
    assert lot(session, lot_id).status == LotStatus.ACTIVE  # in flight, not consumed
    correct(session, coop, shipped.events[0].id)
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("100")
    assert in_transit(session=session, lot_id=lot_id) == 0
    shipment = session.get(Shipment, shipped.shipment_id)
    assert shipment is not None and shipment.status == ShipmentStatus.CANCELLED
    # the receiver can no longer receive it
    refused("shipment_closed", lambda: f.receive(session, proc, shipped.shipment_id))  # type: ignore[arg-type]
    assert get_event(session=session, actor=f.member(coop), event_id=shipped.events[0].id).corrected_by_event_id


@pytest.mark.parametrize("partial", [None, "30"])
def test_correcting_a_receipt_puts_the_goods_back_in_transit(session: Session, partial: str | None) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    shipment_id = f.ship(session, coop, lot_id, proc, "50").shipment_id
    received = f.receive(session, proc, shipment_id, partial)  # type: ignore[arg-type]
    correct(session, proc, received.events[0].id)
    assert held_by(session=session, lot_id=lot_id, organisation_id=proc.id) == 0
    assert in_transit(session=session, lot_id=lot_id) == D("50")
    shipment = session.get(Shipment, shipment_id)
    assert shipment is not None and shipment.status == ShipmentStatus.OPEN and shipment.received_quantity == 0
    # the right receipt can then be recorded
    f.receive(session, proc, shipment_id, "50", days_ago=2)  # type: ignore[arg-type]
    assert held_by(session=session, lot_id=lot_id, organisation_id=proc.id) == D("50")


def test_correcting_a_transformation_restores_inputs_and_cancels_outputs(session: Session) -> None:
    # given two harvests merged into two outputs, consuming one input entirely
    coop = f.org(session)
    a, b = f.harvest(session, coop, "100").lot_ids[0], f.harvest(session, coop, "80").lot_ids[0]
    dried, powder = (
        f.product(session, coop, category="longan_dried"),
        f.product(session, coop, category="longan_powder"),
    )
    made = f.transform(session, coop, [(a, "100"), (b, "30")], [(dried, "20"), (powder, "5")])
    assert lot(session, a).status == LotStatus.CONSUMED
    # when it is declared erroneous
    correct(session, coop, made.events[0].id, "incorrect_data")
    # then inputs are back, outputs cancelled and lineage edges gone
    assert held_by(session=session, lot_id=a, organisation_id=coop.id) == D("100")
    assert held_by(session=session, lot_id=b, organisation_id=coop.id) == D("80")
    assert lot(session, a).status == LotStatus.ACTIVE
    for out in made.lot_ids:
        assert lot(session, out).status == LotStatus.CANCELLED
        assert held_by(session=session, lot_id=out, organisation_id=coop.id) == 0
        assert lot_ids(session=session, lot_id=out, direction=Direction.BACKWARD) == [out]
    assert session.exec(select(LotEdge).where(LotEdge.event_id == made.events[0].id)).first() is None
    assert lot_ids(session=session, lot_id=a, direction=Direction.FORWARD) == [a]


@pytest.mark.parametrize("kind", [EventType.SELL, EventType.LOSS])
def test_correcting_a_sale_or_loss_gives_the_quantity_back(session: Session, kind: EventType) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    data = (
        SellIn(lot_id=lot_id, quantity=D(100))
        if kind == EventType.SELL
        else LossIn(lot_id=lot_id, quantity=D(100), reason="damage")
    )
    event_id = cap(session, coop, kind, data).events[0].id
    assert lot(session, lot_id).status == LotStatus.CONSUMED
    correct(session, coop, event_id)
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("100")
    assert lot(session, lot_id).status == LotStatus.ACTIVE


def test_correcting_a_commission_voids_its_units(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    made = cap(session, coop, EventType.COMMISSION, CommissionIn(lot_id=lot_id, count=3))
    correct(session, coop, made.events[0].id)
    statuses = set(session.exec(select(Unit.status).where(Unit.created_event_id == made.events[0].id)))
    assert statuses == {UnitStatus.VOID}
    # a void unit cannot be packed
    pack = PackIn(parent_id="C-V", children=[UnitRef(lot_id=lot_id, serial=made.serials[0])])
    refused("unknown_unit", lambda: cap(session, coop, EventType.PACK, pack), RuleViolation)


def test_correcting_a_pack_unpacks_its_units(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    serials = cap(session, coop, EventType.COMMISSION, CommissionIn(lot_id=lot_id, count=2)).serials
    refs = [UnitRef(lot_id=lot_id, serial=s) for s in serials]
    packed = cap(session, coop, EventType.PACK, PackIn(parent_id="C-1", children=refs))
    # units packed cannot have their commission corrected first
    commission_id = session.exec(select(Unit.created_event_id).where(Unit.lot_id == lot_id)).first()
    refused("units_packed", lambda: correct(session, coop, commission_id), Conflict)  # type: ignore[arg-type]
    correct(session, coop, packed.events[0].id)
    assert set(session.exec(select(Unit.parent_id).where(Unit.lot_id == lot_id))) == {None}
    cap(session, coop, EventType.PACK, PackIn(parent_id="C-2", children=refs))  # they can be packed again


def test_correcting_another_organisations_event_is_refused(session: Session) -> None:
    coop, other = f.org(session), f.org(session)
    harvest = f.harvest(session, coop, "100")
    refused("not_found", lambda: correct(session, other, harvest.events[0].id), NotFound)
    refused("not_found", lambda: correct(session, other, "no-such-event"), NotFound)
    assert lot(session, harvest.lot_ids[0]).status == LotStatus.ACTIVE


def test_an_event_is_corrected_once_and_corrections_are_final(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    sale = cap(session, coop, EventType.SELL, SellIn(lot_id=lot_id, quantity=D(10))).events[0].id
    correction = correct(session, coop, sale)
    refused("already_corrected", lambda: correct(session, coop, sale), Conflict)
    refused("correct_correction", lambda: correct(session, coop, correction), RuleViolation)
    # the quantity came back once, not twice
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("100")


def test_a_harvest_whose_lot_has_later_events_cannot_be_corrected_until_those_are(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    harvest = f.harvest(session, coop, "100")
    shipped = f.ship(session, coop, harvest.lot_ids[0], proc, "10")
    error = refused("lot_in_use", lambda: correct(session, coop, harvest.events[0].id), Conflict)
    assert error.details["later_event_id"] == shipped.events[0].id
    # once the later event is itself corrected the harvest may be
    correct(session, coop, shipped.events[0].id)
    correct(session, coop, harvest.events[0].id)
    assert lot(session, harvest.lot_ids[0]).status == LotStatus.CANCELLED


def test_a_transformation_whose_output_moved_on_cannot_be_corrected(session: Session) -> None:
    coop = f.org(session)
    a = f.harvest(session, coop, "100").lot_ids[0]
    dried = f.product(session, coop, category="longan_dried")
    made = f.transform(session, coop, [(a, "50")], [(dried, "10")])
    cap(session, coop, EventType.SELL, SellIn(lot_id=made.lot_ids[0], quantity=D(1)))
    refused("lot_in_use", lambda: correct(session, coop, made.events[0].id), Conflict)
    assert held_by(session=session, lot_id=a, organisation_id=coop.id) == D("50")


def test_a_received_shipment_cannot_be_corrected_by_the_sender(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    shipped = f.ship(session, coop, lot_id, proc, "50")
    f.receive(session, proc, shipped.shipment_id, "1")  # type: ignore[arg-type]
    refused("shipment_received", lambda: correct(session, coop, shipped.events[0].id), Conflict)
    assert held_by(session=session, lot_id=lot_id, organisation_id=proc.id) == D("1")


def test_a_receipt_whose_goods_moved_on_cannot_be_corrected(session: Session) -> None:
    coop, proc, shop = f.org(session), f.org(session, "processor"), f.org(session, "retailer")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    received = f.receive(session, proc, f.ship(session, coop, lot_id, proc, "50").shipment_id)  # type: ignore[arg-type]
    f.ship(session, proc, lot_id, shop, "50", days_ago=2)
    refused("exceeds_holding", lambda: correct(session, proc, received.events[0].id), RuleViolation)
    assert in_transit(session=session, lot_id=lot_id) == D("50")


def test_the_chain_stays_valid_through_corrections(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    harvest = f.harvest(session, coop, "100")
    shipped = f.ship(session, coop, harvest.lot_ids[0], proc, "10")
    correct(session, coop, shipped.events[0].id)
    correct(session, coop, harvest.events[0].id)
    session.expire_all()
    assert chain.verify(session=session).ok
    kinds = session.exec(select(Event.type).where(Event.organisation_id == coop.id).order_by(Event.seq)).all()  # type: ignore[arg-type]
    assert kinds == [EventType.HARVEST, EventType.SHIP, EventType.CORRECTION, EventType.CORRECTION]


def test_holds_releases_and_recalls_are_undone_their_own_way_not_by_correction(session: Session) -> None:
    from trace.recalls import holds
    from trace.recalls.models import ReasonIn

    coop = f.org(session)
    lot_id = f.harvest(session, coop, "10").lot_ids[0]
    held = holds.hold(session=session, actor=f.member(coop), lot_id=lot_id, data=ReasonIn(reason="Chờ kiểm nghiệm"))
    with pytest.raises(RuleViolation) as refused:
        capture(
            session=session,
            actor=f.member(coop),
            items=[(EventType.CORRECTION, CorrectionIn(event_id=held.event_id, reason="incorrect_data"))],
        )
    assert refused.value.code == "not_correctable"
