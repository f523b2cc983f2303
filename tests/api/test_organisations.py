"""Organisations, their versions, administrators, members and API keys, over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, bearer, headers_for
from trace.access import Role

API = "/api/v1"


def _new_org(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "cooperative",
        "name": "HTX Nhãn lồng Hồng Nam thử",
        "tax_code": f.tax_code(),
        "commune_code": f.COMMUNE,
        **extra,
    }


def test_province_admin_onboards_an_organisation(client: TestClient, session: Session) -> None:
    admin = headers_for(session, None, Role.ADMIN)
    session.commit()
    response = client.post(f"{API}/organisations", headers=admin, json=_new_org(gln="9521234000013"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["version"] == 1 and body["active"] is True
    assert body["commune_name"] == "Xã Hoàn Long"
    fetched = client.get(f"{API}/organisations/{body['id']}", headers=admin).json()
    assert fetched["tax_code"] == body["tax_code"]


def test_onboarding_refuses_duplicates_bad_codes_and_non_admins(client: TestClient, session: Session) -> None:
    # given
    existing = f.org(session)
    admin = headers_for(session, None, Role.ADMIN)
    member = headers_for(session, existing)
    session.commit()
    # then
    assert_problem(
        client.post(f"{API}/organisations", headers=admin, json=_new_org(tax_code=existing.tax_code)),
        409,
        "tax_code_taken",
    )
    assert_problem(
        client.post(f"{API}/organisations", headers=admin, json=_new_org(commune_code="99999")), 422, "unknown_commune"
    )
    assert_problem(
        client.post(f"{API}/organisations", headers=admin, json=_new_org(tax_code="12345abcde")),
        422,
        "validation_error",
    )
    assert_problem(
        client.post(f"{API}/organisations", headers=admin, json=_new_org(kind="bank")), 422, "validation_error"
    )
    assert_problem(
        client.post(f"{API}/organisations", headers=admin, json=_new_org(gln="9521234000014")), 422, "gln_check_digit"
    )
    assert_problem(client.post(f"{API}/organisations", headers=member, json=_new_org()), 403, "admin_only")


def test_directory_filters_and_hides_personal_names(client: TestClient, session: Session) -> None:
    # given a farm household without consent and a cooperative
    farm = f.org(session, "farm", name="Nguyễn Văn Thử", contact_person="Nguyễn Văn Thử")
    coop = f.org(session, name="HTX Gà Đông Tảo thử", contact_person="Trần Thị Mẫu")
    outsider = headers_for(session, f.org(session, "processor"))
    own = headers_for(session, farm)
    session.commit()
    # when an outsider lists farms
    farms = client.get(f"{API}/organisations", headers=outsider, params={"kind": "farm", "limit": 500}).json()
    # then the household's name and contact person are withheld (Decree 13/2023)
    shown = next(o for o in farms if o["id"] == farm.id)
    assert shown["name"] != "Nguyễn Văn Thử" and shown["contact_person"] is None
    assert all(o["kind"] == "farm" for o in farms)
    assert client.get(f"{API}/organisations/{coop.id}", headers=outsider).json()["contact_person"] is None
    # the household itself sees its own data
    assert client.get(f"{API}/organisations/{farm.id}", headers=own).json()["name"] == "Nguyễn Văn Thử"
    found = client.get(f"{API}/organisations", headers=outsider, params={"q": "Gà Đông Tảo"}).json()
    assert [o["id"] for o in found] == [coop.id]


def test_unknown_organisation_is_404(client: TestClient, session: Session) -> None:
    token = headers_for(session, f.org(session))
    session.commit()
    assert_problem(client.get(f"{API}/organisations/987654", headers=token), 404, "not_found")


def test_org_admin_edits_as_a_new_version_and_sees_history(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    admin = headers_for(session, coop, Role.ORG_ADMIN)
    member = headers_for(session, coop)
    session.commit()
    patched = client.patch(f"{API}/organisations/{coop.id}", headers=admin, json={"address": "Thôn Thử, Hoàn Long"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2 and patched.json()["address"] == "Thôn Thử, Hoàn Long"
    versions = client.get(f"{API}/organisations/{coop.id}/versions", headers=admin).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["data"]["address"] != "Thôn Thử, Hoàn Long"
    assert_problem(
        client.patch(f"{API}/organisations/{coop.id}", headers=member, json={"address": "x"}), 403, "org_admin_only"
    )
    assert_problem(
        client.patch(f"{API}/organisations/{coop.id}", headers=admin, json={"commune_code": "00000"}),
        422,
        "unknown_commune",
    )


def test_gln_of_another_organisation_is_a_conflict(client: TestClient, session: Session) -> None:
    f.org(session, gln="9521234000013")
    coop = f.org(session)
    admin = headers_for(session, coop, Role.ORG_ADMIN)
    session.commit()
    assert_problem(
        client.patch(f"{API}/organisations/{coop.id}", headers=admin, json={"gln": "9521234000013"}), 409, "gln_taken"
    )


def test_province_admin_creates_the_first_administrator(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    admin = headers_for(session, None, Role.ADMIN)
    org_admin = headers_for(session, coop, Role.ORG_ADMIN)
    session.commit()
    created = client.post(
        f"{API}/organisations/{coop.id}/administrators",
        headers=admin,
        json={"email": "chu.nhiem@example.com", "full_name": "Chủ nhiệm HTX", "role": "member"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["user"]["role"] == "org_admin" and len(created.json()["token"]) >= 32
    again = client.post(
        f"{API}/organisations/{coop.id}/administrators",
        headers=admin,
        json={"email": "CHU.NHIEM@example.com", "full_name": "Trùng"},
    )
    assert_problem(again, 409, "email_taken")
    assert_problem(
        client.post(
            f"{API}/organisations/{coop.id}/administrators",
            headers=org_admin,
            json={"email": "x@example.com", "full_name": "X"},
        ),
        403,
        "admin_only",
    )


def test_members_are_managed_by_their_administrators(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    admin_user, admin_token = f.user(session, coop, Role.ORG_ADMIN, password="")
    member_user, member_token = f.user(session, coop, password="")
    admin, member = bearer(admin_token), bearer(member_token)
    session.commit()
    listed = client.get(f"{API}/organisations/{coop.id}/members", headers=admin).json()
    assert {u["id"] for u in listed} == {admin_user.id, member_user.id}
    assert_problem(client.get(f"{API}/organisations/{coop.id}/members", headers=member), 403, "org_admin_only")
    # an organisation administrator cannot appoint inspectors or province administrators
    for role in ("inspector", "admin"):
        response = client.post(
            f"{API}/organisations/{coop.id}/members",
            headers=admin,
            json={"email": f"{role}@example.com", "full_name": "Không được", "role": role},
        )
        assert_problem(response, 403, "role_not_grantable")
    assert_problem(
        client.post(
            f"{API}/organisations/{coop.id}/members", headers=admin, json={"email": "not-an-email", "full_name": "X"}
        ),
        422,
        "validation_error",
    )
    assert_problem(
        client.post(f"{API}/organisations/{coop.id}/members/987654/reset-password", headers=admin), 404, "not_found"
    )
    assert_problem(client.delete(f"{API}/organisations/{coop.id}/members/987654", headers=admin), 404, "not_found")
    assert_problem(client.delete(f"{API}/organisations/{coop.id}/api-keys/987654", headers=admin), 404, "not_found")


def test_province_admin_appoints_an_inspector(client: TestClient, session: Session) -> None:
    authority = f.org(session, "authority", name="Chi cục Quản lý thị trường thử")
    admin = headers_for(session, None, Role.ADMIN)
    session.commit()
    response = client.post(
        f"{API}/organisations/{authority.id}/members",
        headers=admin,
        json={"email": "kiem.soat@example.com", "full_name": "Kiểm soát viên", "role": "inspector"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["user"]["role"] == "inspector"
