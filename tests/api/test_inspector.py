"""GET /api/v1/inspector/verify: the checklist for inspectors only, by code or by URI."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, party
from trace.access import Role
from trace.lots import Lot
from trace.printing import runs
from trace.scans.record import new_scan, write
from trace.units import Unit

URL = "/api/v1/inspector/verify"


def _printed(session: Session) -> tuple[Lot, str, str]:
    coop, _ = party(session)
    lot = session.get(
        Lot, f.harvest(session, coop, "10", prod=f.product(session, coop, package_size=Decimal(1))).lot_ids[0]
    )
    assert lot is not None
    run = runs.create_run(session=session, actor=f.member(coop), lot_id=lot.id, data=runs.PrintRunCreate(quantity=2))  # type: ignore[arg-type]
    serial, code = session.execute(
        select(col(Unit.serial), col(Unit.code)).where(col(Unit.print_run_id) == run.id)
    ).first()  # type: ignore[misc]
    session.commit()
    return lot, serial, code


def test_an_inspector_gets_the_verdict_by_code_and_by_uri(client: TestClient, session: Session) -> None:
    lot, serial, code = _printed(session)
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    by_code = client.get(URL, params={"code": code}, headers=inspector)
    assert by_code.status_code == 200, by_code.text
    body = by_code.json()
    assert body["verdict"] == "genuine_and_compliant" and body["code"]["serial"] == serial
    assert {c["name"] for c in body["checks"]} >= {"code_known", "lot_status", "chain", "mass_balance"}
    assert body["trace"]["root_lot_id"] == lot.id
    by_uri = client.get(URL, params={"uri": body["code"]["uri"]}, headers=inspector)
    assert by_uri.json()["verdict"] == "genuine_and_compliant"


def test_others_are_refused_and_a_bad_request_says_why(client: TestClient, session: Session) -> None:
    _, _, code = _printed(session)
    _, member = party(session)
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    session.commit()  # a refused request rolls back to here
    assert_problem(client.get(URL, params={"code": code}), 401)
    assert_problem(client.get(URL, params={"code": code}, headers=member), 403, "not_an_inspector")
    assert_problem(client.get(URL, headers=inspector), 422, "code_or_uri")
    mistyped = client.get(URL, params={"code": code[:-1] + ("0" if code[-1] != "0" else "1")}, headers=inspector)
    assert mistyped.status_code == 200 and mistyped.json()["verdict"] == "warning"
    assert mistyped.json()["checks"][0]["evidence"]["reason"] == "code_check"


def test_the_scan_pattern_check_shows_its_evidence(client: TestClient, session: Session) -> None:
    # given a unit code scanned from eight networks (a code copied onto other packages)
    lot, _, code = _printed(session)
    unit_id = session.execute(select(col(Unit.id)).where(col(Unit.code) == code)).scalar_one()
    write(
        session=session,
        scans=[
            new_scan(
                lot_id=lot.id,
                unit_id=unit_id,
                client_ip=f"198.51.{i}.7",  # type: ignore[arg-type]
                user_agent=None,
                lang="vi",
                kind="page",
            )
            for i in range(8)
        ],
    )
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    session.commit()
    # when an inspector verifies it, then the verdict is a warning and the check carries the figures
    body = client.get(URL, params={"code": code}, headers=inspector).json()
    check = next(c for c in body["checks"] if c["name"] == "scan_pattern")
    assert body["verdict"] == "warning" and check["outcome"] == "warning"
    assert (check["evidence"]["count"], check["evidence"]["networks"], check["evidence"]["reasons"]) == (
        8,
        8,
        ["many_networks"],
    )
    assert check["evidence"]["first_at"] is not None and check["evidence"]["last_at"] is not None
