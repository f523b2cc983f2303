"""What every workspace form and page promises, across the areas: a form from another site writes
nothing, a form sent twice records once, another organisation's pages are out of reach, and an account
that records for no organisation is refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from tests import factories as f
from tests.api.test_print_runs import render
from tests.api.web.chain import _chain, _events, _held, _idem, _receive_and_transform, _send
from tests.api.web.farm import Farm, an_hour_ago, harvest_form, lots_coded, signed_in
from tests.api.web.helpers import PASSWORD, VI, form_token, sign_in
from tests.api.web.registry import (
    Registry,
    a_right,
    as_user,
    count,
    designation_form,
    idem,
    members_of,
    org_form,
    post,
    rights_of,
)
from tests.factories import HOAN_LONG
from trace.access import Role
from trace.designations.models import Designation, RightStatus
from trace.events.models import EventType
from trace.locations import Location
from trace.lots import Shipment
from trace.organisations import Organisation
from trace.printing.models import PrintRun
from trace.users import User


def test_forms_forged_on_another_site_are_refused_and_record_nothing(
    client: TestClient, session: Session, farm: Farm
) -> None:
    lot_id = f.harvest(session, farm.coop, "100", prod=farm.fresh, loc=farm.area).lot_ids[0]
    session.commit()
    signed_in(client, farm)
    good = harvest_form(client, farm)
    posts = {
        "/app/harvest": good,
        f"/app/lots/{lot_id}/ship": {
            "idem": "x1",
            "destination_organisation_id": farm.buyer.id,
            "quantity": "10",
            "event_time": an_hour_ago(),
        },
        "/app/areas/new": {
            "name": "Vườn giả",
            "kind": "growing_area",
            "code": "VN-FORGED-1",
            "commune_code": HOAN_LONG,
        },
        f"/app/areas/{farm.area.id}/edit": {"name": "Đổi tên giả", "code": "VN-HY-DT-001", "commune_code": HOAN_LONG},
    }
    for url, data in posts.items():
        forged = client.post(url, data={**data, "csrf": "0" * 64}, headers=VI, follow_redirects=False)
        assert forged.status_code == 403 and "Bị từ chối" in forged.text, url
    session.expire_all()
    assert lots_coded(session, "NL-2026-001") == []
    assert session.exec(select(Shipment)).first() is None
    assert session.exec(select(Location).where(Location.code == "VN-FORGED-1")).first() is None
    assert session.get(Location, farm.area.id).name == "Vườn Đông Tảo"  # type: ignore[union-attr]


def test_another_organisations_pages_are_out_of_reach_by_direct_url(
    client: TestClient, session: Session, farm: Farm
) -> None:
    other = f.org(session, name="HTX khác (thử nghiệm)")
    their_area = f.location(session, other, name="Vườn của HTX khác")
    their_lot = f.harvest(session, other, "80", loc=their_area, lot_code="THEIRS-1").lot_ids[0]
    f.ship(session, other, their_lot, farm.buyer, "10")
    session.commit()
    signed_in(client, farm)
    assert client.get(f"/app/areas/{their_area.id}/edit", headers=VI).status_code == 403
    token = form_token(client.get("/app/areas", headers=VI).text)
    edit = client.post(
        f"/app/areas/{their_area.id}/edit",
        data={"csrf": token, "name": "Chiếm đoạt", "code": their_area.code, "commune_code": HOAN_LONG},
        headers=VI,
    )
    assert edit.status_code == 403 and "Vườn của HTX khác" not in edit.text
    for url in (
        f"/app/farm/lots/{their_lot}",
        f"/app/lots/{their_lot}/ship",
        "/app/farm/lots/999999",
        "/app/areas/999999/edit",
    ):
        page = client.get(url, headers=VI)
        assert page.status_code == 404 and "THEIRS-1" not in page.text and "Không tìm thấy" in page.text, url
    ship = client.post(
        f"/app/lots/{their_lot}/ship",
        data={
            "csrf": token,
            "idem": "k1",
            "destination_organisation_id": farm.buyer.id,
            "quantity": "5",
            "event_time": an_hour_ago(),
        },
        headers=VI,
    )
    assert ship.status_code == 404
    assert "THEIRS-1" not in client.get("/app/shipments", headers=VI).text
    assert "Vườn của HTX khác" not in client.get("/app/areas", headers=VI).text
    session.expire_all()
    assert session.get(Location, their_area.id).name == "Vườn của HTX khác"  # type: ignore[union-attr]
    assert len(list(session.exec(select(Shipment).where(Shipment.lot_id == their_lot)))) == 1


def test_an_account_that_records_for_no_organisation_gets_403_and_a_visitor_is_sent_to_sign_in(
    client: TestClient, session: Session, farm: Farm
) -> None:
    assert client.get("/app/harvest", follow_redirects=False).headers["location"] == "/login?next=%2Fapp%2Fharvest"
    inspector, _ = f.user(session, f.org(session, "authority"), Role.INSPECTOR, password=PASSWORD)
    session.commit()
    sign_in(client, inspector.email)
    for url in ("/app/areas", "/app/areas/new", "/app/harvest", "/app/shipments"):
        page = client.get(url, headers=VI)
        assert page.status_code == 403 and "Không được phép" in page.text, url


def test_forged_form_tokens_are_refused_and_record_nothing(client: TestClient, session: Session) -> None:
    c = _chain(client, session)
    forged = {"csrf": "0" * 64, "idem": "k1"}
    receive = client.post(
        f"/app/incoming/{c.shipment_id}/receive", data={**forged, "quantity": "40"}, headers=VI, follow_redirects=False
    )
    assert receive.status_code == 403 and "Bị từ chối" in receive.text
    assert _events(session, EventType.RECEIVE) == 0
    _send(client, f"/app/incoming/{c.shipment_id}/receive", quantity="40")
    for url, data in (
        (f"/app/lots/{c.lot.id}/print", {"format": "a4-3x8", "count": "2"}),
        (
            "/app/transform",
            {"lot": [str(c.lot.id)], "qty": ["1"], "product_id": str(c.dried.id), "lot_code": "X1", "quantity": "1"},
        ),
        (f"/app/lots/{c.lot.id}/sell", {"quantity": "1"}),
    ):
        answer = client.post(url, data={**forged, **data}, headers=VI, follow_redirects=False)
        assert answer.status_code == 403, url
    assert _events(session, EventType.TRANSFORM) == _events(session, EventType.SELL) == 0
    assert c.calls == [] and _held(session, c.lot.id, c.processor) == Decimal(40)  # type: ignore[arg-type]


def test_a_form_sent_twice_records_once(client: TestClient, session: Session) -> None:
    c = _chain(client, session)
    page = client.get(f"/app/incoming/{c.shipment_id}/receive", headers=VI).text
    form = {"csrf": form_token(page), "idem": _idem(page), "quantity": "10"}
    first = client.post(f"/app/incoming/{c.shipment_id}/receive", data=form, headers=VI, follow_redirects=False)
    again = client.post(f"/app/incoming/{c.shipment_id}/receive", data=form, headers=VI, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert _events(session, EventType.RECEIVE) == 1 and _held(session, c.lot.id, c.processor) == Decimal(10)  # type: ignore[arg-type]
    # a print run asked twice with the same form is one run, handed to the workers (harmlessly) again
    page = client.get(f"/app/lots/{c.lot.id}/print", headers=VI).text
    form = {"csrf": form_token(page), "idem": _idem(page), "format": "a4-3x8", "count": "5"}
    first = client.post(f"/app/lots/{c.lot.id}/print", data=form, headers=VI, follow_redirects=False)
    again = client.post(f"/app/lots/{c.lot.id}/print", data=form, headers=VI, follow_redirects=False)
    assert first.headers["location"] == again.headers["location"]
    assert session.execute(select(func.count()).select_from(PrintRun)).scalar_one() == 1
    run_id = int(first.headers["location"].rsplit("/", 1)[1])
    assert set(c.calls) == {run_id}
    # a reprint tapped twice is one reprint
    render(session, run_id)
    page = client.get(f"/app/print-runs/{run_id}", headers=VI).text
    form = {"csrf": form_token(page), "idem": _idem(page)}
    first = client.post(f"/app/print-runs/{run_id}/reprint", data=form, headers=VI, follow_redirects=False)
    again = client.post(f"/app/print-runs/{run_id}/reprint", data=form, headers=VI, follow_redirects=False)
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    reprints = session.execute(select(PrintRun).where(PrintRun.reprint_of_id == run_id)).scalars().all()  # type: ignore[arg-type]
    assert len(reprints) == 1 and reprints[0].quantity == 5 and c.calls[-1] == reprints[0].id
    # and a sale sent twice sells once
    page = client.get(f"/app/lots/{c.lot.id}/sell", headers=VI).text
    form = {"csrf": form_token(page), "idem": _idem(page), "quantity": "2,5", "day": ""}
    for _ in range(2):
        assert (
            client.post(f"/app/lots/{c.lot.id}/sell", data=form, headers=VI, follow_redirects=False).status_code == 303
        )
    assert _events(session, EventType.SELL) == 1 and _held(session, c.lot.id, c.processor) == Decimal("7.5")  # type: ignore[arg-type]


def test_another_organisations_pages_are_not_found_by_direct_url(client: TestClient, session: Session) -> None:
    c = _chain(client, session)
    new_id = _receive_and_transform(client, session, c)
    answer = _send(client, f"/app/lots/{new_id}/print", format="a4-3x8", count="4")
    run_id = int(answer.headers["location"].rsplit("/", 1)[1])
    render(session, run_id)
    # another processor signs in on the same browser
    other = f.org(session, "processor")
    stranger, _ = f.user(session, other, Role.MEMBER, password=PASSWORD)
    session.commit()
    client.cookies.clear()
    assert sign_in(client, stranger.email).status_code == 303  # type: ignore[attr-defined]
    token = form_token(client.get("/app", headers=VI).text)
    for url in (
        f"/app/incoming/{c.shipment_id}/receive",
        f"/app/transform/{new_id}",
        f"/app/lots/{new_id}/print",
        f"/app/lots/{new_id}/store",
        f"/app/lots/{new_id}/sell",
        f"/app/print-runs/{run_id}",
        f"/app/print-runs/{run_id}/file",
    ):
        page = client.get(url, headers=VI)
        assert page.status_code == 404 and "Trang này không tồn tại, hoặc thuộc về tổ chức khác." in page.text, url
        assert "LS-2026-01" not in page.text and "NL-2026-07" not in page.text, url
    for url, data in (
        (f"/app/incoming/{c.shipment_id}/receive", {"quantity": "1"}),
        (f"/app/lots/{new_id}/print", {"format": "a4-3x8", "count": "1"}),
        (f"/app/lots/{new_id}/sell", {"quantity": "1"}),
        (f"/app/print-runs/{run_id}/reprint", {}),
        (f"/app/print-runs/{run_id}/cancel", {}),
    ):
        answer = client.post(
            url, data={"csrf": token, "idem": "stranger-1", **data}, headers=VI, follow_redirects=False
        )
        assert answer.status_code == 404, url
    assert "NL-2026-07" not in client.get("/app/incoming", headers=VI).text
    assert _events(session, EventType.SELL) == 0
    assert session.execute(select(func.count()).select_from(PrintRun)).scalar_one() == 1


def test_another_holders_designation_and_rights_are_out_of_reach_by_direct_url(
    client: TestClient, session: Session, reg: Registry
) -> None:
    right = a_right(session, reg)
    as_user(client, reg.other_holder_user)
    assert reg.gi.name_vi not in client.get("/app/designations", headers=VI).text
    for url in (
        f"/app/designations/{reg.gi.id}",
        f"/app/designations/{reg.gi.id}/usage",
        f"/app/designations/{reg.gi.id}/rights/new",
        f"/app/rights/{right.id}",
    ):
        answer = client.get(url, headers=VI)
        assert answer.status_code == 403, url
        assert "7/QĐ-HNL" not in answer.text
    token = form_token(client.get("/app/designations", headers=VI).text)
    grant = client.post(
        f"/app/designations/{reg.gi.id}/rights/new",
        headers=VI,
        data={
            "csrf": token,
            "organisation_id": reg.grower.id,
            "decision_number": "99/QĐ",
            "valid_from": date.today().isoformat(),
        },
    )
    suspend = client.post(
        f"/app/rights/{right.id}/suspend", data={"csrf": token, "reason": "Không phải của tôi"}, headers=VI
    )
    assert grant.status_code == suspend.status_code == 403
    assert "Chỉ chủ sở hữu" in grant.text
    assert [r.status for r in rights_of(session, reg.gi)] == [RightStatus.ACTIVE]
    assert client.get("/app/designations/999999", headers=VI).status_code == 404
    assert client.get("/app/rights/999999", headers=VI).status_code == 404


def test_another_organisations_users_and_the_province_pages_are_out_of_reach(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.other_holder_user)  # an administrator of another organisation
    assert client.get(f"/app/admin/organisations/{reg.grower.id}/users", headers=VI).status_code == 403
    for url in (
        "/app/admin/organisations",
        "/app/admin/organisations/new",
        "/app/admin/designations",
        "/app/admin/designations/new",
    ):
        assert client.get(url, headers=VI).status_code == 403, url
    token = form_token(client.get("/app/designations", headers=VI).text)
    invite = client.post(
        f"/app/admin/organisations/{reg.grower.id}/users",
        headers=VI,
        data={"csrf": token, "email": "ke.la@htxdongtao.vn", "full_name": "Kẻ lạ", "role": "member"},
    )
    made = client.post(
        "/app/admin/organisations/new",
        headers=VI,
        data={"csrf": token, "kind": "farm", "name": "Trại lạ", "tax_code": "0907654321"},
    )
    assert invite.status_code == made.status_code == 403
    assert "Chỉ quản trị viên tỉnh" in made.text
    assert session.exec(select(User).where(User.email == "ke.la@htxdongtao.vn")).all() == []
    assert session.exec(select(Organisation).where(Organisation.tax_code == "0907654321")).all() == []
    forged = client.post(
        f"/app/admin/organisations/{reg.grower.id}/users",
        headers=VI,
        data={"csrf": "forged", "email": "ke.la@htxdongtao.vn", "full_name": "Kẻ lạ", "role": "member"},
    )
    assert forged.status_code == 403 and "Biểu mẫu" in forged.text


def test_forged_once_only_forms_write_nothing(client: TestClient, session: Session, reg: Registry) -> None:
    as_user(client, reg.admin)
    made = [
        post(client, "/app/admin/organisations/new", org_form(client, csrf="forged")),
        post(client, "/app/admin/designations/new", designation_form(client, reg, csrf="forged")),
    ]
    page = members_of(client, reg.grower)
    made.append(
        post(
            client,
            f"/app/admin/organisations/{reg.grower.id}/users",
            {
                "csrf": "forged",
                "idem": idem(page),
                "email": "gia.mao@htxdongtao.vn",
                "full_name": "Giả Mạo",
                "role": "member",
            },
        )
    )
    assert [m.status_code for m in made] == [403, 403, 403]
    assert count(session, Organisation, Organisation.tax_code == "0901234567") == 0
    assert count(session, Designation, Designation.name_vi == "Nhãn lồng Khoái Châu (thử)") == 0
    assert count(session, User, User.email == "gia.mao@htxdongtao.vn") == 0
