"""The inspector's verdict: a genuine GI package passes every check; a counterfeit, a cancelled
code, an expired certificate, a lot claiming the GI from outside its area and a recalled lot each
fail the check that names them, with evidence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlmodel import Session, col

from tests import factories as f
from tests.services import append_to_log
from trace import admin_units, digital_link, inspector
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
from trace.lots import Holding, Lot, LotStatus
from trace.organisations import Organisation
from trace.platform.config import get_settings
from trace.platform.timeutil import today
from trace.printing import runs
from trace.products import Product
from trace.scans.record import new_scan, write
from trace.units import Unit

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DISTRICTS = ["Thành phố Hưng Yên", "Huyện Khoái Châu", "Huyện Tiên Lữ", "Huyện Kim Động"]
HOAN_LONG, DONG_TAO = "12070", "12208"  # today's Xã Hoàn Long took in the old Đông Tảo (Khoái Châu)
LAC_DAO, CHI_DAO = "11992", "11992"  # today's Xã Lạc Đạo, the old Chỉ Đạo (Văn Lâm): outside the GI


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
    gi = Designation(
        kind=DesignationKind.GEOGRAPHICAL_INDICATION,
        name_vi="Nhãn lồng Hưng Yên",
        registration_number="00055",
        decision_number="186/QĐ-SHTT",
        decision_date=date(2017, 1, 23),
        holder_organisation_id=holder.id,  # type: ignore[arg-type]
        categories=["longan_fresh"],
        inherit_rule=InheritRule.ALL_INPUTS,
        area_former_districts=DISTRICTS,
        area_former_communes=sorted(c.code for c in formers),
        area_communes=sorted({code for c in formers for code in c.current_codes}),
    )
    session.add(gi)
    session.flush()
    return gi


def _codes(session: Session, run: runs.PrintRun) -> list[str]:
    return list(
        session.execute(select(col(Unit.code)).where(col(Unit.print_run_id) == run.id).order_by(col(Unit.id))).scalars()
    )


@pytest.fixture
def w(session: Session) -> World:
    holder = f.org(session, "designation_holder")
    authority = f.org(session, "authority")
    gi = _gi(session, holder)
    grower = f.org(session)
    session.add(
        RightToUse(
            designation_id=gi.id,
            organisation_id=grower.id,
            decision_number="12/QĐ-SKHCN",  # type: ignore[arg-type]
            valid_from=today() - timedelta(days=400),
            valid_to=today() + timedelta(days=400),
        )
    )
    area = f.location(session, grower, commune_code=HOAN_LONG, former_commune_code=DONG_TAO)
    fresh = f.product(session, grower, name_vi="Nhãn lồng tươi", package_size=Decimal("0.5"))
    lot = session.get(Lot, f.harvest(session, grower, "100", prod=fresh, loc=area, designation_ids=[gi.id]).lot_ids[0])
    assert lot is not None
    run = runs.create_run(session=session, actor=f.member(grower), lot_id=lot.id, data=runs.PrintRunCreate(quantity=3))  # type: ignore[arg-type]
    inspector = Actor(role=Role.INSPECTOR, organisation_id=authority.id, name="QLTT")
    append_to_log(session)
    return World(inspector, grower, gi, lot, _codes(session, run), run)


def _check(result: Any, name: str) -> Any:
    return next(c for c in result.checks if c.name == name)


def test_a_genuine_gi_package_passes_every_check_with_evidence_and_its_trace(session: Session, w: World) -> None:
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[0].lower())
    assert result.verdict == Verdict.GENUINE_AND_COMPLIANT, [c.summary for c in result.checks]
    outcomes = {c.name: c.outcome for c in result.checks}
    assert outcomes == {
        "code_known": Outcome.PASS,
        "lot_status": Outcome.PASS,
        "designation": Outcome.PASS,
        "certificates": Outcome.NOT_APPLICABLE,
        "chain": Outcome.PASS,
        "mass_balance": Outcome.PASS,
        "scan_pattern": Outcome.PASS,
        "public_log": Outcome.PASS,
    }
    assert _check(result, "designation").evidence["claims"][0]["number"] == "00055"
    logged = _check(result, "public_log").evidence
    assert logged["events"] == logged["included"] > 0 and logged["tree_size"] >= logged["events"]
    assert result.trace is not None and [lot.id for lot in result.trace.lots] == [w.lot.id]


def test_a_counterfeit_serial_is_a_violation(session: Session, w: World) -> None:
    uri = f"http://127.0.0.1:8000/01/{w.lot.gtin}/10/{w.lot.lot_code}/21/FAKE0000001"
    result = inspect_code(session=session, actor=w.inspector, uri=uri)
    assert result.verdict == Verdict.VIOLATION
    assert _check(result, "code_known").evidence["reason"] == "not_genuine" and result.trace is None


def test_a_cancelled_code_is_a_violation(session: Session, w: World) -> None:
    runs.void_codes(
        session=session,
        actor=f.member(w.grower),
        run_id=w.run.id,  # type: ignore[arg-type]
        data=runs.VoidIn(codes=[w.codes[1]], reason="Tem hỏng"),
    )
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[1])
    assert result.verdict == Verdict.VIOLATION and _check(result, "code_known").outcome == Outcome.VIOLATION
    # the sheet's other codes are still fine
    assert inspect_code(session=session, actor=w.inspector, code=w.codes[0]).verdict == Verdict.GENUINE_AND_COMPLIANT


def test_an_expired_certificate_is_a_warning_naming_it(session: Session, w: World) -> None:
    session.add(
        Certification(
            kind=CertificationKind.VIETGAP,
            number="VG-0123",
            issuer="Trung tâm chứng nhận (thử)",
            organisation_id=w.grower.id,
            valid_from=w.lot.production_date - timedelta(days=800),  # type: ignore[arg-type]
            valid_to=w.lot.production_date - timedelta(days=1),
        )
    )
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
    session.add(
        LotClaim(
            lot_id=other.id,
            designation_id=w.gi.id,
            source=ClaimSource.HARVEST,  # type: ignore[arg-type]
            event_id=other.created_event_id,
        )
    )
    session.flush()
    code = _codes(
        session,
        runs.create_run(
            session=session,
            actor=f.member(w.grower),
            lot_id=other.id,  # type: ignore[arg-type]
            data=runs.PrintRunCreate(quantity=1),
        ),
    )[0]
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


def _scanned(session: Session, w: World, code: str, ips: list[str]) -> list[datetime]:
    """Record one scan of a unit code from each address, a day apart; their times."""
    unit = session.execute(select(Unit).where(Unit.code == code)).scalar_one()  # type: ignore[arg-type]
    start = datetime(2026, 11, 1, 9, tzinfo=UTC)
    times = [start + timedelta(days=i) for i in range(len(ips))]
    write(
        session=session,
        scans=[
            new_scan(
                lot_id=w.lot.id,
                unit_id=unit.id,
                client_ip=ip,
                user_agent="Mozilla/5.0 Mobile",  # type: ignore[arg-type]
                lang="vi",
                kind="page",
                at=at,
            )
            for ip, at in zip(ips, times, strict=True)
        ],
    )
    return times


def test_a_code_scanned_from_many_networks_is_a_warning_with_the_evidence(session: Session, w: World) -> None:
    # given a genuine code copied onto other packages: scanned from 8 different networks
    times = _scanned(session, w, w.codes[0], [f"198.51.{i}.20" for i in range(8)])
    # when an inspector checks it
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[0])
    # then the scan pattern is a warning naming the figures, and everything else still passes
    check = _check(result, "scan_pattern")
    assert result.verdict == Verdict.WARNING and check.outcome == Outcome.WARNING
    assert {k: check.evidence[k] for k in ("level", "count", "networks", "places", "reasons")} == {
        "level": "unit",
        "count": 8,
        "networks": 8,
        "places": 0,
        "reasons": ["many_networks"],
    }
    assert (check.evidence["first_at"], check.evidence["last_at"]) == (times[0].isoformat(), times[-1].isoformat())
    assert "8 network" in check.summary
    assert {c.outcome for c in result.checks if c.name != "scan_pattern"} <= {Outcome.PASS, Outcome.NOT_APPLICABLE}
    # the package whose code was not copied is unaffected
    assert inspect_code(session=session, actor=w.inspector, code=w.codes[1]).verdict == Verdict.GENUINE_AND_COMPLIANT


def test_a_code_scanned_very_often_from_one_network_passes(session: Session, w: World) -> None:
    # given a code scanned 60 times from one network (a curious family, or somebody hoping to get a
    # genuine code flagged as copied)
    _scanned(session, w, w.codes[1], [f"203.0.113.{i}" for i in range(60)])
    # then it is one network, not a copy
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[1])
    check = _check(result, "scan_pattern")
    assert result.verdict == Verdict.GENUINE_AND_COMPLIANT and check.outcome == Outcome.PASS
    assert (check.evidence["count"], check.evidence["networks"], check.evidence["reasons"]) == (60, 1, [])
    assert "60 scan(s) from 1 network(s)" in check.summary


def test_a_code_scanned_twice_from_one_network_passes(session: Session, w: World) -> None:
    _scanned(session, w, w.codes[2], ["203.0.113.5", "203.0.113.60"])
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[2])
    check = _check(result, "scan_pattern")
    assert result.verdict == Verdict.GENUINE_AND_COMPLIANT and check.outcome == Outcome.PASS
    assert (check.evidence["count"], check.evidence["networks"], check.evidence["reasons"]) == (2, 1, [])


def test_a_lot_code_is_counted_not_judged(session: Session, w: World) -> None:
    # a lot code is on every package: scans of its units from many networks are normal for the lot
    _scanned(session, w, w.codes[0], [f"198.51.{i}.20" for i in range(8)])
    uri = digital_link.lot_uri(base_url=get_settings().public_base_url, gtin=w.lot.gtin, lot=w.lot.lot_code)
    result = inspect_code(session=session, actor=w.inspector, uri=uri)
    check = _check(result, "scan_pattern")
    assert check.outcome == Outcome.PASS and result.verdict == Verdict.GENUINE_AND_COMPLIANT
    assert (check.evidence["level"], check.evidence["count"], check.evidence["networks"]) == ("lot", 8, 8)


def test_stock_nobody_received_breaks_the_chain_and_the_mass_balance_in_both_languages(
    session: Session, w: World
) -> None:
    # given a shop that holds part of the lot although no shipment reached it (a tampered holding)
    shop = f.org(session, "retailer", name="Cửa hàng Phố Hiến")
    session.add(Holding(lot_id=w.lot.id, organisation_id=shop.id, quantity=Decimal("7")))  # type: ignore[arg-type]
    session.flush()
    # when an inspector checks a package of the lot
    result = inspect_code(session=session, actor=w.inspector, code=w.codes[0])
    # then both checks name the shop and the lot, in Vietnamese and in English
    chain, balance = _check(result, "chain"), _check(result, "mass_balance")
    assert result.verdict == Verdict.VIOLATION
    assert chain.outcome == Outcome.VIOLATION and balance.outcome == Outcome.VIOLATION
    assert (
        f"Cửa hàng Phố Hiến đang giữ lô {w.lot.lot_code} mà không có ghi nhận nhận hàng — "
        f"Cửa hàng Phố Hiến holds lot {w.lot.lot_code} without a recorded receipt"
    ) == chain.summary
    assert f"lô {w.lot.lot_code}: Cửa hàng Phố Hiến đang giữ 7" in balance.summary
    assert f"lot {w.lot.lot_code}: Cửa hàng Phố Hiến holds 7" in balance.summary
    held = {h["organisation"]: Decimal(h["quantity"]) for h in chain.evidence["holders"]}
    assert held["Cửa hàng Phố Hiến"] == 7 and held[w.grower.name] == 100


def test_a_journey_event_altered_after_it_was_logged_is_a_violation(session: Session, w: World) -> None:
    # given an insider who rewrites the harvest's farming inputs (its stored hash kept: the row lies)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP TRIGGER event_append_only ON event")
    else:
        connection.exec_driver_sql("DROP TRIGGER event_no_update")
    event_id = w.lot.created_event_id
    connection.execute(
        text("UPDATE event SET payload = :p WHERE id = :id"), {"p": '{"quantity": "9999.000"}', "id": event_id}
    )
    session.expire_all()
    # when an inspector checks a label of the lot, then the log check names the event
    check = _check(inspect_code(session=session, actor=w.inspector, code=w.codes[0]), "public_log")
    assert check.outcome == Outcome.VIOLATION
    assert check.evidence["failed"] == [{"event_id": event_id, "reason": "the event no longer matches its chain hash"}]


def test_events_long_out_of_the_signed_log_are_a_warning(
    session: Session, w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an event recorded after the last checkpoint, and a sequencer that stopped
    f.harvest(session, w.grower, "5")
    other = f.harvest(session, w.grower, "5").lot_ids[0]
    run = runs.create_run(session=session, actor=f.member(w.grower), lot_id=other, data=runs.PrintRunCreate(quantity=1))  # type: ignore[arg-type]
    code = _codes(session, run)[0]
    assert _check(inspect_code(session=session, actor=w.inspector, code=code), "public_log").outcome == (
        Outcome.NOT_AVAILABLE  # seconds old: the worker appends it soon
    )
    monkeypatch.setattr(inspector, "LOG_STALE", timedelta(0))
    check = _check(inspect_code(session=session, actor=w.inspector, code=code), "public_log")
    assert check.outcome == Outcome.WARNING and check.evidence["pending"] >= 1
