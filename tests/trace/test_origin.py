"""The public facts of a label: what a consumer may see of a unit's journey, and nothing private."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select
from sqlmodel import Session, col

from tests import factories as f
from tests.trace.test_claims import DONG_TAO, HOAN_LONG, designation, grant
from trace import origin
from trace.certifications import CertificationCreate, record_certification
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import HarvestIn, InputUsed
from trace.lots import Lot
from trace.organisations import Organisation
from trace.printing import runs
from trace.products import Product
from trace.recalls import holds, recall
from trace.recalls.models import ReasonIn
from trace.units import Unit

SECRET_NOTE = "Giá mua 35.000 đ/kg - bí mật"
SECRET_KDE = "hợp đồng HD-7781"
_n = itertools.count(7)


@dataclass
class Chain:
    """A GI longan harvest, half shipped to a processor that dries it (and half to another buyer), the
    dried lot labelled and sent to a shop."""

    coop: Organisation
    proc: Organisation
    shop: Organisation
    other: Organisation
    fresh: Product
    dried: Product
    harvest: Lot
    lot: Lot
    unit: Unit


def build_chain(session: Session, *, practices_public: bool = True) -> Chain:
    """The chain above, through the domain's own rules."""
    holder = f.org(session, "designation_holder", name="Sở Khoa học và Công nghệ (thử nghiệm)")
    gi = designation(session, holder)
    coop = f.org(session, name="HTX Nhãn lồng Đông Tảo (thử nghiệm)", practices_public=practices_public)
    proc, shop, other = f.org(session, "processor"), f.org(session, "retailer"), f.org(session, "distributor")
    grant(session, gi, coop)
    grant(session, gi, proc)  # the processor may carry the GI onto what it makes
    area = f.location(
        session,
        coop,
        name="Vườn nhãn Đông Tảo",
        code=f"VN-HY-TEST-{next(_n):02d}",
        commune_code=HOAN_LONG,
        former_commune_code=DONG_TAO,
    )
    fresh = f.product(session, coop, name_vi="Nhãn lồng tươi", name_en="Fresh longan", package_size=Decimal("0.5"))
    dried = f.product(
        session,
        proc,
        name_vi="Long nhãn sấy",
        name_en="Dried longan",
        category="longan_dried",
        package_size=Decimal("0.5"),
        unit="kg",
    )
    record_certification(
        session=session,
        actor=f.ADMIN,
        data=CertificationCreate(
            organisation_id=coop.id,
            kind="vietgap",
            number="VG-TEST-01",
            issuer="Trung tâm chứng nhận (thử nghiệm)",  # type: ignore[arg-type]
            valid_from=date.today() - timedelta(days=300),
            valid_to=date.today() + timedelta(days=300),
        ),
    )
    harvested = capture(
        session=session,
        actor=f.member(coop),
        items=[
            (
                EventType.HARVEST,
                HarvestIn(
                    product_id=fresh.id,
                    lot_code="NL-TEST-1",
                    quantity=Decimal(200),
                    location_id=area.id,  # type: ignore[arg-type]
                    event_time=f.when(6),
                    designation_ids=[gi.id],  # type: ignore[list-item]
                    inputs_used=[
                        InputUsed(
                            kind="fertiliser",
                            name="Phân hữu cơ vi sinh",
                            dose="2 kg/cây",
                            applied_on=date.today() - timedelta(days=60),
                        )
                    ],
                    kde={"contract": SECRET_KDE},
                    note=SECRET_NOTE,
                ),
            )
        ],
    ).lot_ids[0]
    to_proc = f.ship(session, coop, harvested, proc, "120", days_ago=5.5).shipment_ids[0]
    f.ship(session, coop, harvested, other, "80", days_ago=5.4)
    f.receive(session, proc, to_proc, days_ago=5.3)
    made = f.transform(session, proc, [(harvested, "120")], [(dried, "30")], days_ago=5).lot_ids[0]
    run = runs.create_run(session=session, actor=f.member(proc), lot_id=made, data=runs.PrintRunCreate(quantity=4))
    to_shop = f.ship(session, proc, made, shop, "10", days_ago=4).shipment_ids[0]
    f.receive(session, shop, to_shop, days_ago=3.5)
    unit = (
        session.execute(select(Unit).where(col(Unit.print_run_id) == run.id).order_by(col(Unit.id))).scalars().first()
    )
    assert unit is not None
    lot, first = session.get(Lot, made), session.get(Lot, harvested)
    assert lot is not None and first is not None
    return Chain(coop, proc, shop, other, fresh, dried, first, lot, unit)


