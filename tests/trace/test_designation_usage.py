"""The designation holder's view: rights held, labels per organisation and calendar year, quota
use, the yield check on growers' labelled quantities, and who may see it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from tests import factories as f
from trace.access import Role
from trace.designations.models import (
    ClaimSource,
    Designation,
    DesignationKind,
    InheritRule,
    LotClaim,
    RightToUse,
)
from trace.designations.usage import PLAUSIBLE_YIELD_KG_PER_HA, DesignationUsage, designation_usage
from trace.errors import Forbidden, NotFound
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform.timeutil import local_zone
from trace.printing import runs
from trace.printing.models import PrintKind, PrintRun
from trace.printing.runs import PrintRunCreate, VoidIn
from trace.products import Product
from trace.units import Unit

D = Decimal
OUTSIDE = "12019"  # a Hưng Yên commune outside the test designation's protected area
YEAR = datetime.now(local_zone()).year


@dataclass
class GI:
    holder: Organisation
    designation: Designation


def gi(session: Session) -> GI:
    holder = f.org(session, "designation_holder", name="Hội sản xuất nhãn lồng (dữ liệu mẫu)")
    designation = Designation(
        kind=DesignationKind.GEOGRAPHICAL_INDICATION,
        name_vi="Nhãn lồng Hưng Yên",
        holder_organisation_id=holder.id,
        categories=["longan_fresh"],  # type: ignore[arg-type]
        derived_categories=["longan_dried"],
        inherit_rule=InheritRule.ALL_INPUTS,
        area_communes=[f.COMMUNE],
    )
    session.add(designation)
    session.flush()
    return GI(holder, designation)


def grant(session: Session, g: GI, o: Organisation, quota: int | None = None, **extra: Any) -> RightToUse:
    right = RightToUse(
        designation_id=g.designation.id,
        organisation_id=o.id,
        decision_number=f"{o.id}/QĐ-HSX",  # type: ignore[arg-type]
        valid_from=date(YEAR - 3, 1, 1),
        annual_label_quota=quota,
        **extra,
    )
    session.add(right)
    session.flush()
    return right


def claim(
    session: Session, g: GI, lot: Lot, right: RightToUse | None, source: ClaimSource = ClaimSource.HARVEST
) -> None:
    session.add(
        LotClaim(
            lot_id=lot.id,
            designation_id=g.designation.id,
            right_id=right.id if right else None,  # type: ignore[arg-type]
            source=source,
            event_id=lot.created_event_id,
        )
    )
    session.flush()


def longan(session: Session, o: Organisation, package_kg: str = "10") -> Product:
    return f.product(session, o, package_size=D(package_kg))


def harvest(session: Session, o: Organisation, kg: str, product: Product, place: Any = None) -> Lot:
    lot = session.get(Lot, f.harvest(session, o, kg, prod=product, loc=place).lot_ids[0])
    assert lot is not None
    return lot


def label(session: Session, o: Organisation, lot: Lot, n: int, kind: PrintKind = PrintKind.UNIT) -> PrintRun:
    return runs.create_run(
        session=session,
        actor=f.member(o),
        lot_id=lot.id,  # type: ignore[arg-type]
        data=PrintRunCreate(quantity=n, kind=kind),
    )


def codes_of(session: Session, run: PrintRun) -> list[str]:
    return list(session.exec(select(Unit.code).where(Unit.print_run_id == run.id).order_by(col(Unit.id))))


def issued_at(session: Session, codes: list[str], local: datetime) -> None:
    """Backdate codes' issue, as if printed at that local time."""
    session.execute(update(Unit).where(col(Unit.code).in_(codes)).values(created_at=local.astimezone(UTC)))


def usage(session: Session, g: GI, year: int | None = None) -> DesignationUsage:
    return designation_usage(
        session=session,
        actor=f.member(g.holder),
        designation_id=g.designation.id,  # type: ignore[arg-type]
        year=year,
    )


