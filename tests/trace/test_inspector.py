"""The inspector's verdict: a genuine GI package passes every check; a counterfeit, a cancelled
code, an expired certificate, a lot claiming the GI from outside its area and a recalled lot each
fail the check that names them, with evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from tests import factories as f
from trace import admin_units
from trace.access import Actor, Role
from trace.certifications import Certification, CertificationKind
from trace.designations.models import (
    ClaimSource,
    Designation,
    DesignationKind,
    InheritRule,
    LotClaim,
    RightToUse,
)
from trace.errors import Forbidden
from trace.inspector import Outcome, Verdict, inspect_code
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation
from trace.printing import runs
from trace.products import Product
from trace.units import Unit

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DISTRICTS = ["Thành phố Hưng Yên", "Huyện Khoái Châu", "Huyện Tiên Lữ", "Huyện Kim Động"]
HOAN_LONG, DONG_TAO = "12070", "12208"  # today's Xã Hoàn Long took in the old Đông Tảo (Khoái Châu)
LAC_DAO, CHI_DAO = "11992", "11992"  # today's Xã Lạc Đạo, the old Chỉ Đạo (Văn Lâm): outside the GI


def _today() -> date:
    return datetime.now(ZONE).date()


@dataclass
class World:
    inspector: Actor
    grower: Organisation
    gi: Designation
    lot: Lot
    codes: list[str]
    run: runs.PrintRun


def _gi(session: Session, holder: Organisation) -> Designation:
    formers = [c for d in DISTRICTS for c in admin_units.former_communes_in_district(d)]
    gi = Designation(kind=DesignationKind.GEOGRAPHICAL_INDICATION, name_vi="Nhãn lồng Hưng Yên",
                     registration_number="00055", decision_number="186/QĐ-SHTT", decision_date=date(2017, 1, 23),
                     holder_organisation_id=holder.id,  # type: ignore[arg-type]
                     categories=["longan_fresh"], inherit_rule=InheritRule.ALL_INPUTS, area_former_districts=DISTRICTS,
                     area_former_communes=sorted(c.code for c in formers),
                     area_communes=sorted({code for c in formers for code in c.current_codes}))
    session.add(gi)
    session.flush()
    return gi


def _codes(session: Session, run: runs.PrintRun) -> list[str]:
    return list(session.execute(select(col(Unit.code)).where(col(Unit.print_run_id) == run.id)
                                .order_by(col(Unit.id))).scalars())


@pytest.fixture
def w(session: Session) -> World:
    holder = f.org(session, "designation_holder")
    authority = f.org(session, "authority")
    gi = _gi(session, holder)
    grower = f.org(session)
    session.add(RightToUse(designation_id=gi.id, organisation_id=grower.id, decision_number="12/QĐ-SKHCN",  # type: ignore[arg-type]
                           valid_from=_today() - timedelta(days=400), valid_to=_today() + timedelta(days=400)))
    area = f.location(session, grower, commune_code=HOAN_LONG, former_commune_code=DONG_TAO)
    fresh = f.product(session, grower, name_vi="Nhãn lồng tươi", package_size=Decimal("0.5"))
    lot = session.get(Lot, f.harvest(session, grower, "100", prod=fresh, loc=area, designation_ids=[gi.id]).lot_ids[0])
    assert lot is not None
    run = runs.create_run(session=session, actor=f.member(grower), lot_id=lot.id, data=runs.PrintRunCreate(quantity=3))  # type: ignore[arg-type]
    inspector = Actor(role=Role.INSPECTOR, organisation_id=authority.id, name="QLTT")
    return World(inspector, grower, gi, lot, _codes(session, run), run)


def _check(result: Any, name: str) -> Any:
    return next(c for c in result.checks if c.name == name)


def test_a_genuine_gi_package_passes_every_check_with_evidence_and_its_trace(session: Session, w: World) -> None:
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[0].lower())
    assert result.verdict == Verdict.GENUINE_AND_COMPLIANT, [c.summary for c in result.checks]
    outcomes = {c.name: c.outcome for c in result.checks}
    assert outcomes == {"code_known": Outcome.PASS, "lot_status": Outcome.PASS, "designation": Outcome.PASS,
                        "certificates": Outcome.NOT_APPLICABLE, "chain": Outcome.PASS, "mass_balance": Outcome.PASS,
                        "scan_pattern": Outcome.NOT_AVAILABLE}
    assert _check(result, "designation").evidence["claims"][0]["number"] == "00055"
    assert result.trace is not None and [lot.id for lot in result.trace.lots] == [w.lot.id]


def test_a_counterfeit_serial_is_a_violation(session: Session, w: World) -> None:
    uri = f"http://127.0.0.1:8000/01/{w.lot.gtin}/10/{w.lot.lot_code}/21/FAKE0000001"
    result = inspect_code(session=session, actor=w.inspector, uri=uri)
    assert result.verdict == Verdict.VIOLATION
    assert _check(result, "code_known").evidence["reason"] == "not_genuine" and result.trace is None


def test_a_cancelled_code_is_a_violation(session: Session, w: World) -> None:
    runs.void_codes(session=session, actor=f.member(w.grower), run_id=w.run.id,  # type: ignore[arg-type]
                    data=runs.VoidIn(codes=[w.codes[1]], reason="Tem hỏng"))
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[1])
    assert result.verdict == Verdict.VIOLATION and _check(result, "code_known").outcome == Outcome.VIOLATION
    # the sheet's other codes are still fine
    assert inspect_code(session=session, actor=w.inspector, code=w.codes[0]).verdict == Verdict.GENUINE_AND_COMPLIANT


def test_an_expired_certificate_is_a_warning_naming_it(session: Session, w: World) -> None:
    session.add(Certification(kind=CertificationKind.VIETGAP, number="VG-0123", issuer="Trung tâm chứng nhận (thử)",
                              organisation_id=w.grower.id, valid_from=w.lot.production_date - timedelta(days=800),  # type: ignore[arg-type]
                              valid_to=w.lot.production_date - timedelta(days=1)))
    session.flush()
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[0])
    assert result.verdict == Verdict.WARNING
    certificates = _check(result, "certificates")
    assert certificates.outcome == Outcome.WARNING and "VG-0123" in certificates.summary


def test_a_lot_claiming_the_gi_from_outside_its_area_is_a_violation(session: Session, w: World) -> None:
    # given a lot from a growing area outside the GI whose claim got in (e.g. captured elsewhere)
    outside = f.location(session, w.grower, commune_code=LAC_DAO, former_commune_code=CHI_DAO)
    product = session.get(Product, w.lot.product_id)
    other = session.get(Lot, f.harvest(session, w.grower, "20", prod=product, loc=outside).lot_ids[0])
    assert other is not None
    session.add(LotClaim(lot_id=other.id, designation_id=w.gi.id, source=ClaimSource.HARVEST,  # type: ignore[arg-type]
                         event_id=other.created_event_id))
    session.flush()
    code = _codes(session, runs.create_run(session=session, actor=f.member(w.grower), lot_id=other.id,  # type: ignore[arg-type]
                                           data=runs.PrintRunCreate(quantity=1)))[0]
    # when an inspector checks one of its packages
    result = inspect_code(session=session, actor=w.inspector, code=code)
    # then the designation check fails and says why
    designation = _check(result, "designation")
    assert result.verdict == Verdict.VIOLATION and designation.outcome == Outcome.VIOLATION
    assert designation.evidence["claims"][0]["problem_at_harvest"] == "area_outside"


def test_a_recalled_lot_is_a_violation(session: Session, w: World) -> None:
    w.lot.status = LotStatus.RECALLED
    session.add(w.lot)
    session.flush()
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[0])
    assert result.verdict == Verdict.VIOLATION and _check(result, "lot_status").outcome == Outcome.VIOLATION


def test_only_inspectors_and_admins_get_the_checklist(session: Session, w: World) -> None:
    with pytest.raises(Forbidden):
        inspect_code(session=session, actor=f.member(w.grower), code=w.codes[0])
