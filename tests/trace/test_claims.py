"""Lots' claims to designations: each condition a harvest's claim must meet, inheritance through
one and two transformations under each rule, label quotas per right and calendar year, the badge
printed on labels, and the claims shown on a lot and on a code check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, update
from sqlmodel import Session, SQLModel, col, select

from tests import factories as f
from tests.factories import DONG_TAO, HOAN_LONG, designation, grant
from trace.designations.claims import claims_for_lot, quota_used
from trace.designations.models import (
    ClaimSource,
    Designation,
    DesignationKind,
    InheritRule,
    LotClaim,
    RightStatus,
    RightToUse,
)
from trace.errors import DomainError, RuleViolation
from trace.events.models import Event
from trace.locations import Location
from trace.lot_views import to_public
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform.timeutil import today
from trace.printing import jobs, runs
from trace.printing.models import PrintKind, PrintRun
from trace.printing.runs import PrintRunCreate, ReprintIn, VoidIn
from trace.products import Product
from trace.units import Unit
from trace.verification import check_code

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
GI_NAME = "Nhãn lồng Hưng Yên"  # f.designation's
GI_BADGE = "CDĐL Nhãn lồng Hưng Yên · số 00055"
# Today's Xã Hoàn Long is HOAN_LONG (the old Hoàn Long of Yên Mỹ kept its code); it also took in the old
# Đông Tảo (DONG_TAO, inside the longan GI) and Đồng Than (DONG_THAN, outside it).
OLD_HOAN_LONG, DONG_THAN = "12070", "12061"
KHOAI_CHAU_TOWN = "12205"  # today's unit made only of old Khoái Châu communes
LAC_DAO, CHI_DAO = "11992", "11992"  # today's Xã Lạc Đạo and the old Chỉ Đạo (Văn Lâm): outside
World = f.GiGrower  # the GI, its holder, a grower with a right, its area and fresh longan


@pytest.fixture
def w(session: Session) -> World:
    return f.gi_grower(session)


def harvest(
    session: Session,
    w: World,
    *,
    ids: list[int] | None = None,
    org: Organisation | None = None,
    loc: Location | None = None,
    prod: Product | None = None,
    qty: str = "100",
) -> Lot:
    result = f.harvest(
        session,
        org or w.grower,
        qty,
        prod=prod or w.fresh,
        loc=loc or w.area,
        designation_ids=[w.gi.id] if ids is None else ids,
    )
    lot = session.get(Lot, result.lot_ids[0])
    assert lot is not None
    return lot


def claims_of(session: Session, lot: Lot) -> list[LotClaim]:
    return list(session.exec(select(LotClaim).where(LotClaim.lot_id == lot.id)))


def rows(session: Session, table: type[SQLModel]) -> int:
    return session.connection().execute(select(func.count()).select_from(table.__table__)).scalar_one()  # type: ignore[attr-defined, no-any-return]


def refused(code: str, fn: Callable[[], Any]) -> DomainError:
    with pytest.raises(RuleViolation) as info:
        fn()
    assert info.value.code == code, info.value.message
    return info.value


# --------------------------------------------------------------------------- claims at harvest


def test_an_accepted_claim_is_stored_with_its_right_and_shown_in_the_harvest_event(session: Session, w: World) -> None:
    lot = harvest(session, w)
    [claim] = claims_of(session, lot)
    assert (claim.designation_id, claim.right_id, claim.source) == (w.gi.id, w.right.id, ClaimSource.HARVEST)
    event = session.get(Event, claim.event_id)
    assert event is not None and event.lot_id == lot.id
    assert event.payload["designations"] == [{"id": w.gi.id, "name": GI_NAME}]


def test_a_harvest_without_claims_keeps_its_payload_as_before(session: Session, w: World) -> None:
    lot = harvest(session, w, ids=[])
    assert claims_of(session, lot) == []
    event = session.get(Event, lot.created_event_id)
    assert event is not None and "designations" not in event.payload


def _expired(s: Session, w: World) -> None:
    w.right.valid_to = today() - timedelta(days=10)


def _not_yet_valid(s: Session, w: World) -> None:
    w.right.valid_from = today() - timedelta(days=2)


def _suspended(s: Session, w: World) -> None:
    w.right.status, w.right.updated_at = RightStatus.SUSPENDED, datetime.now(UTC) - timedelta(days=30)


def _revoked(s: Session, w: World) -> None:
    w.right.status, w.right.updated_at = RightStatus.REVOKED, datetime.now(UTC) - timedelta(days=30)


def _no_right(s: Session, w: World) -> None:
    s.delete(w.right)


def _other_product(s: Session, w: World) -> None:
    w.right.product_ids = [f.product(s, w.grower).id]


def _other_area(s: Session, w: World) -> None:
    w.right.location_ids = [f.location(s, w.grower, commune_code=KHOAI_CHAU_TOWN).id]


def _outside(s: Session, w: World) -> None:
    w.area.commune_code, w.area.former_commune_code = LAC_DAO, CHI_DAO


def _old_hoan_long(s: Session, w: World) -> None:
    w.area.former_commune_code = OLD_HOAN_LONG  # same commune today, judged on its old one: Yên Mỹ


def _former_unknown(s: Session, w: World) -> None:
    w.area.former_commune_code = None  # today's Hoàn Long is only partly in the GI


def _dried(s: Session, w: World) -> None:
    w.fresh.category = "longan_dried"  # a harvest is of the designation's own categories only


def _inactive(s: Session, w: World) -> None:
    w.gi.active = False


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_expired, "right_expired"),
        (_not_yet_valid, "right_not_yet_valid"),
        (_suspended, "right_suspended"),
        (_revoked, "right_revoked"),
        (_no_right, "no_right"),
        (_other_product, "product_not_in_right"),
        (_other_area, "area_not_in_right"),
        (_outside, "area_outside"),
        (_old_hoan_long, "area_outside"),
        (_former_unknown, "area_unknown_former_commune"),
        (_dried, "category_not_covered"),
        (_inactive, "designation_inactive"),
    ],
)
def test_a_claim_failing_a_condition_refuses_the_whole_harvest(
    session: Session, w: World, change: Callable[[Session, World], None], code: str
) -> None:
    # given: a collective mark the harvest also claims, which it may use
    mark = designation(
        session,
        w.holder,
        kind=DesignationKind.COLLECTIVE_TRADEMARK,
        name_vi="Nhãn Khoái Châu",
        registration_number=None,
        categories=["longan_fresh", "longan_dried"],
        area_former_districts=[],
        area_former_communes=[],
        area_communes=[],
    )
    grant(session, mark, w.grower)
    change(session, w)
    session.flush()
    before = (rows(session, Event), rows(session, Lot), rows(session, LotClaim))
    # when
    error = refused(code, lambda: harvest(session, w, ids=[mark.id, w.gi.id]))
    # then: the condition is named, with the designation, and nothing is written
    assert error.details["designation_id"] == w.gi.id and error.details["designation"] == GI_NAME
    assert GI_NAME in error.message
    assert (rows(session, Event), rows(session, Lot), rows(session, LotClaim)) == before


def test_an_unknown_designation_is_refused(session: Session, w: World) -> None:
    refused("unknown_designation", lambda: harvest(session, w, ids=[987654]))


def test_the_area_is_judged_on_the_pre_2025_commune_where_the_grant_was_written_over_old_units(
    session: Session, w: World
) -> None:
    # given: Gà Đông Tảo's area is the old Đông Tảo, now one part of Xã Hoàn Long
    chicken = designation(
        session,
        w.holder,
        kind=DesignationKind.COLLECTIVE_TRADEMARK,
        name_vi="Gà Đông Tảo",
        registration_number=None,
        categories=["chicken_live"],
        derived_categories=[],
        area_former_districts=[],
        area_former_communes=[DONG_TAO],
        area_communes=[HOAN_LONG],
    )
    farm = f.org(session, "farm")
    grant(session, chicken, farm)
    birds = f.product(session, farm, "head", name_vi="Gà Đông Tảo", category="chicken_live")
    # when / then: three farms in the same commune of today
    inside = f.location(session, farm, "farm", commune_code=HOAN_LONG, former_commune_code=DONG_TAO)
    lot = harvest(session, w, ids=[chicken.id], org=farm, loc=inside, prod=birds, qty="40")
    assert [c.designation_id for c in claims_of(session, lot)] == [chicken.id]
    for former, code in [(DONG_THAN, "area_outside"), (None, "area_unknown_former_commune")]:
        place = f.location(session, farm, "farm", commune_code=HOAN_LONG, former_commune_code=former)
        refused(code, lambda p=place: harvest(session, w, ids=[chicken.id], org=farm, loc=p, prod=birds, qty="40"))


def test_a_commune_wholly_inside_needs_no_former_commune(session: Session, w: World) -> None:
    place = f.location(session, w.grower, commune_code=KHOAI_CHAU_TOWN)
    lot = harvest(session, w, loc=place)
    assert [c.designation_id for c in claims_of(session, lot)] == [w.gi.id]


def test_a_right_suspended_after_the_harvest_day_still_covers_it(session: Session, w: World) -> None:
    w.right.status, w.right.updated_at = RightStatus.SUSPENDED, datetime.now(UTC)
    session.flush()
    assert len(claims_of(session, harvest(session, w))) == 1  # harvested five days ago


# --------------------------------------------------------------------------- inheritance


@dataclass
class Plant:
    """A processor holding what the grower shipped it, with a dried-longan product and its own right."""

    org: Organisation
    dried: Product
    gift: Product
    right: RightToUse | None


def plant(session: Session, w: World, lots: list[Lot], *, right: bool = True, d: Designation | None = None) -> Plant:
    proc = f.org(session, "processor")
    for lot in lots:
        shipment = f.ship(session, lot_owner(session, lot), lot.id, proc, "100")  # type: ignore[arg-type]
        f.receive(session, proc, shipment.shipment_id)  # type: ignore[arg-type]
    dried = f.product(session, proc, name_vi="Long nhãn sấy", category="longan_dried", package_size=Decimal("0.2"))
    gift = f.product(session, proc, name_vi="Hộp quà long nhãn", category="longan_dried")
    return Plant(proc, dried, gift, grant(session, d or w.gi, proc) if right else None)


def lot_owner(session: Session, lot: Lot) -> Organisation:
    owner = session.get(Organisation, lot.producer_organisation_id)
    assert owner is not None
    return owner


def transform(
    session: Session, p: Plant, inputs: list[Lot], out: Product, qty: str = "20", days_ago: float = 2
) -> tuple[Lot, Event]:
    result = f.transform(session, p.org, [(lot.id, qty) for lot in inputs], [(out, "10")], days_ago=days_ago)  # type: ignore[misc]
    lot, event = session.get(Lot, result.lot_ids[0]), session.get(Event, result.event_ids[0])
    assert lot is not None and event is not None
    return lot, event


def carried(session: Session, lot: Lot) -> list[tuple[int, ClaimSource]]:
    return [(c.designation_id, c.source) for c in claims_of(session, lot)]


def test_an_output_inherits_when_every_input_carries_it_and_the_processor_holds_a_right(
    session: Session, w: World
) -> None:
    lot = harvest(session, w)
    p = plant(session, w, [lot])
    dried, event = transform(session, p, [lot], p.dried)
    [claim] = claims_of(session, dried)
    assert (claim.designation_id, claim.source, claim.right_id, claim.event_id) == (
        w.gi.id,
        ClaimSource.INHERITED,
        p.right.id,
        event.id,
    )  # type: ignore[union-attr]
    assert event.payload["designations"] == [{"id": w.gi.id, "name": GI_NAME, "lot_code": dried.lot_code}]
    assert "designations_not_inherited" not in event.payload


def test_all_inputs_with_one_input_outside_the_gi_is_not_inherited(session: Session, w: World) -> None:
    gi_lot, plain = harvest(session, w), harvest(session, w, ids=[])
    p = plant(session, w, [gi_lot, plain])
    dried, event = transform(session, p, [gi_lot, plain], p.dried)
    assert carried(session, dried) == []
    assert event.payload["designations_not_inherited"] == [
        {"id": w.gi.id, "name": GI_NAME, "lot_code": dried.lot_code, "reason": "not_all_inputs"}
    ]


def test_any_input_is_inherited_from_one_carrying_input(session: Session, w: World) -> None:
    w.gi.inherit_rule = InheritRule.ANY_INPUT
    gi_lot, plain = harvest(session, w), harvest(session, w, ids=[])
    p = plant(session, w, [gi_lot, plain])
    dried, _ = transform(session, p, [gi_lot, plain], p.dried)
    assert carried(session, dried) == [(w.gi.id, ClaimSource.INHERITED)]


def test_never_is_not_inherited(session: Session, w: World) -> None:
    w.gi.inherit_rule = InheritRule.NEVER
    lot = harvest(session, w)
    p = plant(session, w, [lot])
    dried, event = transform(session, p, [lot], p.dried)
    assert carried(session, dried) == []
    assert [x["reason"] for x in event.payload["designations_not_inherited"]] == ["inherit_never"]


def test_a_processor_without_a_right_makes_lots_without_the_designation_and_is_not_refused(
    session: Session, w: World
) -> None:
    lot = harvest(session, w)
    p = plant(session, w, [lot], right=False)
    dried, event = transform(session, p, [lot], p.dried)
    assert carried(session, dried) == []
    assert event.payload["designations_not_inherited"] == [
        {"id": w.gi.id, "name": GI_NAME, "lot_code": dried.lot_code, "reason": "no_right"}
    ]


def test_a_processors_expired_right_is_named_in_the_event(session: Session, w: World) -> None:
    lot = harvest(session, w)
    p = plant(session, w, [lot])
    p.right.valid_to = today() - timedelta(days=3)  # type: ignore[union-attr]
    session.flush()
    dried, event = transform(session, p, [lot], p.dried)
    assert carried(session, dried) == []
    assert [x["reason"] for x in event.payload["designations_not_inherited"]] == ["right_expired"]


def test_an_output_of_a_category_the_designation_does_not_reach_does_not_inherit(session: Session, w: World) -> None:
    lot = harvest(session, w)
    p = plant(session, w, [lot])
    juice = f.product(session, p.org, "l", name_vi="Nước nhãn", category="longan_juice")
    fresh_again = f.product(session, p.org, name_vi="Nhãn lồng tuyển", category="longan_fresh")
    result = f.transform(session, p.org, [(lot.id, "50")], [(juice, "20"), (fresh_again, "20")])  # type: ignore[list-item]
    out_juice, out_fresh = (session.get(Lot, i) for i in result.lot_ids)
    event = session.get(Event, result.event_ids[0])
    assert carried(session, out_juice) == []  # type: ignore[arg-type]
    assert carried(session, out_fresh) == [(w.gi.id, ClaimSource.INHERITED)]  # type: ignore[arg-type]  # its own category
    assert [(x["lot_code"], x["reason"]) for x in event.payload["designations_not_inherited"]] == [  # type: ignore[union-attr]
        (out_juice.lot_code, "category_not_covered")
    ]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("rule", "mixed_second", "expected"),
    [
        (InheritRule.ALL_INPUTS, False, True),
        (InheritRule.ALL_INPUTS, True, False),
        (InheritRule.ANY_INPUT, True, True),
        (InheritRule.NEVER, False, False),
    ],
)
def test_inheritance_through_two_transformations(
    session: Session, w: World, rule: InheritRule, mixed_second: bool, expected: bool
) -> None:
    # given: GI longan dried, then the dried longan boxed (with a plain dried lot when mixed)
    w.gi.inherit_rule = rule
    lot, plain = harvest(session, w), harvest(session, w, ids=[])
    p = plant(session, w, [lot, plain])
    dried, _ = transform(session, p, [lot], p.dried)
    plain_dried, _ = transform(session, p, [plain], p.dried)
    assert bool(claims_of(session, dried)) == (rule != InheritRule.NEVER)
    # when
    inputs = [dried, plain_dried] if mixed_second else [dried]
    boxed, event = transform(session, p, inputs, p.gift, qty="5", days_ago=1)
    # then
    assert carried(session, boxed) == ([(w.gi.id, ClaimSource.INHERITED)] if expected else [])
    assert ("designations" in event.payload) == expected


# --------------------------------------------------------------------------- label quotas


def new_run(session: Session, o: Organisation, lot: Lot, quantity: int, **data: Any) -> PrintRun:
    return runs.create_run(
        session=session,
        actor=f.member(o),
        lot_id=lot.id,  # type: ignore[arg-type]
        data=PrintRunCreate(quantity=quantity, **data),
    )


def test_a_run_beyond_the_rights_yearly_quota_is_refused_with_what_is_left(session: Session, w: World) -> None:
    w.right.annual_label_quota = 10
    lot = harvest(session, w)
    new_run(session, w.grower, lot, 6)
    before = rows(session, PrintRun), rows(session, Unit)
    error = refused("quota_exceeded", lambda: new_run(session, w.grower, lot, 5))
    assert (error.details["quota"], error.details["used"], error.details["left"]) == (10, 6, 4)
    assert (rows(session, PrintRun), rows(session, Unit)) == before
    # no override for a quota: it is the holder's stamps
    refused("quota_exceeded", lambda: new_run(session, w.grower, lot, 5, override_reason="Khách đặt thêm tem dự phòng"))
    new_run(session, w.grower, lot, 4)  # exactly what is left
    error = refused("quota_exceeded", lambda: new_run(session, w.grower, lot, 1, kind=PrintKind.LOT))
    assert error.details["left"] == 0


def test_quota_counts_lot_labels_and_leaves_out_voided_codes_cancelled_runs_and_reprints(
    session: Session, w: World
) -> None:
    w.right.annual_label_quota = 20
    lot = harvest(session, w)
    first = new_run(session, w.grower, lot, 6)
    new_run(session, w.grower, lot, 2, kind=PrintKind.LOT)
    cancelled = new_run(session, w.grower, lot, 5)
    runs.cancel(session=session, actor=f.member(w.grower), run_id=cancelled.id)  # type: ignore[arg-type]
    codes = [u.code for u in session.exec(select(Unit).where(Unit.print_run_id == first.id).order_by(col(Unit.id)))]
    runs.void_codes(
        session=session,
        actor=f.member(w.grower),
        run_id=first.id,  # type: ignore[arg-type]
        data=VoidIn(codes=codes[:2], reason="Tờ decal bị kẹt máy in"),
    )
    runs.reprint(session=session, actor=f.member(w.grower), run_id=first.id, data=ReprintIn())  # type: ignore[arg-type]
    assert quota_used(session=session, right=w.right, year=today().year) == 6 + 2 - 2
    new_run(session, w.grower, lot, 14)
    refused("quota_exceeded", lambda: new_run(session, w.grower, lot, 1))


def test_quota_is_per_calendar_year_in_local_time(session: Session, w: World) -> None:
    w.right.annual_label_quota = 10
    lot = harvest(session, w)
    late, early = new_run(session, w.grower, lot, 6), new_run(session, w.grower, lot, 4)
    year = today().year
    # 23:30 on 31 December last year and 00:30 on 1 January, Hà Nội time (both still 31 December in UTC)
    session.execute(
        update(PrintRun)
        .where(col(PrintRun.id) == late.id)
        .values(created_at=datetime(year - 1, 12, 31, 23, 30, tzinfo=ZONE).astimezone(UTC))
    )
    session.execute(
        update(PrintRun)
        .where(col(PrintRun.id) == early.id)
        .values(created_at=datetime(year, 1, 1, 0, 30, tzinfo=ZONE).astimezone(UTC))
    )
    error = refused("quota_exceeded", lambda: new_run(session, w.grower, lot, 7))
    assert error.details["used"] == 4
    new_run(session, w.grower, lot, 6)


def test_lots_without_the_designation_and_other_organisations_runs_do_not_count(session: Session, w: World) -> None:
    w.right.annual_label_quota = 5
    plain = harvest(session, w, ids=[])
    new_run(session, w.grower, plain, 50)
    neighbour = f.org(session)
    grant(session, w.gi, neighbour, annual_label_quota=100)
    theirs = harvest(
        session,
        w,
        org=neighbour,
        loc=f.location(session, neighbour, commune_code=KHOAI_CHAU_TOWN),
        prod=f.product(session, neighbour, package_size=Decimal("0.5")),
    )
    new_run(session, neighbour, theirs, 60)
    new_run(session, w.grower, harvest(session, w), 5)


def test_a_processor_printing_inherited_lots_uses_its_own_rights_quota(session: Session, w: World) -> None:
    w.right.annual_label_quota = 1000
    lot = harvest(session, w)
    new_run(session, w.grower, lot, 50)
    p = plant(session, w, [lot])
    p.right.annual_label_quota = 3  # type: ignore[union-attr]
    dried, _ = transform(session, p, [lot], p.dried)
    error = refused("quota_exceeded", lambda: new_run(session, p.org, dried, 4))
    assert (error.details["quota"], error.details["used"], error.details["right_id"]) == (3, 0, p.right.id)  # type: ignore[union-attr]
    # the grower's lot, relabelled by the processor that now holds it: the processor's right again
    error = refused("quota_exceeded", lambda: new_run(session, p.org, lot, 4))
    assert error.details["right_id"] == p.right.id  # type: ignore[union-attr]
    new_run(session, p.org, dried, 3)


# --------------------------------------------------------------------------- labels, lots and code checks


def test_labels_carry_the_designation_badge_by_kind(session: Session, w: World) -> None:
    pork = designation(
        session,
        w.holder,
        kind=DesignationKind.COLLECTIVE_TRADEMARK,
        name_vi="Giò chả Trai Trang",
        registration_number="422823",
        decision_number="41357/QĐ-SHTT",
        categories=["pork_roll"],
        area_former_districts=[],
        area_former_communes=[],
        area_communes=[],
    )
    honey = designation(
        session,
        w.holder,
        kind=DesignationKind.CERTIFICATION_TRADEMARK,
        name_vi="Mật ong hoa nhãn Hưng Yên",
        registration_number=None,
        decision_number="34713/QĐ-SHTT",
        categories=["honey"],
        area_former_districts=[],
        area_former_communes=[],
        area_communes=[],
    )
    grant(session, pork, w.grower)
    grant(session, honey, w.grower)
    cases = [
        (w.gi, w.fresh, GI_BADGE),
        (
            pork,
            f.product(session, w.grower, name_vi="Giò lụa", category="pork_roll"),
            "NHTT Giò chả Trai Trang · số 422823",
        ),
        (
            honey,
            f.product(session, w.grower, "l", name_vi="Mật ong", category="honey"),
            "NHCN Mật ong hoa nhãn Hưng Yên · số 34713/QĐ-SHTT",
        ),
        (None, w.fresh, None),
    ]
    for d, prod, expected in cases:
        lot = harvest(session, w, ids=[d.id] if d else [], prod=prod)  # type: ignore[union-attr]
        for kind in (PrintKind.UNIT, PrintKind.LOT):
            labels = jobs.labels_for(session=session, run=new_run(session, w.grower, lot, 2, kind=kind))
            assert [x.designation for x in labels] == [expected, expected]


def test_a_badge_is_left_off_once_the_claim_no_longer_holds(session: Session, w: World) -> None:
    lot = harvest(session, w)
    w.right.status, w.right.updated_at = RightStatus.REVOKED, datetime.now(UTC)
    session.flush()
    [label, _] = jobs.labels_for(session=session, run=new_run(session, w.grower, lot, 2))
    assert label.designation is None


def test_claims_for_lot_judges_each_claim_at_harvest_and_today(session: Session, w: World) -> None:
    lot = harvest(session, w)
    [status] = claims_for_lot(session=session, lot=lot)
    assert (status.designation_id, status.name, status.kind, status.number, status.holder_name, status.source) == (
        w.gi.id,
        GI_NAME,
        DesignationKind.GEOGRAPHICAL_INDICATION,
        "00055",
        w.holder.name,
        ClaimSource.HARVEST,
    )
    assert (status.valid_at_harvest, status.valid_today, status.problem) == (True, True, None)
    assert status.badge == GI_BADGE
    # after the right ran out
    [later] = claims_for_lot(session=session, lot=lot, on=today() + timedelta(days=400))
    assert (later.valid_at_harvest, later.valid_today, later.problem) == (True, False, "right_expired")
    # revoked today: it held when the lot was harvested, not now
    w.right.status, w.right.updated_at = RightStatus.REVOKED, datetime.now(UTC)
    session.flush()
    [now] = claims_for_lot(session=session, lot=lot)
    assert (now.valid_at_harvest, now.problem_at_harvest, now.valid_today, now.problem) == (
        True,
        None,
        False,
        "right_revoked",
    )


def test_an_inherited_claim_is_judged_on_the_processors_right(session: Session, w: World) -> None:
    lot = harvest(session, w)
    p = plant(session, w, [lot])
    dried, _ = transform(session, p, [lot], p.dried)
    w.right.status, w.right.updated_at = RightStatus.SUSPENDED, datetime.now(UTC)  # the grower's, not the processor's
    session.flush()
    [status] = claims_for_lot(session=session, lot=dried)
    assert (status.source, status.valid_today) == (ClaimSource.INHERITED, True)
    p.right.status, p.right.updated_at = RightStatus.SUSPENDED, datetime.now(UTC)  # type: ignore[union-attr]
    session.flush()
    [status] = claims_for_lot(session=session, lot=dried)
    assert (status.valid_at_harvest, status.valid_today, status.problem) == (True, False, "right_suspended")


def test_lot_public_and_code_check_carry_the_claims(session: Session, w: World) -> None:
    lot = harvest(session, w)
    run = new_run(session, w.grower, lot, 1)
    unit = session.exec(select(Unit).where(Unit.print_run_id == run.id)).one()
    for shown in (
        to_public(session=session, actor=None, lot=lot).claims,
        check_code(session=session, code=unit.code).claims,
    ):
        assert [(c.designation_id, c.name, c.number, c.valid_today) for c in shown] == [
            (w.gi.id, GI_NAME, "00055", True)
        ]
    plain = harvest(session, w, ids=[])
    assert to_public(session=session, actor=None, lot=plain).claims == []
