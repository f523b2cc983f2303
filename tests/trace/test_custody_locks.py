"""Custody rules hold under real concurrency: 20 writers at once, each on its own PostgreSQL connection.

The domain functions are called directly (one thread, one session and one connection each), so the
database sees 20 transactions interleave as two API processes would make them; the multi-process
proof through HTTP is tests/e2e/test_races.py. After each race the holdings equal the sum of the
log's custody deltas. Each test runs on PostgreSQL (skipped without a server) and on a SQLite file,
whose writers take turns: the outcome must be the same.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col

from api import dberrors
from tests import factories as f
from tests.conftest import migrate
from trace.designations.rights import RightChange, change_right
from trace.errors import DomainError
from trace.events import derived
from trace.events.ledger import capture
from trace.events.models import Event, EventLot, EventType
from trace.events.schemas import (
    CommissionIn,
    CorrectionIn,
    DecommissionIn,
    HarvestIn,
    PackIn,
    ReceiveIn,
    SellIn,
    ShipIn,
    TransformIn,
    TransformInput,
    TransformOutput,
    UnitRef,
)
from trace.lots import Holding, Lot, LotStatus, Shipment
from trace.platform.db import make_engine, session_scope
from trace.printing.models import PrintKind
from trace.printing.runs import PrintRunCreate, create_run
from trace.recalls.models import ReasonIn
from trace.recalls.recall import recall
from trace.units import Unit

N = 20


@pytest.fixture(params=["postgresql", "sqlite"])
def racing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database of its own, with room for every racer's connection."""
    if request.param == "postgresql":
        yield request.getfixturevalue("postgres_engine")
        return
    url = f"sqlite:///{tmp_path / 'races.db'}"
    migrate(url)
    engine = make_engine(url, pool_size=N + 2)
    yield engine
    engine.dispose()


def race(engine: Engine, n: int, attempt: Callable[[Session, int], object]) -> Counter[str]:
    """Run ``attempt`` n times at once, each in its own transaction; count "ok" and refusal codes.

    A write conflict (a deadlock, a lock wait cut short) is retried, as the API's server does."""
    start = threading.Barrier(n)
    outcomes: Counter[str] = Counter()
    guard = threading.Lock()

    def one(index: int) -> None:
        start.wait()
        for _ in range(10):
            try:
                with session_scope(engine) as session:
                    attempt(session, index)
                outcome = "ok"
            except DomainError as error:
                outcome = error.code or type(error).__name__
            except IntegrityError:
                time.sleep(0.01)
                continue
            except DBAPIError as error:
                if dberrors.fault_of(error) is not dberrors.WRITE_CONFLICT:
                    raise
                time.sleep(0.01)
                continue
            with guard:
                outcomes[outcome] += 1
            return
        with guard:
            outcomes["gave_up"] += 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def holdings_match_the_log(engine: Engine, lot_ids: list[int]) -> None:
    """Every holding of these lots equals the sum of its custody deltas in the log (less those corrected),
    and verify-log finds every derived table as the log implies."""
    with Session(engine) as session:
        held = {
            (lot, org): Decimal(q)
            for lot, org, q in session.execute(
                select(col(Holding.lot_id), col(Holding.organisation_id), col(Holding.quantity)).where(
                    col(Holding.lot_id).in_(lot_ids)
                )
            )
        }
        logged = {
            (lot, org): Decimal(q)
            for lot, org, q in session.execute(
                select(col(EventLot.lot_id), col(EventLot.organisation_id), func.sum(EventLot.delta))
                .where(
                    col(EventLot.lot_id).in_(lot_ids),
                    col(EventLot.organisation_id).is_not(None),
                    # a correction reverses its event's custody changes
                    col(EventLot.event_id).not_in(
                        select(col(Event.corrects_event_id)).where(col(Event.corrects_event_id).is_not(None))
                    ),
                )
                .group_by(col(EventLot.lot_id), col(EventLot.organisation_id))
            )
        }
    assert {k: v for k, v in held.items() if v} == {k: v for k, v in logged.items() if v}
    # And every other table derived from the log (shipments, lots' statuses, units, ids) is what it implies.
    with Session(engine) as session:
        report = derived.verify(session=session)
    assert report.ok, report.difference