def per_year(report: DesignationUsage, o: Organisation) -> dict[int, tuple[int, int, int, int, Decimal]]:
    """(lots, package codes, lot labels, labels, kg) by year for one organisation."""
    [mine] = [u for u in report.grantees if u.organisation_id == o.id]
    return {y.year: (y.lots, y.unit_codes, y.lot_labels, y.labels, y.labelled_kg) for y in mine.years}


# --------------------------------------------------------------------------- labels per grantee and year


def test_labels_are_counted_per_organisation_and_local_calendar_year(session: Session) -> None:
    # given two grantees with claimed lots, and a lot of the first that claims nothing
    g = gi(session)
    a, b = f.org(session), f.org(session)
    a_right, b_right = grant(session, g, a), grant(session, g, b)
    a_fresh, b_fresh = longan(session, a), longan(session, b, "0.5")
    a_lot, a_lot2, unclaimed = (harvest(session, a, "2000", a_fresh) for _ in range(3))
    b_lot = harvest(session, b, "100", b_fresh)
    claim(session, g, a_lot, a_right)
    claim(session, g, a_lot2, a_right)
    claim(session, g, b_lot, b_right)
    # when A prints 30 package labels, voids 2, prints 5 lot labels and 4 more packages on its second
    # lot; 10 of the first codes were issued late on 31 December last year, one just after New Year
    first = label(session, a, a_lot, 30)
    codes = codes_of(session, first)
    runs.void_codes(
        session=session,
        actor=f.member(a),
        run_id=first.id,  # type: ignore[arg-type]
        data=VoidIn(codes=codes[:2], reason="Tem in lỗi"),
    )
    issued_at(session, codes[2:12], datetime(YEAR - 1, 12, 31, 23, 30, tzinfo=local_zone()))
    issued_at(session, codes[12:13], datetime(YEAR, 1, 1, 0, 30, tzinfo=local_zone()))
    label(session, a, a_lot, 5, PrintKind.LOT)
    label(session, a, a_lot2, 4)
    label(session, a, unclaimed, 9)
    label(session, b, b_lot, 7)

    report = usage(session, g)

    assert report.year is None
    assert per_year(report, a) == {
        YEAR - 1: (1, 10, 0, 10, D(100)),
        YEAR: (2, 30 - 2 - 10 + 4, 5, 27, D(270)),
    }
    assert per_year(report, b) == {YEAR: (1, 7, 0, 7, D("3.5"))}
    assert {u.organisation_id: u.holds_right for u in report.grantees} == {a.id: True, b.id: True}
    assert per_year(usage(session, g, YEAR - 1), a) == {YEAR - 1: (1, 10, 0, 10, D(100))}
    assert [u.organisation_id for u in usage(session, g, YEAR - 1).grantees] == [a.id]
    assert usage(session, g, YEAR - 2).grantees == []


def test_labels_count_for_the_organisation_that_issued_them(session: Session) -> None:
    g = gi(session)
    grower, shop = f.org(session), f.org(session, "retailer")
    right = grant(session, g, grower)
    lot = harvest(session, grower, "1000", longan(session, grower))
    claim(session, g, lot, right)
    shipped = f.ship(session, grower, lot.id, shop, "400")  # type: ignore[arg-type]
    f.receive(session, shop, shipped.shipment_id)  # type: ignore[arg-type]
    label(session, grower, lot, 3)
    label(session, shop, lot, 6)

    report = usage(session, g, YEAR)

    assert per_year(report, grower)[YEAR][3] == 3
    assert per_year(report, shop)[YEAR][3] == 6
    assert {u.organisation_id: u.holds_right for u in report.grantees} == {grower.id: True, shop.id: False}