def test_the_journey_runs_from_the_growing_area_to_the_shop_through_the_transformation(session: Session) -> None:
    # given a dried lot made from half of a harvest
    c = build_chain(session)
    # when a unit of it is looked up
    page = origin.build(session=session, lot=c.lot, unit=c.unit)
    # then the journey has each step on the way, in time order, each saying who, what and where
    kinds = [(s.kind, s.lot_code) for s in page.journey]
    assert kinds[0] == (EventType.HARVEST, "NL-TEST-1")
    assert (EventType.TRANSFORM, c.lot.lot_code) in kinds
    assert kinds.index((EventType.TRANSFORM, c.lot.lot_code)) > kinds.index((EventType.RECEIVE, "NL-TEST-1"))
    assert [s.at for s in page.journey] == sorted(s.at for s in page.journey)
    harvest = page.journey[0]
    assert harvest.where is not None and harvest.where.code == page.growing_areas[0].code
    assert (
        harvest.where.commune == "Xã Hoàn Long"
        and harvest.where.former_commune
        and "Đông Tảo" in harvest.where.former_commune
    )
    ships = [s for s in page.journey if s.kind == EventType.SHIP]
    # and the half of the harvest sold to another buyer is not this package's journey
    assert {s.to for s in ships} == {c.proc.name, c.shop.name}
    assert page.growing_areas[0].code.startswith("VN-HY-TEST-") and page.harvested_on == [c.harvest.production_date]
    assert page.producer.name == c.proc.name and page.scope == "unit" and page.serial == c.unit.serial


def test_nothing_private_reaches_the_page_and_inputs_only_with_the_producers_consent(session: Session) -> None:
    shown = origin.build(session=session, lot=build_chain(session).lot, unit=None)
    text = shown.model_dump_json()
    assert SECRET_NOTE not in text and SECRET_KDE not in text and "biz_transactions" not in text
    assert shown.journey[0].inputs[0]["name"] == "Phân hữu cơ vi sinh"
    hidden = origin.build(session=session, lot=build_chain(session, practices_public=False).lot, unit=None)
    assert hidden.journey[0].inputs == [] and "Phân hữu cơ" not in hidden.model_dump_json()


def test_a_farm_household_is_named_only_with_its_consent(session: Session) -> None:
    farm = f.org(session, "farm", name="Nguyễn Văn Thử")
    lot_id = f.harvest(session, farm).lot_ids[0]
    page = origin.build(session=session, lot=session.get(Lot, lot_id), unit=None)  # type: ignore[arg-type]
    assert "Nguyễn Văn Thử" not in page.model_dump_json()
    assert page.producer.name.startswith("Hộ sản xuất")


def test_the_designation_and_the_certificate_valid_at_harvest_are_shown_on_the_dried_lot(session: Session) -> None:
    page = origin.build(session=session, lot=build_chain(session).lot, unit=None)
    (gi,) = page.designations
    assert (gi.kind, gi.registration_number, gi.decision_number, gi.source) == (
        "geographical_indication",
        "00055",
        "186/QĐ-SHTT",
        "inherited",
    )
    assert "Huyện Khoái Châu" in gi.area
    assert [(c.kind, c.number, c.lot_code) for c in page.certificates] == [("vietgap", "VG-TEST-01", "NL-TEST-1")]


def test_a_recall_of_the_harvest_puts_an_alert_on_the_dried_lot_naming_the_source(session: Session) -> None:
    c = build_chain(session)
    assert origin.build(session=session, lot=c.lot, unit=c.unit).alert is None
    recall.recall(
        session=session,
        actor=f.member(c.coop),
        lot_id=c.harvest.id,
        data=ReasonIn(reason="Dư lượng thuốc BVTV vượt ngưỡng"),
    )  # type: ignore[arg-type]
    session.refresh(c.lot)
    alert = origin.build(session=session, lot=c.lot, unit=c.unit).alert
    assert alert is not None and alert.kind == "recalled" and alert.reason == "Dư lượng thuốc BVTV vượt ngưỡng"
    assert alert.source_lot_code == "NL-TEST-1" and alert.by == c.coop.name


def test_a_hold_shows_its_reason_and_the_digest_changes_with_it(session: Session) -> None:
    c = build_chain(session)
    before = origin.build(session=session, lot=c.lot, unit=c.unit)
    holds.hold(
        session=session,
        actor=f.member(c.proc),
        lot_id=c.lot.id,  # type: ignore[arg-type]
        data=ReasonIn(reason="Chờ kết quả kiểm nghiệm"),
    )
    session.refresh(c.lot)
    after = origin.build(session=session, lot=c.lot, unit=c.unit)
    assert after.alert is not None and (after.alert.kind, after.alert.reason) == ("on_hold", "Chờ kết quả kiểm nghiệm")
    assert after.version != before.version and after.valid is False