def _committed(engine: Engine, build: Callable[[Session], object]) -> object:
    with session_scope(engine) as session:
        return build(session)


class Chain:
    """A grower with a 100 kg lot and a processor, committed."""

    def __init__(self, engine: Engine, qty: str = "100") -> None:
        with session_scope(engine) as session:
            self.grower = f.org(session)
            self.processor = f.org(session, kind="processor")
            self.product = f.product(session, self.processor)
            self.lot_id = f.harvest(session, self.grower, qty).lot_ids[0]
            self.grower_id, self.processor_id = self.grower.id, self.processor.id


def ship(chain: Chain, qty: str) -> Callable[[Session, int], object]:
    def attempt(session: Session, _index: int) -> object:
        data = ShipIn(lot_id=chain.lot_id, quantity=Decimal(qty), destination_organisation_id=chain.processor_id)
        return capture(session=session, actor=f.member(chain.grower), items=[(EventType.SHIP, data)])

    return attempt


def test_twenty_ships_of_a_whole_lot_at_once_ship_it_once(racing: Engine) -> None:
    chain = Chain(racing)
    outcomes = race(racing, N, ship(chain, "100"))
    assert outcomes["ok"] == 1 and outcomes["exceeds_holding"] + outcomes["not_holder"] == N - 1
    holdings_match_the_log(racing, [chain.lot_id])


def test_twenty_ships_of_a_quarter_at_once_ship_four(racing: Engine) -> None:
    chain = Chain(racing)
    outcomes = race(racing, N, ship(chain, "25"))
    assert outcomes["ok"] == 4 and outcomes["exceeds_holding"] + outcomes["not_holder"] == N - 4, outcomes
    with Session(racing) as session:
        shipped = session.execute(select(func.sum(Shipment.quantity)).where(Shipment.lot_id == chain.lot_id)).scalar()
        assert Decimal(shipped) == Decimal(100)
        lot = session.get(Lot, chain.lot_id)
        assert lot is not None and lot.status == LotStatus.ACTIVE  # in transit, not consumed
    holdings_match_the_log(racing, [chain.lot_id])


def test_twenty_receipts_of_one_shipment_receive_it_once(racing: Engine) -> None:
    chain = Chain(racing)
    with session_scope(racing) as session:
        first = f.ship(session, chain.grower, chain.lot_id, chain.processor, "40").shipment_id
        f.receive(session, chain.processor, first)  # the receiver already holds part of the lot
        second = f.ship(session, chain.grower, chain.lot_id, chain.processor, "60").shipment_id

    def receive(session: Session, _index: int) -> object:
        data = ReceiveIn(shipment_id=second)  # type: ignore[arg-type]
        return capture(session=session, actor=f.member(chain.processor), items=[(EventType.RECEIVE, data)])

    outcomes = race(racing, N, receive)
    assert outcomes["ok"] == 1 and outcomes["shipment_closed"] == N - 1, outcomes
    with Session(racing) as session:
        held = session.get(Holding, (chain.lot_id, chain.processor_id))
        assert held is not None and held.quantity == Decimal(100)
        receipts = session.execute(
            select(func.count()).select_from(Event).where(Event.type == EventType.RECEIVE, Event.lot_id == chain.lot_id)
        ).scalar_one()
        assert receipts == 2
    holdings_match_the_log(racing, [chain.lot_id])