def test_every_right_is_listed_with_its_terms(session: Session) -> None:
    g = gi(session)
    a, b = f.org(session), f.org(session)
    kept = grant(session, g, a, quota=500)
    revoked = grant(session, g, b, status="revoked", status_reason="Không tuân thủ quy chế")

    report = usage(session, g)

    terms = {
        r.right_id: (r.organisation_id, r.decision_number, r.status, r.status_reason, r.annual_label_quota)
        for r in report.rights
    }
    assert terms == {
        kept.id: (a.id, kept.decision_number, "active", None, 500),
        revoked.id: (b.id, revoked.decision_number, "revoked", "Không tuân thủ quy chế", None),
    }


# --------------------------------------------------------------------------- quota


def test_quota_use_counts_printed_labels_less_voided_ones(session: Session) -> None:
    g = gi(session)
    a, b = f.org(session), f.org(session)
    a_right, b_right = grant(session, g, a, quota=100), grant(session, g, b)
    a_lot, b_lot = harvest(session, a, "2000", longan(session, a)), harvest(session, b, "2000", longan(session, b))
    claim(session, g, a_lot, a_right)
    claim(session, g, b_lot, b_right)
    run = label(session, a, a_lot, 30)
    runs.void_codes(
        session=session,
        actor=f.member(a),
        run_id=run.id,  # type: ignore[arg-type]
        data=VoidIn(codes=codes_of(session, run)[:2], reason="Tem in lỗi"),
    )
    label(session, a, a_lot, 5, PrintKind.LOT)
    label(session, b, b_lot, 12)

    uses = {
        r.right_id: [(u.year, u.labels, u.quota, u.left, u.over) for u in r.quota_use]
        for r in usage(session, g, YEAR).rights
    }

    assert uses[a_right.id] == [(YEAR, 33, 100, 67, False)]  # type: ignore[index]
    assert uses[b_right.id] == [(YEAR, 12, None, None, False)]  # type: ignore[index]
    # the holder lowers A's quota below what is already printed: the view says so
    a_right.annual_label_quota = 20
    session.add(a_right)
    session.flush()
    [a_use] = next(r for r in usage(session, g, YEAR).rights if r.right_id == a_right.id).quota_use
    assert (a_use.labels, a_use.left, a_use.over) == (33, 0, True)
    # a year with no labels shows zero when asked for, and is left out of the all-years view
    assert [
        (u.labels, u.left) for r in usage(session, g, YEAR - 1).rights if r.right_id == a_right.id for u in r.quota_use
    ] == [(0, 20)]


# --------------------------------------------------------------------------- yield check


def plausible_labels(area_ha: str, package_kg: str) -> int:
    return int(D(area_ha) * PLAUSIBLE_YIELD_KG_PER_HA["longan_fresh"] / D(package_kg))


def test_labels_beyond_the_growers_plausible_yield_are_flagged(session: Session) -> None:
    # given a grower with 0.05 ha inside the protected area (and 3 ha outside it), 10 kg boxes
    g = gi(session)
    grower = f.org(session)
    inside = f.location(session, grower, area_ha=0.05)
    f.location(session, grower, area_ha=3.0, commune_code=OUTSIDE)
    right = grant(session, g, grower)
    lot = harvest(session, grower, "5000", longan(session, grower), inside)
    claim(session, g, lot, right)
    ceiling = plausible_labels("0.05", "10")

    # when it labels exactly what the area can give, nothing is flagged
    label(session, grower, lot, ceiling)
    [check] = usage(session, g, YEAR).yield_checks
    assert (check.organisation_id, check.category, check.labels, check.suspicious) == (
        grower.id,
        "longan_fresh",
        ceiling,
        False,
    )
    assert (check.areas, check.area_ha, check.plausible_labels) == (1, 0.05, ceiling)
    assert check.plausible_kg == check.labelled_kg == D(ceiling * 10)

    # when one more box is labelled, the check fires with its figures
    label(session, grower, lot, 1)
    [check] = usage(session, g, YEAR).yield_checks
    assert check.suspicious
    assert (check.labels, check.labelled_kg, check.plausible_kg) == (
        ceiling + 1,
        D((ceiling + 1) * 10),
        D(ceiling * 10),
    )
    assert str(ceiling * 10) in check.detail


