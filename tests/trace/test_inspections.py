"""Who may record an inspection: a market inspector on any lot; otherwise only an organisation holding
stock of the lot now. The check reads the holding to allow a write that does not change it, so on
PostgreSQL it locks the holding row: a sale of the last of it, running at the same time, is seen."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from tests import factories as f
from trace.access import Actor, Role
from trace.errors import Forbidden, RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.schemas import InspectIn, SellIn
from trace.lots import Holding
from trace.platform.db import session_scope

SHOPS = 20  # simultaneous inspections


def _inspect(session: Session, actor: Actor, lot_id: int, result: str = "pass") -> Event:
    return capture(
        session=session, actor=actor, items=[(EventType.INSPECT, InspectIn(lot_id=lot_id, result=result))]
    ).events[0]  # type: ignore[arg-type, return-value]


def _sell(session: Session, actor: Actor, lot_id: int, quantity: str) -> None:
    capture(session=session, actor=actor, items=[(EventType.SELL, SellIn(lot_id=lot_id, quantity=Decimal(quantity)))])


@dataclass
class Shop:
    lot_id: int
    coop: Actor
    shop: Actor
    shop_id: int


def _shop_with_stock(session: Session, quantity: str = "10") -> Shop:
    coop, shop = f.org(session), f.org(session, "retailer")
    lot_id = f.harvest(session, coop, "100").lot_ids[0]
    f.receive(session, shop, f.ship(session, coop, lot_id, shop, quantity).shipment_id)  # type: ignore[arg-type]
    return Shop(lot_id, f.member(coop), f.member(shop), shop.id)  # type: ignore[arg-type]


def test_a_former_holder_another_organisation_and_a_holder_with_stock(session: Session) -> None:
    # given a shop that held 10 kg of a lot and sold them, an organisation that never held it, an inspector
    given = _shop_with_stock(session)
    inspector = Actor(role=Role.INSPECTOR, organisation_id=f.org(session, "authority").id, name="QLTT")
    stranger = f.member(f.org(session, "retailer"))
    assert _inspect(session, given.shop, given.lot_id).type == EventType.INSPECT  # with stock: allowed
    _sell(session, given.shop, given.lot_id, "10")
    # then the former holder and the stranger are refused, the producer (90 kg left) and the inspector are not
    for actor in (given.shop, stranger):
        with pytest.raises(Forbidden) as refused:
            _inspect(session, actor, given.lot_id, "fail")
        assert refused.value.code == "not_holder"
    assert _inspect(session, given.coop, given.lot_id).type == EventType.INSPECT
    assert _inspect(session, inspector, given.lot_id, "fail").type == EventType.INSPECT
    # an inspector on a lot nobody holds any more is still an inspector
    _sell(session, given.coop, given.lot_id, "90")
    assert _inspect(session, inspector, given.lot_id).type == EventType.INSPECT
    with pytest.raises(RuleViolation):
        _inspect(session, inspector, 2_000_000_000)


def test_within_one_capture_a_sale_before_the_inspection_counts(session: Session) -> None:
    # given a shop holding 10 kg that sends, in one call, the sale of all of it and then an inspection
    given = _shop_with_stock(session)
    with pytest.raises(Forbidden) as refused:
        capture(
            session=session,
            actor=given.shop,
            items=[
                (EventType.SELL, SellIn(lot_id=given.lot_id, quantity=Decimal(10))),
                (EventType.INSPECT, InspectIn(lot_id=given.lot_id, result="pass")),
            ],
        )
    # then the inspection is refused and nothing of the call is recorded
    assert refused.value.code == "not_holder"
    held = session.execute(
        select(col(Holding.quantity)).where(
            col(Holding.lot_id) == given.lot_id, col(Holding.organisation_id) == given.shop_id
        )
    ).scalar_one()
    assert held == Decimal(10)


# -- PostgreSQL: the rule under concurrency --------------------------------------------------------


def _committed_shop(engine: Engine) -> Shop:
    with session_scope(engine) as session:
        return _shop_with_stock(session)


def _try_inspect(
    engine: Engine, actor: Actor, lot_id: int, outcomes: list[str], start: threading.Barrier | None = None
) -> None:
    if start is not None:
        start.wait()
    try:
        with session_scope(engine) as session:
            _inspect(session, actor, lot_id)
        outcomes.append("recorded")
    except Forbidden as error:
        outcomes.append(error.code or "forbidden")


def test_an_inspection_waits_for_a_sale_in_flight_and_sees_it(postgres_engine: Engine) -> None:
    # given a shop's sale of all its stock written but not yet committed
    given = _committed_shop(postgres_engine)
    outcomes: list[str] = []
    with session_scope(postgres_engine) as seller:
        _sell(seller, given.shop, given.lot_id, "10")
        seller.flush()
        # when the shop records an inspection meanwhile, on another connection
        inspecting = threading.Thread(target=_try_inspect, args=(postgres_engine, given.shop, given.lot_id, outcomes))
        inspecting.start()
        inspecting.join(0.5)
        assert inspecting.is_alive() and outcomes == []  # it waits for the sale: it read the stock locked
    inspecting.join(15)
    # then it sees the sale and is refused (read unlocked, it saw 10 kg and recorded after the sale)
    assert outcomes == ["not_holder"]


def test_simultaneous_inspections_and_a_sale_of_everything_never_inspect_after_the_sale(
    postgres_engine: Engine,
) -> None:
    # given a shop holding 10 kg
    given = _committed_shop(postgres_engine)
    outcomes: list[str] = []
    sold: list[bool] = []
    start = threading.Barrier(SHOPS + 1)

    def sell() -> None:
        start.wait()
        with session_scope(postgres_engine) as session:
            _sell(session, given.shop, given.lot_id, "10")
        sold.append(True)

    # when it sends 20 inspections at once, and its till sells everything at the same moment
    threads = [
        threading.Thread(target=_try_inspect, args=(postgres_engine, given.shop, given.lot_id, outcomes, start))
        for _ in range(SHOPS)
    ] + [threading.Thread(target=sell)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sold == [True] and len(outcomes) == SHOPS and set(outcomes) <= {"recorded", "not_holder"}
    # then, in the shop's own chain (the order its events were committed in), every inspection it
    # recorded comes before the sale, and those refused are the ones that came after
    with Session(postgres_engine) as session:
        kinds = list(
            session.execute(
                select(col(Event.type)).where(col(Event.organisation_id) == given.shop_id).order_by(col(Event.seq))
            ).scalars()
        )
    after_sale = kinds[kinds.index(EventType.SELL) + 1 :]
    assert EventType.INSPECT not in after_sale, kinds
    assert kinds.count(EventType.INSPECT) == outcomes.count("recorded")