def test_twenty_transforms_of_a_whole_lot_at_once_consume_it_once(racing: Engine) -> None:
    chain = Chain(racing)
    with session_scope(racing) as session:
        product = f.product(session, chain.grower, category="longan_dried")

    def transform(session: Session, index: int) -> object:
        data = TransformIn(
            inputs=[TransformInput(lot_id=chain.lot_id, quantity=Decimal(100))],  # type: ignore[arg-type]
            outputs=[TransformOutput(product_id=product.id, lot_code=f"S{index:03d}", quantity=Decimal(30))],  # type: ignore[arg-type]
        )
        return capture(session=session, actor=f.member(chain.grower), items=[(EventType.TRANSFORM, data)])

    outcomes = race(racing, N, transform)
    assert outcomes["ok"] == 1 and outcomes["exceeds_holding"] + outcomes["not_holder"] == N - 1, outcomes
    holdings_match_the_log(racing, [chain.lot_id])


def test_twenty_sales_over_the_holding_sell_what_is_held(racing: Engine) -> None:
    chain = Chain(racing, qty="70")

    def sell(session: Session, _index: int) -> object:
        data = SellIn(lot_id=chain.lot_id, quantity=Decimal(10))  # type: ignore[arg-type]
        return capture(session=session, actor=f.member(chain.grower), items=[(EventType.SELL, data)])

    outcomes = race(racing, N, sell)
    assert outcomes["ok"] == 7 and outcomes["exceeds_holding"] + outcomes["not_holder"] == N - 7, outcomes
    holdings_match_the_log(racing, [chain.lot_id])


def test_twenty_print_runs_take_no_more_than_the_lots_capacity(racing: Engine) -> None:
    chain = Chain(racing, qty="20")  # 20 kg, no package size: 20 labels

    def run(session: Session, _index: int) -> object:
        data = PrintRunCreate(kind=PrintKind.UNIT, quantity=5)
        return create_run(session=session, actor=f.member(chain.grower), lot_id=chain.lot_id, data=data)

    outcomes = race(racing, N, run)
    assert outcomes["ok"] == 4 and outcomes["over_capacity"] == N - 4, outcomes


def test_twenty_corrections_of_one_event_reverse_it_once(racing: Engine) -> None:
    chain = Chain(racing)
    with session_scope(racing) as session:
        shipped = f.ship(session, chain.grower, chain.lot_id, chain.processor, "30").event_ids[0]

    def correct(session: Session, _index: int) -> object:
        data = CorrectionIn(event_id=shipped, reason="incorrect_data")
        return capture(session=session, actor=f.member(chain.grower), items=[(EventType.CORRECTION, data)])

    outcomes = race(racing, N, correct)
    assert outcomes["ok"] == 1 and outcomes["already_corrected"] == N - 1, outcomes
    with Session(racing) as session:
        held = session.get(Holding, (chain.lot_id, chain.grower_id))
        assert held is not None and held.quantity == Decimal(100)
    holdings_match_the_log(racing, [chain.lot_id])


def test_ships_racing_a_recall_never_ship_a_recalled_lot(racing: Engine) -> None:
    chain = Chain(racing)
    with session_scope(racing) as session:
        inspector = f.member(f.org(session, kind="authority"), role=f.Role.INSPECTOR)

    move = ship(chain, "5")

    def attempt(session: Session, index: int) -> object:
        if index == N // 2:
            return recall(session=session, actor=inspector, lot_id=chain.lot_id, data=ReasonIn(reason="Dư lượng cao"))
        return move(session, index)

    outcomes = race(racing, N + 1, attempt)
    assert set(outcomes) <= {"ok", "lot_recalled"}, outcomes
    with Session(racing) as session:
        times = dict(
            session.execute(
                select(col(Event.type), func.max(Event.record_time))
                .where(Event.lot_id == chain.lot_id, col(Event.type).in_([EventType.SHIP, EventType.RECALL]))
                .group_by(col(Event.type))
            ).all()
        )
        ships = session.execute(
            select(func.count()).select_from(Event).where(Event.lot_id == chain.lot_id, Event.type == EventType.SHIP)
        ).scalar_one()
    # every ship recorded was decided before the recall took the lot's lock, so none is stamped after it
    assert ships == outcomes["ok"] - 1
    if EventType.SHIP in times:
        assert times[EventType.SHIP] < times[EventType.RECALL]
    holdings_match_the_log(racing, [chain.lot_id])


