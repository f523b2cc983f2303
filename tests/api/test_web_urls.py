"""Addresses we hand on to others (a product's image_url, a designation's logo_url, a certificate's
document_url) are https:// web addresses (http:// too in development): anything a browser would run is
refused with the field named, and one written straight into the database is never handed on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, snapshot
from tests.trace.test_origin import Chain, build_chain
from trace.access import Role
from trace.certifications import CertificationCreate, CertificationKind, record_certification
from trace.platform.config import get_settings
from trace.web_urls import url_problem

API = "/api/v1"
GOOD = "https://anh.example.vn/san-pham/nhan-long.png"
BAD = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    " https://anh.example.vn/x.png",  # a leading space
    "https://anh.example.vn/x.png\n",
    "\x00https://anh.example.vn/x.png",
    "https:///x.png",  # no host
    "https:anh.example.vn/x.png",
    "//anh.example.vn/x.png",  # no scheme
    "https:\\\\evil.example/x.png",  # a browser reads the backslashes as slashes
    "https://anh.example.vn@evil.example/x.png",  # who the host is, hidden
    "https://anh.example.vn:port/x.png",
    "ftp://anh.example.vn/x.png",
    "http://anh.example.vn/x.png",  # plain http outside development
    "https://anh.example.vn/" + "a" * 500,  # longer than the column
]
LONGAN = {
    "kind": "geographical_indication",
    "name_vi": "Nhãn lồng Hưng Yên",
    "registration_number": "00055",
    "categories": ["longan_fresh"],
    "area_former_districts": ["Khoái Châu"],
}


def _cert_body(org_id: int, field: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "vietgap",
        "number": "VG-HY-0042",
        "issuer": "Tổ chức chứng nhận (dữ liệu mẫu)",
        "organisation_id": org_id,
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        **field,
    }


def _sends(session: Session, client: TestClient) -> list[tuple[str, Any]]:
    """Every request that sets one of the addresses, as (field, send(value) -> response)."""
    coop = f.org(session)
    coop_h = headers_for(session, coop, Role.ORG_ADMIN)
    admin = headers_for(session, None, Role.ADMIN)
    holder = f.org(session, "designation_holder", name="Hội nhãn lồng thử nghiệm")
    product = f.product(session, coop)
    gi = client.post(f"{API}/designations", headers=admin, json={**LONGAN, "holder_organisation_id": holder.id})
    assert gi.status_code == 201, gi.text
    session.commit()  # a refused request rolls back to here
    gi_id = gi.json()["id"]
    new_product = {"name_vi": "Nhãn lồng sấy thử", "category": "longan_dried", "unit": "kg"}
    return [
        (
            "image_url",
            lambda v: client.post(f"{API}/products", headers=coop_h, json={**new_product, "image_url": v}),
        ),
        (
            "image_url",
            lambda v: client.patch(f"{API}/products/{product.id}", headers=coop_h, json={"image_url": v}),
        ),
        (
            "logo_url",
            lambda v: client.post(
                f"{API}/designations",
                headers=admin,
                json={
                    **LONGAN,
                    "name_vi": "Nhãn khác",
                    "holder_organisation_id": holder.id,
                    "logo_url": v,
                },
            ),
        ),
        (
            "logo_url",
            lambda v: client.patch(f"{API}/designations/{gi_id}", headers=admin, json={"logo_url": v}),
        ),
        (
            "document_url",
            lambda v: client.post(
                f"{API}/certifications",
                headers=coop_h,
                json=_cert_body(coop.id, {"document_url": v}),
            ),
        ),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("value", BAD)
def test_an_address_that_is_not_https_is_refused_naming_the_field_and_nothing_is_written(
    client: TestClient, session: Session, value: str
) -> None:
    sends = _sends(session, client)
    before = snapshot(session)
    for field, send in sends:
        response: httpx.Response = send(value)
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["loc"][-1] == field, body
    assert snapshot(session) == before


def test_an_https_address_is_taken_and_given_back(client: TestClient, session: Session) -> None:
    sends = _sends(session, client)
    for field, send in sends:
        response = send(GOOD)
        assert response.status_code in (200, 201), response.text
        assert response.json()[field] == GOOD


@pytest.mark.parametrize(("environment", "taken"), [("development", True), ("test", False), ("production", False)])
def test_plain_http_is_taken_only_in_development(
    client: TestClient,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    environment: str,
    taken: bool,
) -> None:
    sends = _sends(session, client)
    monkeypatch.setenv("HYTRACE_ENVIRONMENT", environment)  # read when the value is checked, not at import
    get_settings.cache_clear()
    for _, send in sends:
        assert (send("http://127.0.0.1:8000/anh.png").status_code in (200, 201)) is taken


def test_the_same_rule_holds_in_the_domain_and_for_odd_spellings() -> None:
    for value in BAD:
        assert url_problem(value) is not None, value
    assert url_problem("http://anh.example.vn/x.png", http=True) is None
    for value in (
        GOOD,
        "HTTPS://Anh.Example.VN/x.png",
        "https://anh.example.vn:8443/ảnh.png",
        "https://[2001:db8::1]/x.png",
        "https://xn--nhn-lng-bta.vn/?q=1#top",
    ):
        assert url_problem(value) is None, value


@pytest.fixture
def chain(session: Session) -> Chain:
    c = build_chain(session)
    session.commit()
    return c


def test_an_address_written_straight_into_the_database_is_never_handed_on(
    client: TestClient, session: Session, chain: Chain
) -> None:
    # given a product, a designation and a certificate whose addresses were edited in the database itself
    # (rows from before this check, or an insider) to something a browser would run
    admin = headers_for(session, None, Role.ADMIN)
    holder = f.org(session, "designation_holder", name="Hội nhãn lồng thử nghiệm")
    gi = client.post(
        f"{API}/designations",
        headers=admin,
        json={**LONGAN, "name_vi": "Nhãn lồng thử nghiệm", "holder_organisation_id": holder.id},
    )
    assert gi.status_code == 201, gi.text
    day = chain.lot.production_date
    cert = record_certification(
        session=session,
        actor=f.ADMIN,
        data=CertificationCreate(
            kind=CertificationKind.VIETGAP,
            number="VG-HY-0099",
            issuer="Tổ chức chứng nhận (dữ liệu mẫu)",
            organisation_id=chain.lot.producer_organisation_id,
            valid_from=day - timedelta(days=30),
            valid_to=day + timedelta(days=300),
            document_url=GOOD,
        ),
    )
    evil = "javascript:alert(document.domain)"
    for table, column, row_id in (
        ("product", "image_url", chain.lot.product_id),
        ("designation", "logo_url", gi.json()["id"]),
        ("certification", "document_url", cert.id),
    ):
        session.execute(
            text(f"UPDATE {table} SET {column} = :evil WHERE id = :id"),
            {"evil": evil, "id": row_id},
        )
    session.commit()
    session.expire_all()
    # when anyone reads them: the public registry, the catalogue, the certificate, the label's pages
    path = f"/01/{chain.lot.gtin}/10/{quote(chain.lot.lot_code, safe='')}/21/{chain.unit.serial}"
    answers = {
        "registry": client.get(f"{API}/designations"),
        "designation": client.get(f"{API}/designations/{gi.json()['id']}"),
        "product": client.get(f"{API}/products/{chain.lot.product_id}", headers=admin),
        "products": client.get(f"{API}/products", headers=admin),
        "certificate": client.get(f"{API}/certifications/{cert.id}", headers=admin),
        "product page": client.get(f"/01/{chain.lot.gtin}", headers={"accept": "text/html"}),
        "product json": client.get(f"/01/{chain.lot.gtin}", headers={"accept": "application/json"}),
        "unit page": client.get(path, headers={"accept": "text/html"}),
        "unit json": client.get(path, headers={"accept": "application/json"}),
    }
    # then every answer is whole, and none carries the address
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.status_code, response.text[:300])
        assert "javascript" not in response.text.lower(), name
    assert answers["designation"].json()["logo_url"] is None
    assert answers["product"].json()["image_url"] is None
    assert answers["certificate"].json()["document_url"] is None
    # and an edit of another field keeps working (the stored address is not re-checked into a 500)
    renamed = client.patch(f"{API}/designations/{gi.json()['id']}", headers=admin, json={"name_en": "Hung Yen longan"})
    assert renamed.status_code == 200 and renamed.json()["logo_url"] is None
