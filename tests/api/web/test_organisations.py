"""The province onboards organisations once and finds them by kind and commune; refusals in Vietnamese."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests import factories as f
from tests.api.web.helpers import VI
from tests.api.web.registry import REUSED, Registry, as_user, count, org_form, post
from trace.organisations import Organisation

OUTSIDE = "12019"  # a Hưng Yên commune outside the test designation's protected area


def test_the_province_admin_onboards_an_organisation_once_and_finds_it_by_kind_and_commune(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    data = org_form(client)
    made = client.post("/app/admin/organisations/new", data=data, headers=VI, follow_redirects=False)
    again = client.post("/app/admin/organisations/new", data=data, headers=VI, follow_redirects=False)  # double tap
    [org] = session.exec(select(Organisation).where(Organisation.tax_code == "0901234567")).all()
    assert made.status_code == again.status_code == 303
    assert made.headers["location"] == f"/app/admin/organisations/{org.id}/users?created=1"
    assert (org.kind.value, org.commune_code, org.address) == ("processor", f.COMMUNE, "Số 1 đường Nguyễn Văn Linh")
    assert "mời quản trị viên đầu tiên" in client.get(made.headers["location"], headers=VI).text

    processors = client.get("/app/admin/organisations?kind=processor", headers=VI).text
    assert org.name in processors and reg.grower.name not in processors
    elsewhere = client.get(f"/app/admin/organisations?commune={OUTSIDE}", headers=VI).text
    assert org.name not in elsewhere and "Không có tổ chức nào phù hợp." in elsewhere


def test_a_taken_tax_code_and_a_malformed_one_are_refused_in_vietnamese(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    taken = client.post("/app/admin/organisations/new", data=org_form(client, tax_code=reg.grower.tax_code), headers=VI)
    assert (
        taken.status_code == 422 and "Đã có tổ chức với mã số thuế này." in taken.text and 'role="alert"' in taken.text
    )
    bad = client.post("/app/admin/organisations/new", data=org_form(client, tax_code="12345"), headers=VI)
    assert bad.status_code == 422 and 'id="e-tax_code"' in bad.text
    assert session.exec(select(Organisation).where(Organisation.name == "Công ty Nhãn sấy Phố Hiến (thử)")).all() == []


def test_an_organisation_sent_twice_is_registered_once_and_its_key_with_other_values_is_refused(
    client: TestClient, session: Session, reg: Registry
) -> None:
    as_user(client, reg.admin)
    data = org_form(client)
    first, again = (
        post(client, "/app/admin/organisations/new", data),
        post(client, "/app/admin/organisations/new", data),
    )
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    other = client.post("/app/admin/organisations/new", headers=VI, data={**data, "tax_code": "0907777777"})
    assert other.status_code == 422 and REUSED in other.text
    assert count(session, Organisation, Organisation.request_key == data["idem"]) == 1
    assert count(session, Organisation, Organisation.tax_code == "0907777777") == 0
