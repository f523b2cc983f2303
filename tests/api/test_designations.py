"""The designation registry over HTTP: public reads, registrar writes, the holder's rights to use."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, snapshot
from trace.access import Role
from trace.events import chain
from trace.events.models import Event, EventType

API = "/api/v1"
LONGAN = {
    "kind": "geographical_indication",
    "name_vi": "Nhãn lồng Hưng Yên",
    "name_en": "Hung Yen longan",
    "registration_number": "00055",
    "decision_number": "186/QĐ-SHTT",
    "decision_date": "2017-01-23",
    "categories": ["longan_fresh"],
    "derived_categories": ["longan_dried"],
    "inherit_rule": "all_inputs",
    "area_former_districts": ["Thành phố Hưng Yên", "Khoái Châu", "Tiên Lữ", "Kim Động"],
}


def _world(session: Session, client: TestClient) -> dict[str, Any]:
    holder = f.org(session, "designation_holder", name="Hội nhãn lồng thử nghiệm")
    admin = headers_for(session, None, Role.ADMIN)
    made = client.post(f"{API}/designations", json={**LONGAN, "holder_organisation_id": holder.id}, headers=admin)
    assert made.status_code == 201, made.text
    coop = f.org(session)
    world = {
        "holder": holder,
        "admin": admin,
        "gi": made.json(),
        "coop": coop,
        "holder_headers": headers_for(session, holder, Role.ORG_ADMIN),
        "coop_headers": headers_for(session, coop, Role.ORG_ADMIN),
        "area": f.location(session, coop, commune_code="12070", former_commune_code="12208"),
    }
    session.commit()  # a refused request rolls back to here, not past the world
    return world


def test_anyone_reads_the_registry_without_logging_in(session: Session, client: TestClient) -> None:
    w = _world(session, client)
    # when
    listed = client.get(f"{API}/designations")
    one = client.get(f"{API}/designations/{w['gi']['id']}")
    # then
    assert listed.status_code == 200 and one.status_code == 200
    body = one.json()
    assert [d["id"] for d in listed.json()] == [body["id"]]
    assert (body["name_vi"], body["registration_number"], body["decision_number"]) == (
        "Nhãn lồng Hưng Yên",
        "00055",
        "186/QĐ-SHTT",
    )
    assert body["holder_name"] == "Hội nhãn lồng thử nghiệm" and body["holder_organisation_id"] == w["holder"].id
    assert "12208" in body["area_former_communes"] and "12070" in body["area_communes"]
    assert "Xã Hoàn Long" in body["area_commune_names"]
    assert client.get(f"{API}/designations", params={"category": "chicken_live"}).json() == []
    assert_problem(client.get(f"{API}/designations/999999"), 404)


@pytest.mark.parametrize("who", ["nobody", "cooperative_admin", "holder_admin", "inspector"])
def test_only_the_registrar_writes_the_registry(session: Session, client: TestClient, who: str) -> None:
    w = _world(session, client)
    headers = {
        "nobody": {},
        "cooperative_admin": w["coop_headers"],
        "holder_admin": w["holder_headers"],
        "inspector": headers_for(session, f.org(session, "authority"), Role.INSPECTOR),
    }[who]
    session.commit()
    before = snapshot(session)
    status = 401 if who == "nobody" else 403
    created = client.post(
        f"{API}/designations",
        headers=headers,
        json={**LONGAN, "name_vi": "Nhãn khác", "holder_organisation_id": w["holder"].id},
    )
    patched = client.patch(f"{API}/designations/{w['gi']['id']}", json={"name_vi": "Nhãn khác"}, headers=headers)
    assert_problem(created, status) and assert_problem(patched, status)
    assert snapshot(session) == before


def test_the_admin_patches_a_designation_and_bad_areas_are_refused(session: Session, client: TestClient) -> None:
    w = _world(session, client)
    url = f"{API}/designations/{w['gi']['id']}"
    changed = client.patch(url, json={"logo_url": "https://example.com/nhan.svg"}, headers=w["admin"])
    assert changed.status_code == 200 and changed.json()["logo_url"] == "https://example.com/nhan.svg"
    assert changed.json()["area_former_communes"] == w["gi"]["area_former_communes"]
    before = snapshot(session)
    assert_problem(
        client.patch(url, json={"area_former_districts": ["Huyện Ma"]}, headers=w["admin"]),
        422,
        "unknown_former_district",
    )
    assert_problem(
        client.post(
            f"{API}/designations",
            headers=w["admin"],
            json={
                **LONGAN,
                "name_vi": "Nhãn mới",
                "holder_organisation_id": w["holder"].id,
                "area_communes": ["12070"],
            },
        ),
        422,
        "area_mixed",
    )
    assert_problem(
        client.post(
            f"{API}/designations", headers=w["admin"], json={**LONGAN, "holder_organisation_id": w["holder"].id}
        ),
        409,
        "designation_exists",
    )
    assert snapshot(session) == before


def _grant(client: TestClient, w: dict[str, Any], **extra: Any) -> Any:
    body = {
        "organisation_id": w["coop"].id,
        "decision_number": "01/QĐ-HNL",
        "valid_from": "2026-01-01",
        "valid_to": "2028-12-31",
        "annual_label_quota": 20000,
        "location_ids": [w["area"].id],
        **extra,
    }
    return client.post(f"{API}/designations/{w['gi']['id']}/rights", json=body, headers=w["holder_headers"])


def test_the_holder_grants_suspends_reinstates_and_revokes_a_right(session: Session, client: TestClient) -> None:
    w = _world(session, client)
    granted = _grant(client, w)
    assert granted.status_code == 201, granted.text
    right = granted.json()
    assert right["status"] == "active" and right["annual_label_quota"] == 20000
    for action, status in (("suspend", "suspended"), ("reinstate", "active"), ("revoke", "revoked")):
        answer = client.post(
            f"{API}/rights/{right['id']}/{action}", json={"reason": f"Lý do: {action}"}, headers=w["holder_headers"]
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == status and answer.json()["status_reason"] == f"Lý do: {action}"
    assert_problem(
        client.post(f"{API}/rights/{right['id']}/reinstate", json={"reason": "Thử lại"}, headers=w["holder_headers"]),
        409,
        "right_revoked",
    )
    events = session.exec(
        select(Event)
        .where(Event.organisation_id == w["holder"].id, Event.type == EventType.RIGHT)
        .order_by(col(Event.seq))
    ).all()
    assert [e.payload["action"] for e in events] == ["grant", "suspend", "reinstate", "revoke"]
    assert chain.verify(session=session, organisation_id=w["holder"].id).ok


@pytest.mark.parametrize("who", ["nobody", "grantee", "admin", "other_holder"])
def test_only_the_holder_changes_rights(session: Session, client: TestClient, who: str) -> None:
    w = _world(session, client)
    right = _grant(client, w).json()
    headers = {
        "nobody": {},
        "grantee": w["coop_headers"],
        "admin": w["admin"],
        "other_holder": headers_for(session, f.org(session, "designation_holder"), Role.ORG_ADMIN),
    }[who]
    status = 401 if who == "nobody" else 403
    # another designation's holder is told it is not this designation's holder (not a lot's not_holder)
    code = "not_designation_holder" if who == "other_holder" else None
    session.commit()
    before = snapshot(session)
    assert_problem(
        client.post(
            f"{API}/designations/{w['gi']['id']}/rights",
            headers=headers,
            json={"organisation_id": w["coop"].id, "decision_number": "02/QĐ", "valid_from": "2026-01-01"},
        ),
        status,
        code,
    )
    assert_problem(
        client.post(f"{API}/rights/{right['id']}/revoke", json={"reason": "Không được phép"}, headers=headers),
        status,
        code,
    )
    assert snapshot(session) == before


def test_bad_grants_and_changes_get_a_reason_and_write_nothing(session: Session, client: TestClient) -> None:
    w = _world(session, client)
    outside = f.location(session, w["coop"], commune_code="12826", former_commune_code="12826")
    right = _grant(client, w).json()
    session.commit()
    before = snapshot(session)
    assert_problem(_grant(client, w, decision_number="02/QĐ", location_ids=[outside.id]), 422, "area_outside")
    assert_problem(_grant(client, w, decision_number="03/QĐ", valid_to="2025-01-01"), 422, "invalid_validity")
    assert_problem(_grant(client, w), 409, "right_exists")
    assert_problem(_grant(client, w, decision_number="04/QĐ", annual_label_quota=-1), 422)
    for blank in ("", "    "):
        assert_problem(
            client.post(f"{API}/rights/{right['id']}/suspend", json={"reason": blank}, headers=w["holder_headers"]), 422
        )
    assert_problem(_grant(client, w, decision_number="   "), 422)
    assert_problem(
        client.post(f"{API}/rights/999999/suspend", json={"reason": "Không có"}, headers=w["holder_headers"]), 404
    )
    assert_problem(client.get(f"{API}/designations/999999/rights"), 404)
    assert snapshot(session) == before


def test_the_public_list_of_rights_shows_who_and_hides_the_quota(session: Session, client: TestClient) -> None:
    w = _world(session, client)
    _grant(client, w)
    url = f"{API}/designations/{w['gi']['id']}/rights"
    public = client.get(url)
    stranger = client.get(url, headers=headers_for(session, f.org(session), Role.ORG_ADMIN))
    grantee = client.get(url, headers=w["coop_headers"])
    holder = client.get(url, headers=w["holder_headers"])
    assert public.status_code == 200
    [row] = public.json()
    assert (row["grantee_name"], row["decision_number"], row["valid_from"], row["valid_to"], row["status"]) == (
        w["coop"].name,
        "01/QĐ-HNL",
        "2026-01-01",
        "2028-12-31",
        "active",
    )
    assert row["annual_label_quota"] is None and row["location_ids"] is None
    assert stranger.json()[0]["annual_label_quota"] is None
    assert grantee.json()[0]["annual_label_quota"] == holder.json()[0]["annual_label_quota"] == 20000
    assert client.get(url, params={"status": "revoked"}).json() == []
