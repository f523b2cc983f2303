"""Locations, products and communes, over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for
from trace.identifiers import gs1_check_digit, is_valid_gtin

API = "/api/v1"


def _area(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "growing_area",
        "name": "Vườn nhãn thử",
        "code": f"VN-HY-T{f.tax_code()[-6:]}",
        "commune_code": f.COMMUNE,
        **extra,
    }


def _gtin(body12: str) -> str:
    return body12 + gs1_check_digit(body12)


def test_member_registers_a_growing_area_with_its_old_commune(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    token = headers_for(session, coop)
    session.commit()
    response = client.post(
        f"{API}/locations",
        headers=token,
        json=_area(former_commune_code="12208", latitude=20.83, longitude=106.03, area_ha=2.5),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["organisation_id"] == coop.id and body["version"] == 1
    assert body["commune_name"] == "Xã Hoàn Long" and "Đông Tảo" in body["former_commune_name"]
    assert client.get(f"{API}/locations/{body['id']}", headers=token).json()["code"] == body["code"]


def test_a_location_sent_twice_with_the_same_idempotency_key_is_registered_once(
    client: TestClient, session: Session
) -> None:
    coop, other = f.org(session), f.org(session)
    token, their_token = headers_for(session, coop), headers_for(session, other)
    session.commit()
    body, key = _area(), {"Idempotency-Key": "new-area-form-1"}
    first = client.post(f"{API}/locations", headers={**token, **key}, json=body)
    again = client.post(f"{API}/locations", headers={**token, **key}, json=body)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert [
        x["code"] for x in client.get(f"{API}/locations", headers=token, params={"organisation_id": coop.id}).json()
    ] == [body["code"]]
    # the same key for another place is a client's mistake; without the key, the code is simply taken
    assert_problem(
        client.post(f"{API}/locations", headers={**token, **key}, json=_area()), 409, "idempotency_key_reused"
    )
    assert_problem(client.post(f"{API}/locations", headers=token, json=body), 409, "location_code_taken")
    # another organisation's key space is its own
    theirs = client.post(f"{API}/locations", headers={**their_token, **key}, json=_area())
    assert theirs.status_code == 201 and theirs.json()["organisation_id"] == other.id


def test_location_rules_are_enforced(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    token = headers_for(session, coop)
    taken = f.location(session, coop)
    session.commit()
    cases = [
        (_area(code=None), 422, "planting_code_required"),
        (_area(commune_code="99999"), 422, "unknown_commune"),
        (_area(former_commune_code="99999"), 422, "unknown_former_commune"),
        (_area(former_commune_code="11950"), 422, "former_commune_mismatch"),  # Lam Sơn became 11983
        (_area(code=taken.code), 409, "location_code_taken"),
        (_area(latitude=91), 422, "validation_error"),
        (_area(area_ha=-1), 422, "validation_error"),
        (_area(kind="moon_base"), 422, "validation_error"),
        (_area(name="x" * 201), 422, "validation_error"),
    ]
    for body, status, code in cases:
        assert_problem(client.post(f"{API}/locations", headers=token, json=body), status, code)


def test_locations_list_filters_by_organisation_and_kind(client: TestClient, session: Session) -> None:
    coop, other = f.org(session), f.org(session)
    area, shed = f.location(session, coop), f.location(session, coop, "warehouse")
    f.location(session, other)
    token = headers_for(session, coop)
    session.commit()
    mine = client.get(f"{API}/locations", headers=token, params={"organisation_id": coop.id}).json()
    assert {x["id"] for x in mine} == {area.id, shed.id}
    sheds = client.get(
        f"{API}/locations", headers=token, params={"organisation_id": coop.id, "kind": "warehouse"}
    ).json()
    assert [x["id"] for x in sheds] == [shed.id]
    assert_problem(client.get(f"{API}/locations", headers=token, params={"limit": 0}), 422, "validation_error")
    assert_problem(client.get(f"{API}/locations/987654", headers=token), 404, "not_found")


def test_location_edit_is_a_new_version(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    area = f.location(session, coop)
    token = headers_for(session, coop)
    session.commit()
    response = client.patch(f"{API}/locations/{area.id}", headers=token, json={"name": "Vườn nhãn đổi tên"})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2 and response.json()["name"] == "Vườn nhãn đổi tên"
    assert_problem(
        client.patch(f"{API}/locations/{area.id}", headers=token, json={"commune_code": "99999"}),
        422,
        "unknown_commune",
    )
    assert_problem(client.patch(f"{API}/locations/987654", headers=token, json={"name": "abc"}), 404, "not_found")


def test_product_with_its_own_gtin_and_duplicates(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    token = headers_for(session, coop)
    session.commit()
    gtin = _gtin("952000000123")
    body = {"name_vi": "Nhãn lồng tươi thử", "category": "longan_fresh", "unit": "kg", "gtin": gtin}
    created = client.post(f"{API}/products", headers=token, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["gtin"] == "0" + gtin and created.json()["gtin_assigned"] is False
    # the same GTIN in its 14-digit form is the same product
    assert_problem(client.post(f"{API}/products", headers=token, json={**body, "gtin": "0" + gtin}), 409, "gtin_taken")
    wrong_digit = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
    assert_problem(
        client.post(f"{API}/products", headers=token, json={**body, "gtin": wrong_digit}), 422, "gtin_check_digit"
    )
    assert_problem(
        client.post(f"{API}/products", headers=token, json={**body, "gtin": "95200A000123"}), 422, "gtin_not_digits"
    )
    assert_problem(
        client.post(f"{API}/products", headers=token, json={**body, "gtin": None, "unit": "barrel"}),
        422,
        "unknown_unit",
    )
    assert_problem(
        client.post(f"{API}/products", headers=token, json={**body, "package_size": "-1"}), 422, "validation_error"
    )


def test_product_without_gtin_gets_a_valid_one_assigned(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    token = headers_for(session, coop)
    session.commit()
    body = {"name_vi": "Mật ong hoa nhãn thử", "category": "honey", "unit": "piece"}
    first = client.post(f"{API}/products", headers=token, json=body).json()
    second = client.post(f"{API}/products", headers=token, json=body).json()
    assert first["gtin_assigned"] is True and is_valid_gtin(first["gtin"]) and is_valid_gtin(second["gtin"])
    assert first["gtin"] != second["gtin"]


def test_products_list_get_and_edit(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    fresh, dried = f.product(session, coop), f.product(session, coop, category="longan_dried")
    token = headers_for(session, coop)
    session.commit()
    listed = client.get(
        f"{API}/products", headers=token, params={"organisation_id": coop.id, "category": "longan_dried"}
    ).json()
    assert [p["id"] for p in listed] == [dried.id]
    assert client.get(f"{API}/products/{fresh.id}", headers=token).json()["gtin"] == fresh.gtin
    edited = client.patch(f"{API}/products/{fresh.id}", headers=token, json={"name_en": "Fresh longan"})
    assert edited.status_code == 200 and edited.json()["version"] == 2 and edited.json()["name_en"] == "Fresh longan"
    assert_problem(client.get(f"{API}/products/987654", headers=token), 404, "not_found")
    assert_problem(
        client.patch(f"{API}/products/{fresh.id}", headers=token, json={"category": "x"}), 422, "validation_error"
    )


def test_communes_are_public_and_searchable_without_diacritics(client: TestClient) -> None:
    everything = client.get(f"{API}/communes")
    assert everything.status_code == 200
    assert len(everything.json()) == 104  # the new Hưng Yên's communes and wards
    found = client.get(f"{API}/communes", params={"q": "hoan long"}).json()
    assert {"code": "12070", "name": "Xã Hoàn Long", "kind": "xa"} in found
    one = client.get(f"{API}/communes/12070").json()
    assert "Xã Đông Tảo" in {x["name"] for x in one["former"]}
    assert_problem(client.get(f"{API}/communes/99999"), 404, "not_found")
    assert_problem(client.get(f"{API}/communes", params={"q": "x" * 101}), 422, "validation_error")
