"""Custody and mass balance: who may move how much of a lot, when, and in what state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from tests import factories as f
from trace.errors import DomainError, Forbidden, RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import (
    CommissionIn,
    HarvestIn,
    InputUsed,
    LossIn,
    PackIn,
    ReceiveIn,
    SellIn,
    ShipIn,
    TransformIn,
    TransformInput,
    TransformOutput,
    UnitRef,
)
from trace.lots import Holding, Lot, LotStatus, Shipment, ShipmentStatus, held_by, in_transit
from trace.organisations import Organisation
from trace.platform.config import get_settings
from trace.platform.timeutil import utcnow

D = Decimal


def refused(code: str, fn: Callable[[], Any], kind: type[DomainError] = DomainError) -> DomainError:
    """Run ``fn``, expect a domain error of ``kind`` with machine-readable ``code``."""
    with pytest.raises(kind) as info:
        fn()
    assert info.value.code == code, info.value.message
    return info.value


def cap(session: Session, o: Organisation, kind: EventType, data: SQLModel) -> Any:
    return capture(session=session, actor=f.member(o), items=[(kind, data)])


def counts(session: Session) -> dict[str, int]:
    """Rows of the tables a capture writes."""
    return {
        m.__name__: session.exec(select(func.count()).select_from(m)).one()
        for m in (Event, EventLot, Lot, Holding, Shipment)
    }


def commission(session: Session, o: Organisation, lot_id: int, count: int = 2, days_ago: float = 1) -> list[str]:
    return cap(
        session, o, EventType.COMMISSION, CommissionIn(lot_id=lot_id, count=count, event_time=f.when(days_ago))
    ).serials


# One closure per way of taking from a lot, so each custody rule is checked on every action.
def _ship(session: Session, o: Organisation, lot_id: int, qty: str, days_ago: float = 1) -> Any:
    to = f.org(session, "distributor")
    return cap(
        session,
        o,
        EventType.SHIP,
        ShipIn(
            lot_id=lot_id,
            quantity=D(qty),
            destination_organisation_id=to.id,  # type: ignore[arg-type]
            event_time=f.when(days_ago),
        ),
    )


def _transform(session: Session, o: Organisation, lot_id: int, qty: str, days_ago: float = 1) -> Any:
    out = f.product(session, o, category="longan_dried")
    data = TransformIn(
        inputs=[TransformInput(lot_id=lot_id, quantity=D(qty))],
        event_time=f.when(days_ago),
        outputs=[TransformOutput(product_id=out.id, lot_code=f"D{lot_id}X{qty}", quantity=D("1"))],
    )  # type: ignore[arg-type]
    return cap(session, o, EventType.TRANSFORM, data)


def _sell(session: Session, o: Organisation, lot_id: int, qty: str, days_ago: float = 1) -> Any:
    return cap(session, o, EventType.SELL, SellIn(lot_id=lot_id, quantity=D(qty), event_time=f.when(days_ago)))


def _loss(session: Session, o: Organisation, lot_id: int, qty: str, days_ago: float = 1) -> Any:
    return cap(
        session,
        o,
        EventType.LOSS,
        LossIn(lot_id=lot_id, quantity=D(qty), reason="spoilage", event_time=f.when(days_ago)),
    )


TAKERS = {"ship": _ship, "transform": _transform, "sell": _sell, "loss": _loss}


@pytest.mark.parametrize("action", TAKERS)
def test_an_organisation_not_holding_a_lot_cannot_take_from_it(session: Session, action: str) -> None:
    # given a lot harvested by a cooperative, and an unrelated processor
    coop, other = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    # then the processor may not move any of it
    refused("not_holder", lambda: TAKERS[action](session, other, lot_id, "1"), Forbidden)
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("100")


@pytest.mark.parametrize("action", TAKERS)
def test_nothing_leaves_a_lot_beyond_what_the_holder_holds(session: Session, action: str) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    error = refused("exceeds_holding", lambda: TAKERS[action](session, coop, lot_id, "100.001"), RuleViolation)
    assert error.details == {"held": "100.000", "asked": "100.001"}
    # exactly what is held may go, and then nothing more
    TAKERS[action](session, coop, lot_id, "100")
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == 0
    refused("not_holder", lambda: TAKERS[action](session, coop, lot_id, "0.001"), Forbidden)


def test_mass_balance_holds_through_ship_receive_sell_loss_and_transform(session: Session) -> None:
    # given 100 kg harvested, 60 shipped, 40 received, 10 sold, 5 lost, 20 transformed
    coop, shop = f.org(session), f.org(session, "retailer")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    shipment = f.ship(session, coop, lot_id, shop, "60").shipment_id
    f.receive(session, shop, shipment, "40")
    _sell(session, shop, lot_id, "10")
    _loss(session, coop, lot_id, "5")
    _transform(session, coop, lot_id, "20")
    # then every gram is held, in transit, or left through a recorded sale, loss or transformation
    held = sum(h.quantity for h in session.exec(select(Holding).where(Holding.lot_id == lot_id)))
    assert held == D("45") and in_transit(session=session, lot_id=lot_id) == D("20")
    assert held + in_transit(session=session, lot_id=lot_id) + D("10") + D("5") + D("20") == D("100")
    # and the event rows alone explain the holdings (custody is derived from events)
    deltas = session.exec(
        select(EventLot.delta).where(EventLot.lot_id == lot_id, EventLot.organisation_id.is_not(None))
    ).all()  # type: ignore[union-attr]
    assert sum(deltas) == held
    # and every quantity row is in the lot's own unit
    units = set(session.exec(select(EventLot.unit).where(EventLot.lot_id == lot_id, EventLot.unit.is_not(None))))  # type: ignore[union-attr]
    assert units == {session.get(Lot, lot_id).unit}  # type: ignore[union-attr]


def test_custody_moves_on_receipt_and_partial_receipts_add_up(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    shipment_id = f.ship(session, coop, lot_id, proc, "50").shipment_id
    # in transit nobody can use it: the sender no longer holds it, the receiver not yet
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("50")
    refused("not_holder", lambda: _sell(session, proc, lot_id, "1"), Forbidden)
    f.receive(session, proc, shipment_id, "30", days_ago=3)
    refused("exceeds_holding", lambda: _sell(session, proc, lot_id, "30.5"), RuleViolation)
    f.receive(session, proc, shipment_id, "20", days_ago=2.5)
    shipment = session.get(Shipment, shipment_id)
    assert shipment is not None and shipment.status == ShipmentStatus.RECEIVED and shipment.received_quantity == D("50")
    assert held_by(session=session, lot_id=lot_id, organisation_id=proc.id) == D("50")
    assert in_transit(session=session, lot_id=lot_id) == 0
    # a fully received shipment cannot be received again
    refused("shipment_closed", lambda: f.receive(session, proc, shipment_id, "1"), RuleViolation)


def test_receiving_more_than_is_in_transit_is_refused(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    shipment_id = f.ship(session, coop, lot_id, proc, "50").shipment_id
    f.receive(session, proc, shipment_id, "45")
    error = refused("exceeds_shipment", lambda: f.receive(session, proc, shipment_id, "5.001"), RuleViolation)
    assert error.details["outstanding"] == "5.000"
    assert held_by(session=session, lot_id=lot_id, organisation_id=proc.id) == D("45")


def test_receiving_a_shipment_addressed_to_another_organisation_is_refused(session: Session) -> None:
    coop, proc, thief = f.org(session), f.org(session, "processor"), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    shipment_id = f.ship(session, coop, lot_id, proc, "50").shipment_id
    refused("no_matching_shipment", lambda: f.receive(session, thief, shipment_id), RuleViolation)
    refused("no_matching_shipment", lambda: f.receive(session, coop, shipment_id), RuleViolation)
    assert held_by(session=session, lot_id=lot_id, organisation_id=thief.id) == 0


def test_receiving_before_the_shipping_time_is_refused(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100", days_ago=10).lot_ids[0]
    shipment_id = f.ship(session, coop, lot_id, proc, "50", days_ago=4).shipment_id
    refused("receive_before_ship", lambda: f.receive(session, proc, shipment_id, days_ago=4.01), RuleViolation)
    f.receive(session, proc, shipment_id, days_ago=3.99)


@pytest.mark.parametrize("action", [*TAKERS, "commission"])
def test_no_event_is_dated_before_its_lot_exists(session: Session, action: str) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100", days_ago=5).lot_ids[0]
    if action == "commission":
        refused("before_lot_exists", lambda: commission(session, coop, lot_id, days_ago=5.01), RuleViolation)
    else:
        refused("before_lot_exists", lambda: TAKERS[action](session, coop, lot_id, "1", days_ago=5.01), RuleViolation)


def test_packing_is_not_dated_before_its_lot_exists(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100", days_ago=5).lot_ids[0]
    serials = commission(session, coop, lot_id, 1, days_ago=4)
    data = PackIn(parent_id="CARTON-1", children=[UnitRef(lot_id=lot_id, serial=serials[0])], event_time=f.when(5.01))
    refused("before_lot_exists", lambda: cap(session, coop, EventType.PACK, data), RuleViolation)


@pytest.mark.parametrize("tolerance", [60, 900])
def test_events_more_than_the_configured_tolerance_in_the_future_are_refused(
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    tolerance: int,
) -> None:
    # given a tolerance set through the environment
    monkeypatch.setenv("HYTRACE_FUTURE_TOLERANCE_SECONDS", str(tolerance))
    get_settings.cache_clear()
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]

    def sell_at(seconds: int) -> Any:
        return cap(
            session,
            coop,
            EventType.SELL,
            SellIn(lot_id=lot_id, quantity=D(1), event_time=utcnow() + timedelta(seconds=seconds)),
        )

    # then just inside the tolerance is accepted, just outside refused
    sell_at(tolerance - 30)
    refused("event_in_future", lambda: sell_at(tolerance + 30), RuleViolation)


def _hold_or_recall(session: Session, lot_id: int, status: LotStatus) -> None:
    lot = session.get(Lot, lot_id)
    assert lot is not None
    lot.status = status
    session.add(lot)
    session.flush()


@pytest.mark.parametrize("status", [LotStatus.ON_HOLD, LotStatus.RECALLED])
@pytest.mark.parametrize("action", ["ship", "transform", "sell", "pack"])
def test_a_held_or_recalled_lot_cannot_move(session: Session, status: LotStatus, action: str) -> None:
    # given a lot (with a unit for packing) put on hold or recalled
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    serials = commission(session, coop, lot_id, 1)
    _hold_or_recall(session, lot_id, status)
    before = counts(session)
    # when the holder tries to move it
    if action == "pack":
        data = PackIn(parent_id="CARTON-H", children=[UnitRef(lot_id=lot_id, serial=serials[0])])
        refused(f"lot_{status.value}", lambda: cap(session, coop, EventType.PACK, data), RuleViolation)
    else:
        refused(f"lot_{status.value}", lambda: TAKERS[action](session, coop, lot_id, "10"), RuleViolation)
    # then nothing moved
    assert counts(session) == before
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("100")


def test_writing_off_a_recalled_lot_is_allowed(session: Session) -> None:
    # destroying recalled goods is how a recall ends, so loss is not blocked
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    _hold_or_recall(session, lot_id, LotStatus.RECALLED)
    _loss(session, coop, lot_id, "100")
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == 0


@pytest.mark.parametrize(
    ("applied_days_before", "interval", "accepted"), [(6, 7, False), (7, 7, True), (30, None, True), (0, 0, True)]
)
def test_pre_harvest_interval_is_enforced(
    session: Session, applied_days_before: int, interval: int | None, accepted: bool
) -> None:
    coop = f.org(session)
    prod, loc = f.product(session, coop), f.location(session, coop)
    # noon in Hưng Yên, so the harvest day is unambiguous
    day = f.today() - timedelta(days=2)
    harvest_at = datetime.combine(day, time(12), tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    used = InputUsed(
        kind="pesticide",
        name="Abamectin 3.6EC",
        applied_on=day - timedelta(days=applied_days_before),
        pre_harvest_interval_days=interval,
    )
    data = HarvestIn(
        product_id=prod.id,
        lot_code="PHI1",
        quantity=D(10),
        location_id=loc.id,  # type: ignore[arg-type]
        event_time=harvest_at,
        inputs_used=[used],
    )
    if accepted:
        assert cap(session, coop, EventType.HARVEST, data).lot_ids
    else:
        refused("pre_harvest_interval", lambda: cap(session, coop, EventType.HARVEST, data), RuleViolation)
        assert session.exec(select(Lot).where(Lot.lot_code == "PHI1")).first() is None


def test_packing_unknown_or_void_units_is_refused(session: Session) -> None:
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    serials = commission(session, coop, lot_id, 2)
    bad = PackIn(
        parent_id="CARTON-U",
        children=[UnitRef(lot_id=lot_id, serial=serials[0]), UnitRef(lot_id=lot_id, serial="NOSUCHSERIAL")],
    )
    refused("unknown_unit", lambda: cap(session, coop, EventType.PACK, bad), RuleViolation)
    other_lot = f.harvest(session, coop, "5").lot_ids[0]
    wrong_lot = PackIn(parent_id="CARTON-U", children=[UnitRef(lot_id=other_lot, serial=serials[0])])
    refused("unknown_unit", lambda: cap(session, coop, EventType.PACK, wrong_lot), RuleViolation)


def test_packing_needs_custody_and_each_unit_is_packed_once(session: Session) -> None:
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    serials = commission(session, coop, lot_id, 2)
    refs = [UnitRef(lot_id=lot_id, serial=s) for s in serials]
    refused("not_holder", lambda: cap(session, proc, EventType.PACK, PackIn(parent_id="C-X", children=refs)), Forbidden)
    cap(session, coop, EventType.PACK, PackIn(parent_id="C-1", children=refs[:1]))
    refused(
        "already_packed",
        lambda: cap(session, coop, EventType.PACK, PackIn(parent_id="C-2", children=refs)),
        RuleViolation,
    )
    # once everything is shipped away the former holder may pack none of it
    f.ship(session, coop, lot_id, proc, "100", days_ago=0.5)
    refused(
        "not_holder", lambda: cap(session, coop, EventType.PACK, PackIn(parent_id="C-3", children=refs[1:])), Forbidden
    )


def test_only_a_current_holder_may_commission_units(session: Session) -> None:
    # labels for goods one no longer has would be genuine-looking fakes
    coop, proc = f.org(session), f.org(session, "processor")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    refused("not_holder", lambda: commission(session, proc, lot_id), Forbidden)
    f.ship(session, coop, lot_id, proc, "100", days_ago=2)
    refused("not_holder", lambda: commission(session, coop, lot_id), Forbidden)


def test_an_error_in_a_multi_item_capture_leaves_nothing_written(session: Session) -> None:
    # given a lot and a batch whose last item asks for more than is left
    coop, proc = f.org(session), f.org(session, "processor")
    prod, loc = f.product(session, coop), f.location(session, coop)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    before = counts(session)
    items: list[tuple[EventType, SQLModel]] = [
        (
            EventType.HARVEST,
            HarvestIn(product_id=prod.id, lot_code="BATCH1", quantity=D(5), location_id=loc.id, event_time=f.when(2)),
        ),  # type: ignore[arg-type]
        (
            EventType.SHIP,
            ShipIn(lot_id=lot_id, quantity=D(60), destination_organisation_id=proc.id, event_time=f.when(1)),
        ),  # type: ignore[arg-type]
        (EventType.SELL, SellIn(lot_id=lot_id, quantity=D(30), event_time=f.when(1))),
        (
            EventType.SHIP,
            ShipIn(lot_id=lot_id, quantity=D(20), destination_organisation_id=proc.id, event_time=f.when(1)),
        ),  # type: ignore[arg-type]
    ]
    # when it is captured
    error = refused(
        "exceeds_holding", lambda: capture(session=session, actor=f.member(coop), items=items), RuleViolation
    )
    # then the error names the item, and no row and no holding changed
    assert error.details["index"] == 3
    assert counts(session) == before
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("100")
    assert session.exec(select(Lot).where(Lot.lot_code == "BATCH1")).first() is None
    # and the same batch without the bad item goes through whole
    capture(session=session, actor=f.member(coop), items=items[:3])
    assert counts(session)["Event"] == before["Event"] + 3
    assert held_by(session=session, lot_id=lot_id, organisation_id=coop.id) == D("10")


def test_a_refused_single_event_leaves_custody_untouched(session: Session) -> None:
    # ship takes the quantity before checking the lot's status; the refusal must undo that
    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    _hold_or_recall(session, lot_id, LotStatus.ON_HOLD)
    refused("lot_on_hold", lambda: _ship(session, coop, lot_id, "40"), RuleViolation)
    session.flush()
    assert session.get(Holding, (lot_id, coop.id)).quantity == D("100")  # type: ignore[union-attr]


def test_events_on_unknown_lots_are_refused(session: Session) -> None:
    coop = f.org(session)
    refused("unknown_lot", lambda: _sell(session, coop, 999_999, "1"), RuleViolation)
    receive = ReceiveIn(shipment_id=999_999)
    refused("no_matching_shipment", lambda: cap(session, coop, EventType.RECEIVE, receive), RuleViolation)


def test_a_unit_listed_twice_in_one_pack_is_refused_and_nothing_is_packed(session: Session) -> None:
    from trace.units import Unit

    coop = f.org(session)
    lot_id = f.harvest(session, coop, "100", days_ago=5).lot_ids[0]
    serials = commission(session, coop, lot_id, 2, days_ago=4)
    twice = [UnitRef(lot_id=lot_id, serial=s) for s in (serials[0], serials[1], serials[0])]
    refused(
        "duplicate_unit",
        lambda: cap(session, coop, EventType.PACK, PackIn(parent_id="CARTON-2", children=twice)),
        RuleViolation,
    )
    assert set(session.exec(select(Unit.parent_id).where(Unit.lot_id == lot_id))) == {None}
    # listed once each, they are packed, every one of them
    once = [UnitRef(lot_id=lot_id, serial=s) for s in serials]
    cap(session, coop, EventType.PACK, PackIn(parent_id="CARTON-2", children=once))
    assert set(session.exec(select(Unit.parent_id).where(Unit.lot_id == lot_id))) == {"CARTON-2"}