def test_twenty_suspensions_of_one_right_suspend_it_once(racing: Engine) -> None:
    with session_scope(racing) as session:
        holder = f.org(session, "designation_holder")
        designation = f.designation(session, holder)
        right = f.grant(session, designation, f.org(session))
        right_id, holder_actor = right.id, f.member(holder, role=f.Role.ORG_ADMIN)

    def suspend(session: Session, _index: int) -> object:
        data = RightChange(reason="Vi phạm quy chế sử dụng")
        return change_right(session=session, actor=holder_actor, right_id=right_id, action="suspend", data=data)  # type: ignore[arg-type]

    def changes() -> int:
        with Session(racing) as session:
            return session.execute(
                select(func.count()).select_from(Event).where(Event.type == EventType.RIGHT)
            ).scalar_one()

    before = changes()
    outcomes = race(racing, N, suspend)
    assert outcomes["ok"] == 1 and outcomes["right_suspended"] == N - 1, outcomes
    assert changes() == before + 1


def test_a_ship_waits_for_a_recall_in_flight_and_is_refused(racing: Engine) -> None:
    # given a recall of the lot written but not yet committed
    chain = Chain(racing)
    with session_scope(racing) as session:
        inspector = f.member(f.org(session, kind="authority"), role=f.Role.INSPECTOR)
    outcomes: list[str] = []

    def try_ship() -> None:
        try:
            with session_scope(racing) as session:
                ship(chain, "5")(session, 0)
            outcomes.append("ok")
        except DomainError as error:
            outcomes.append(error.code or "refused")

    with session_scope(racing) as recalling:
        recall(session=recalling, actor=inspector, lot_id=chain.lot_id, data=ReasonIn(reason="Dư lượng cao"))
        recalling.flush()
        # when the grower ships part of it meanwhile, on another connection
        shipping = threading.Thread(target=try_ship)
        shipping.start()
        shipping.join(0.5)
        assert shipping.is_alive() and outcomes == []  # it waits: it reads the lot's status under its lock
    shipping.join(15)
    # then it sees the recall and is refused (read without the lock, it saw "active" and shipped)
    assert outcomes == ["lot_recalled"]
    holdings_match_the_log(racing, [chain.lot_id])


def _commissioned(engine: Engine, chain: Chain, count: int) -> tuple[list[str], list[str]]:
    """``count`` units of the chain's lot: their serials and human codes."""
    with session_scope(engine) as session:
        data = CommissionIn(lot_id=chain.lot_id, count=count)  # type: ignore[arg-type]
        serials = capture(session=session, actor=f.member(chain.grower), items=[(EventType.COMMISSION, data)]).serials
        codes = list(session.scalars(select(Unit.code).where(Unit.lot_id == chain.lot_id).order_by(col(Unit.serial))))
    return serials, codes


def test_twenty_commissions_take_no_more_codes_than_the_lots_capacity(racing: Engine) -> None:
    chain = Chain(racing, qty="20")

    def commission(session: Session, _index: int) -> object:
        data = CommissionIn(lot_id=chain.lot_id, count=5)  # type: ignore[arg-type]
        return capture(session=session, actor=f.member(chain.grower), items=[(EventType.COMMISSION, data)])

    outcomes = race(racing, N, commission)
    assert outcomes["ok"] == 4 and outcomes["over_capacity"] == N - 4, outcomes
    with Session(racing) as session:
        units = session.execute(select(func.count()).select_from(Unit).where(Unit.lot_id == chain.lot_id)).scalar()
    assert units == 20


