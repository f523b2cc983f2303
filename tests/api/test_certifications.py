"""Certifications over HTTP: record, read, revoke; a lot's certificates read by anyone; refusals
with their reasons and nothing written. Also the holder's usage view (its route has no other file)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, party, snapshot
from trace.access import Role
from trace.designations.models import Designation, DesignationKind, LotClaim, RightToUse
from trace.lots import Lot
from trace.platform.timeutil import today as local_today

API = "/api/v1"
DOC = "https://example.test/chung-nhan/ocop-017.pdf"


def _lot(session: Session, o: Any) -> Lot:
    lot = session.get(Lot, f.harvest(session, o, "100", days_ago=5).lot_ids[0])
    assert lot is not None
    return lot


def _body(o: Any, lot: Lot, **extra: Any) -> dict[str, Any]:
    body = {
        "kind": "vietgap",
        "number": "VG-HY-0001",
        "issuer": "Tổ chức chứng nhận (dữ liệu mẫu)",
        "organisation_id": o.id,
        "valid_from": str(lot.production_date - timedelta(days=30)),
        "valid_to": str(lot.production_date + timedelta(days=335)),
    }
    return {**body, **extra}


def test_an_org_admin_records_its_certificate_and_the_public_reads_it_on_the_lot(
    client: TestClient, session: Session
) -> None:
    coop, admin_h = party(session, role=Role.ORG_ADMIN)
    lot = _lot(session, coop)
    other_h = headers_for(session, f.org(session))

    created = client.post(
        f"{API}/certifications",
        headers=admin_h,
        json=_body(coop, lot, kind="ocop", stars=4, document_url=DOC, product_ids=[lot.product_id]),
    )

    assert created.status_code == 201, created.text
    cert = created.json()
    assert (cert["organisation_id"], cert["stars"], cert["document_url"]) == (coop.id, 4, DOC)
    assert client.get(f"{API}/certifications/{cert['id']}", headers=admin_h).json()["document_url"] == DOC
    assert client.get(f"{API}/certifications/{cert['id']}", headers=other_h).json()["document_url"] is None
    listed = client.get(f"{API}/certifications", params={"organisation_id": coop.id}, headers=other_h).json()
    assert [c["id"] for c in listed] == [cert["id"]]
    assert (
        client.get(
            f"{API}/certifications", params={"organisation_id": coop.id, "kind": "organic"}, headers=other_h
        ).json()
        == []
    )

    public = client.get(f"{API}/lots/{lot.id}/certifications")  # no credentials
    assert public.status_code == 200, public.text
    [shown] = public.json()
    assert (shown["certification_id"], shown["kind"], shown["stars"]) == (cert["id"], "ocop", 4)
    assert (shown["valid_at_harvest"], shown["valid_today"], shown["shown"]) == (True, True, True)
    assert DOC not in public.text and "revoked_reason" not in shown


def test_revoking_over_http_keeps_earlier_harvests_covered(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    lot = _lot(session, coop)
    admin = headers_for(session, None, Role.ADMIN)
    cert = client.post(f"{API}/certifications", headers=admin, json=_body(coop, lot)).json()

    revoked = client.post(
        f"{API}/certifications/{cert['id']}/revoke", headers=admin, json={"reason": "Không duy trì điều kiện sản xuất"}
    )

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_reason"] == "Không duy trì điều kiện sản xuất"
    [shown] = client.get(f"{API}/lots/{lot.id}/certifications").json()
    assert (shown["valid_at_harvest"], shown["valid_today"], shown["revoked_on"]) == (True, False, str(local_today()))
    assert_problem(
        client.post(f"{API}/certifications/{cert['id']}/revoke", headers=admin, json={"reason": "Lần nữa"}),
        409,
        "already_revoked",
    )


def test_refusals_say_why_and_write_nothing(client: TestClient, session: Session) -> None:
    coop, member_h = party(session)
    lot = _lot(session, coop)
    admin_h = headers_for(session, coop, Role.ORG_ADMIN)
    stranger_admin_h = headers_for(session, f.org(session), Role.ORG_ADMIN)
    foreign_product = f.product(session, f.org(session))
    session.commit()
    before = snapshot(session)
    cases: list[tuple[dict[str, str], dict[str, Any], int, str]] = [
        (member_h, _body(coop, lot, document_url=DOC), 403, "not_certification_manager"),
        (stranger_admin_h, _body(coop, lot, document_url=DOC), 403, "not_certification_manager"),
        (admin_h, _body(coop, lot), 422, "document_required"),
        (admin_h, _body(coop, lot, document_url=DOC, valid_to="2020-01-01"), 422, "invalid_validity"),
        (admin_h, _body(coop, lot, document_url=DOC, kind="ocop"), 422, "stars_required"),
        (admin_h, _body(coop, lot, document_url=DOC, kind="ocop", stars=2), 422, "validation_error"),
        (admin_h, _body(coop, lot, document_url=DOC, stars=3), 422, "stars_not_allowed"),
        (
            admin_h,
            _body(coop, lot, document_url=DOC, product_ids=[foreign_product.id]),
            422,
            "product_not_in_organisation",
        ),
    ]
    for headers, body, status, code in cases:
        assert_problem(client.post(f"{API}/certifications", headers=headers, json=body), status, code)
    assert_problem(client.post(f"{API}/certifications", json=_body(coop, lot)), 401)
    assert_problem(client.get(f"{API}/lots/{10**9}/certifications"), 404)
    assert_problem(client.get(f"{API}/certifications/{10**9}", headers=member_h), 404)
    assert snapshot(session) == before


def test_another_organisation_cannot_revoke(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    lot = _lot(session, coop)
    cert = client.post(
        f"{API}/certifications", headers=headers_for(session, None, Role.ADMIN), json=_body(coop, lot)
    ).json()
    stranger_h = headers_for(session, f.org(session), Role.ORG_ADMIN)
    session.commit()  # a refused request rolls back what is not committed, the stranger's account too

    assert_problem(
        client.post(f"{API}/certifications/{cert['id']}/revoke", headers=stranger_h, json={"reason": "Thử thu hồi"}),
        403,
        "not_certification_manager",
    )
    got = client.get(f"{API}/certifications/{cert['id']}", headers=stranger_h)
    assert got.json()["revoked_at"] is None, got.text


# --------------------------------------------------------------------------- the holder's usage view


def test_the_holder_reads_usage_and_others_are_refused(client: TestClient, session: Session) -> None:
    holder, holder_h = party(session, "designation_holder")
    grower, grower_h = party(session, role=Role.ORG_ADMIN)
    designation = Designation(
        kind=DesignationKind.GEOGRAPHICAL_INDICATION,
        name_vi="Nhãn lồng Hưng Yên",
        holder_organisation_id=holder.id,
        categories=["longan_fresh"],
        area_communes=[f.COMMUNE],
    )
    session.add(designation)
    session.flush()
    right = RightToUse(
        designation_id=designation.id,
        organisation_id=grower.id,
        decision_number="7/QĐ-HNL",  # type: ignore[arg-type]
        valid_from=date.today() - timedelta(days=400),
        annual_label_quota=50,
    )
    session.add(right)
    session.flush()
    lot = _lot(session, grower)
    session.add(
        LotClaim(
            lot_id=lot.id,
            designation_id=designation.id,
            right_id=right.id,
            source="harvest",  # type: ignore[arg-type]
            event_id=lot.created_event_id,
        )
    )
    session.commit()
    year = local_today().year
    printed = client.post(f"{API}/lots/{lot.id}/print-runs", headers=grower_h, json={"quantity": 4})
    assert printed.status_code == 202, printed.text

    seen = client.get(f"{API}/designations/{designation.id}/usage", params={"year": year}, headers=holder_h)

    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert body["name_vi"] == "Nhãn lồng Hưng Yên"
    [held] = body["rights"]
    assert (held["organisation_id"], held["quota_use"]) == (
        grower.id,
        [{"year": year, "labels": 4, "quota": 50, "left": 46, "over": False}],
    )
    [grantee] = body["grantees"]
    assert (grantee["organisation_id"], grantee["years"][0]["labels"]) == (grower.id, 4)
    assert_problem(
        client.get(f"{API}/designations/{designation.id}/usage", headers=grower_h), 403, "not_designation_holder"
    )
    assert_problem(client.get(f"{API}/designations/{10**9}/usage", headers=holder_h), 404)
    assert_problem(
        client.get(f"{API}/designations/{designation.id}/usage", params={"year": 1800}, headers=holder_h),
        422,
        "validation_error",
    )
    assert_problem(client.get(f"{API}/designations/{designation.id}/usage"), 401)