def test_the_yield_check_follows_lots_to_their_grower_and_leaves_inherited_claims_out(session: Session) -> None:
    g = gi(session)
    grower, shop, plant = f.org(session), f.org(session, "retailer"), f.org(session, "processor")
    place = f.location(session, grower, area_ha=0.05)
    right = grant(session, g, grower)
    lot = harvest(session, grower, "5000", longan(session, grower), place)
    claim(session, g, lot, right)
    for buyer in (shop, plant):
        shipped = f.ship(session, grower, lot.id, buyer, "1500")  # type: ignore[arg-type]
        f.receive(session, buyer, shipped.shipment_id)  # type: ignore[arg-type]
    dried_product = f.product(session, plant, category="longan_dried", package_size=D("0.5"))
    made = f.transform(session, plant, [(lot.id, "1500")], [(dried_product, "300")])  # type: ignore[list-item]
    dried = session.get(Lot, made.lot_ids[0])
    assert dried is not None
    claim(session, g, dried, None, ClaimSource.INHERITED)
    ceiling = plausible_labels("0.05", "10")
    label(session, grower, lot, ceiling - 20)
    label(session, shop, lot, 21)  # the shop's labels come out of the grower's orchard
    label(session, plant, dried, 400)  # 200 kg of dried longan: bounded by its input, not by land

    report = usage(session, g, YEAR)

    [check] = report.yield_checks
    assert (check.organisation_id, check.labels, check.suspicious) == (grower.id, ceiling + 1, True)
    assert per_year(report, plant)[YEAR][3] == 400


def test_a_scoped_right_counts_only_the_areas_it_names(session: Session) -> None:
    g = gi(session)
    grower = f.org(session)
    named = f.location(session, grower, area_ha=0.05)
    f.location(session, grower, area_ha=2.0)  # inside the protected area, but not in the right
    f.location(session, grower, area_ha=None)
    right = grant(session, g, grower, location_ids=[named.id])
    lot = harvest(session, grower, "5000", longan(session, grower), named)
    claim(session, g, lot, right)
    label(session, grower, lot, plausible_labels("0.05", "10") + 1)

    [check] = usage(session, g, YEAR).yield_checks
    assert (check.areas, check.unsized_areas, check.area_ha, check.suspicious) == (1, 0, 0.05, True)

    # without a scope every growing area inside the protected area counts, unsized ones as 0 ha
    right.location_ids = []
    session.add(right)
    session.flush()
    [check] = usage(session, g, YEAR).yield_checks
    assert (check.areas, check.unsized_areas, check.area_ha, check.suspicious) == (3, 1, 2.05, False)


# --------------------------------------------------------------------------- who may see it


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("holder member", True),
        ("holder org_admin", True),
        ("admin", True),
        ("grantee org_admin", False),
        ("inspector", False),
        ("other holder", False),
    ],
)
def test_only_the_holder_and_the_province_admin_see_usage(session: Session, who: str, allowed: bool) -> None:
    g = gi(session)
    grantee = f.org(session)
    grant(session, g, grantee)
    actors = {
        "holder member": f.member(g.holder),
        "holder org_admin": f.member(g.holder, Role.ORG_ADMIN),
        "admin": f.ADMIN,
        "grantee org_admin": f.member(grantee, Role.ORG_ADMIN),
        "inspector": f.member(f.org(session, "authority"), Role.INSPECTOR),
        "other holder": f.member(f.org(session, "designation_holder"), Role.ORG_ADMIN),
    }

    def see() -> DesignationUsage:
        return designation_usage(session=session, actor=actors[who], designation_id=g.designation.id)  # type: ignore[arg-type]

    if allowed:
        assert [r.organisation_id for r in see().rights] == [grantee.id]
    else:
        with pytest.raises(Forbidden) as info:
            see()
        assert info.value.code == "not_designation_holder"


def test_an_unknown_designation_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        designation_usage(session=session, actor=f.ADMIN, designation_id=10**9)