def test_twenty_voids_of_the_same_codes_void_them_once(racing: Engine) -> None:
    chain = Chain(racing)
    _, codes = _commissioned(racing, chain, 3)

    def void(session: Session, _index: int) -> object:
        data = DecommissionIn(codes=codes, reason="Tờ nhãn bị hỏng")
        return capture(session=session, actor=f.member(chain.grower), items=[(EventType.DECOMMISSION, data)])

    outcomes = race(racing, N, void)
    assert outcomes["ok"] == 1 and outcomes["already_void"] == N - 1, outcomes
    with Session(racing) as session:
        voids = session.execute(
            select(func.count()).select_from(Event).where(Event.type == EventType.DECOMMISSION)
        ).scalar()
    assert voids == 1


def test_twenty_packs_of_the_same_units_into_different_cartons_pack_them_once(racing: Engine) -> None:
    chain = Chain(racing)
    serials, _ = _commissioned(racing, chain, 4)

    def pack(session: Session, index: int) -> object:
        data = PackIn(
            parent_id=f"urn:epc:id:sscc:0614141.{index:010d}",
            children=[UnitRef(lot_id=chain.lot_id, serial=s) for s in serials],  # type: ignore[arg-type]
        )
        return capture(session=session, actor=f.member(chain.grower), items=[(EventType.PACK, data)])

    outcomes = race(racing, N, pack)
    assert outcomes["ok"] == 1 and outcomes["already_packed"] == N - 1, outcomes
    with Session(racing) as session:
        parents = set(session.scalars(select(Unit.parent_id).where(Unit.lot_id == chain.lot_id)))
    assert len(parents) == 1 and None not in parents


def test_twenty_print_runs_take_no_more_than_the_rights_label_quota(racing: Engine) -> None:
    # given a GI grower whose right allows 20 labels a year, and a lot of 500 bags
    with session_scope(racing) as session:
        given = f.gi_grower(session)
        given.right.annual_label_quota = 20
        session.add(given.right)
        lot_id = f.harvest(
            session, given.grower, "250", prod=given.fresh, loc=given.area, designation_ids=[given.gi.id]
        ).lot_ids[0]
        grower = given.grower

    def run(session: Session, _index: int) -> object:
        data = PrintRunCreate(kind=PrintKind.UNIT, quantity=5)
        return create_run(session=session, actor=f.member(grower), lot_id=lot_id, data=data)

    outcomes = race(racing, N, run)
    assert outcomes["ok"] == 4 and outcomes["quota_exceeded"] == N - 4, outcomes


def test_twenty_part_receipts_of_a_first_shipment_receive_what_was_shipped(racing: Engine) -> None:
    # given a receiver holding none of the lot yet (each receipt would make its holding row)
    chain = Chain(racing)
    with session_scope(racing) as session:
        shipment = f.ship(session, chain.grower, chain.lot_id, chain.processor, "60").shipment_id

    def receive(session: Session, _index: int) -> object:
        data = ReceiveIn(shipment_id=shipment, quantity=Decimal(5))  # type: ignore[arg-type]
        return capture(session=session, actor=f.member(chain.processor), items=[(EventType.RECEIVE, data)])

    outcomes = race(racing, N, receive)
    assert outcomes["ok"] == 12 and outcomes["exceeds_shipment"] + outcomes["shipment_closed"] == N - 12, outcomes
    with Session(racing) as session:
        held = session.get(Holding, (chain.lot_id, chain.processor_id))
        assert held is not None and held.quantity == Decimal(60)
    holdings_match_the_log(racing, [chain.lot_id])


def test_twenty_harvests_of_one_lot_code_make_one_lot(racing: Engine) -> None:
    chain = Chain(racing)
    with session_scope(racing) as session:
        product, area = f.product(session, chain.grower), f.location(session, chain.grower)
        product_id, area_id = product.id, area.id

    def harvest(session: Session, _index: int) -> object:
        data = HarvestIn(product_id=product_id, lot_code="NL-2026-07-01", quantity=Decimal(50), location_id=area_id)  # type: ignore[arg-type]
        return capture(session=session, actor=f.member(chain.grower), items=[(EventType.HARVEST, data)])

    outcomes = race(racing, N, harvest)
    assert outcomes["ok"] == 1 and outcomes["lot_exists"] == N - 1, outcomes