def test_steps_stamped_to_the_same_minute_keep_the_order_they_were_recorded_in(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given event ids that sort against the order of recording (ids are random: make them so)
    ids = iter(uuid.UUID(int=n) for n in range(2**100, 0, -(2**90)))
    monkeypatch.setattr("trace.events.rules.uuid.uuid4", lambda: next(ids))
    # and a harvest and two shipments typed with the same time (forms record to the minute)
    coop, buyer = f.org(session), f.org(session, "processor")
    same = f.when(1).replace(second=0, microsecond=0)
    prod, area = f.product(session, coop), f.location(session, coop)
    lot_id = capture(
        session=session,
        actor=f.member(coop),
        items=[
            (
                EventType.HARVEST,
                HarvestIn(
                    product_id=prod.id, lot_code="NL-SAME-1", quantity=Decimal(10), location_id=area.id, event_time=same
                ),
            )
        ],
    ).lot_ids[0]  # type: ignore[arg-type]
    for _ in range(2):
        capture(
            session=session,
            actor=f.member(coop),
            items=[
                (
                    EventType.SHIP,
                    f.ShipIn(lot_id=lot_id, quantity=Decimal(1), destination_organisation_id=buyer.id, event_time=same),
                )
            ],
        )  # type: ignore[arg-type]
    # when the journey is told, then the harvest comes first, as recorded
    page = origin.build(session=session, lot=session.get(Lot, lot_id), unit=None)  # type: ignore[arg-type]
    assert [s.kind for s in page.journey] == [EventType.HARVEST, EventType.SHIP, EventType.SHIP]


def test_a_step_recorded_without_a_time_is_stamped_in_the_instances_zone(session: Session) -> None:
    coop = f.org(session)
    prod, area = f.product(session, coop), f.location(session, coop)
    capture(
        session=session,
        actor=f.member(coop),
        items=[
            (
                EventType.HARVEST,
                HarvestIn(product_id=prod.id, lot_code="NL-NOW-1", quantity=Decimal(10), location_id=area.id),
            )
        ],
    )  # type: ignore[arg-type]
    lot = session.execute(select(Lot).where(col(Lot.lot_code) == "NL-NOW-1")).scalars().one()
    page = origin.build(session=session, lot=lot, unit=None)
    assert page.journey[0].at.utcoffset() == timedelta(hours=7)  # Asia/Ho_Chi_Minh, whatever the server's own zone


def test_a_units_page_tells_its_own_labelling_and_the_lots_page_every_labelling(session: Session) -> None:
    # given: the dried lot labelled a second time (another print run, another commission event)
    chain = build_chain(session)
    second = runs.create_run(
        session=session, actor=f.member(chain.proc), lot_id=chain.lot.id, data=runs.PrintRunCreate(quantity=3)
    )
    other = session.execute(select(Unit).where(col(Unit.print_run_id) == second.id)).scalars().first()
    assert other is not None and other.created_event_id != chain.unit.created_event_id
    # when
    pages = {
        "first": origin.build(session=session, lot=chain.lot, unit=chain.unit),
        "second": origin.build(session=session, lot=chain.lot, unit=other),
        "lot": origin.build(session=session, lot=chain.lot, unit=None),
    }
    # then
    labelled = {k: [s.event_id for s in p.journey if s.kind == EventType.COMMISSION] for k, p in pages.items()}
    assert labelled["first"] == [chain.unit.created_event_id]
    assert labelled["second"] == [other.created_event_id]
    assert sorted(labelled["lot"]) == sorted([chain.unit.created_event_id, other.created_event_id])
    # the other steps are the same on every page
    rest = {k: [s.event_id for s in p.journey if s.kind != EventType.COMMISSION] for k, p in pages.items()}
    assert rest["first"] == rest["second"] == rest["lot"] and rest["lot"]


def test_a_units_page_never_reads_another_labellings_event(session: Session) -> None:
    # A lot of 1,000,000 units has ten labellings of 100,000: a unit's page reads its own (whose payload
    # commits to its serials by a digest) and none of the others, so its cost does not grow with the lot.
    chain = build_chain(session)
    second = runs.create_run(
        session=session, actor=f.member(chain.proc), lot_id=chain.lot.id, data=runs.PrintRunCreate(quantity=3)
    )
    statements: list[tuple[str, str]] = []

    def seen(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
        statements.append((statement, repr(parameters)))

    engine = session.get_bind()
    sqlalchemy_event.listen(engine, "before_cursor_execute", seen)
    try:
        session.expire_all()
        origin.build(session=session, lot=chain.lot, unit=chain.unit)
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", seen)
    payload_reads = [params for statement, params in statements if "event.payload" in statement]
    assert [params for params in payload_reads if chain.unit.created_event_id in params]  # its own: checked
    assert not [params for params in payload_reads if second.event_id in params]  # the other run's: never read
