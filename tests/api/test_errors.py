"""Every failure is an RFC 9457 problem document with the right status, never a 500
(the test client re-raises server errors, so a 500 would fail the test outright)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, count, party
from trace.events.models import Event

API = "/api/v1"


@pytest.fixture
def coop(session: Session) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """A cooperative member's headers and a valid harvest body to spoil."""
    org, headers = party(session)
    product, area = f.product(session, org), f.location(session, org)
    session.commit()
    return org, headers, {"product_id": product.id, "lot_code": "OK-1", "quantity": "10", "location_id": area.id}


SPOILED: dict[str, tuple[dict[str, Any], str]] = {
    "quantity is text": ({"quantity": "mười"}, "validation_error"),
    "quantity is zero": ({"quantity": "0"}, "validation_error"),
    "quantity is negative": ({"quantity": "-5"}, "validation_error"),
    "quantity has too many digits": ({"quantity": "1" * 16}, "validation_error"),
    "quantity below a gram": ({"quantity": "1.0001"}, "validation_error"),
    "quantity is not a number": ({"quantity": "NaN"}, "validation_error"),
    "product id is text": ({"product_id": "một"}, "validation_error"),
    "product id is a float": ({"product_id": 1.5}, "validation_error"),
    "product id beyond 64 bits": ({"product_id": 2**64}, "value_out_of_range"),
    "lot code has a space": ({"lot_code": "LO 1"}, "lot_code_charset"),
    "lot code has Đ": ({"lot_code": "ĐT-01"}, "lot_code_charset"),
    "lot code is too long": ({"lot_code": "L" * 21}, "lot_code_length"),
    "lot code is empty": ({"lot_code": ""}, "lot_code_length"),
    "note is too long": ({"note": "n" * 1001}, "validation_error"),
    "event time is not a time": ({"event_time": "hôm qua"}, "validation_error"),
    "event time overflows UTC": ({"event_time": "0001-01-01T00:30:00+01:00"}, "value_out_of_range"),
    "event time is implausibly old": ({"event_time": "1999-12-31T23:00:00+07:00"}, "event_too_old"),
    "unknown input kind": (
        {"inputs_used": [{"kind": "magic", "name": "x", "applied_on": "2025-01-01"}]},
        "validation_error",
    ),
    "pre-harvest interval over a year": (
        {"inputs_used": [{"kind": "other", "name": "x", "applied_on": "2025-01-01", "pre_harvest_interval_days": 366}]},
        "validation_error",
    ),
    "too many business documents": (
        {"biz_transactions": [{"type": "inv", "id": str(i)} for i in range(21)]},
        "validation_error",
    ),
    "unknown document type": ({"biz_transactions": [{"type": "bribe", "id": "1"}]}, "validation_error"),
}


@pytest.mark.parametrize("name", list(SPOILED))
def test_invalid_harvest_input_is_a_422_problem(client: TestClient, session: Session, coop: Any, name: str) -> None:
    _, headers, body = coop
    change, code = SPOILED[name]
    before = count(session, Event)
    response = client.post(f"{API}/events/harvest", headers=headers, json={**body, **change})
    problem = assert_problem(response, 422, code)
    if code == "validation_error":
        assert problem["errors"] and all({"loc", "msg", "type"} <= set(e) for e in problem["errors"])
    assert count(session, Event) == before


def test_the_unspoiled_body_is_accepted(client: TestClient, coop: Any) -> None:
    _, headers, body = coop
    assert client.post(f"{API}/events/harvest", headers=headers, json=body).status_code == 201


@pytest.mark.parametrize(
    "raw, content_type, status, code",
    [
        (b'{"product_id": 1, "lot_code": ', "application/json", 422, "validation_error"),
        (b"[1, 2, 3]", "application/json", 422, "validation_error"),
        (b"null", "application/json", 422, "validation_error"),
        (b"", "application/json", 422, "validation_error"),
        (b"\xff\xfe\xfd", "application/json", 400, "bad_request"),
        (b"product_id=1", "application/x-www-form-urlencoded", 422, "validation_error"),
    ],
)
def test_malformed_bodies_are_problems(
    client: TestClient, coop: Any, raw: bytes, content_type: str, status: int, code: str
) -> None:
    _, headers, _ = coop
    response = client.post(f"{API}/events/harvest", headers={**headers, "Content-Type": content_type}, content=raw)
    assert_problem(response, status, code)


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/lots/{2**31}",
        f"{API}/lots/{2**70}",
        f"{API}/products/{2**63}",
        f"{API}/events?lot_id={2**40}",
        f"{API}/events?GE_eventTime=0001-01-01T00:00:00%2B05:00",
        f"{API}/lots/not-a-number",
    ],
)
def test_out_of_range_or_malformed_parameters_are_4xx_problems(client: TestClient, coop: Any, path: str) -> None:
    _, headers, _ = coop
    response = client.get(path, headers=headers)
    # An id the database cannot hold is out of range (PostgreSQL INTEGER) or simply unknown (SQLite).
    assert response.status_code in (404, 422), response.text
    assert_problem(response, response.status_code)


def test_domain_errors_map_to_their_statuses(client: TestClient, session: Session, coop: Any) -> None:
    org, headers, body = coop
    other, _ = party(session)
    session.commit()
    assert client.post(f"{API}/events/harvest", headers=headers, json=body).status_code == 201
    assert_problem(client.get(f"{API}/lots"), 401, "no_credentials")
    assert_problem(client.get(f"{API}/organisations/{other.id}/members", headers=headers), 403, "org_admin_only")
    assert_problem(client.get(f"{API}/products/987654", headers=headers), 404, "not_found")
    assert_problem(client.post(f"{API}/events/harvest", headers=headers, json=body), 409, "lot_exists")
    assert_problem(
        client.post(f"{API}/events/harvest", headers=headers, json={**body, "lot_code": "OK-2", "product_id": 987654}),
        422,
        "unknown_product",
    )
    assert org.id != other.id


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    assert_problem(client.get(f"{API}/no-such-thing"), 404, "not_found")
    assert_problem(client.delete(f"{API}/communes"), 405, "method_not_allowed")
    assert_problem(client.put(f"{API}/events/harvest", json={}), 405, "method_not_allowed")


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("path", ["/no-such-page", "/app/login", "/app/lots/abc/def"])
def test_a_browser_at_an_unknown_address_gets_a_page_in_its_language(client: TestClient, path: str) -> None:
    vi = client.get(path, headers={"accept": BROWSER, "accept-language": "vi-VN,vi"})
    assert vi.status_code == 404 and vi.headers["content-type"].startswith("text/html")
    assert "Không tìm thấy trang" in vi.text and '<html lang="vi">' in vi.text and 'href="/check"' in vi.text
    en = client.get(path, headers={"accept": BROWSER, "accept-language": "en-GB,en"})
    assert en.status_code == 404 and "Page not found" in en.text and en.headers["content-language"] == "en"
    # a program asking the same address still gets a problem document
    assert_problem(client.get(path), 404, "not_found")


def test_an_unknown_api_address_is_a_problem_even_for_a_browser(client: TestClient) -> None:
    assert_problem(client.get(f"{API}/no-such-thing", headers={"accept": BROWSER}), 404, "not_found")
    assert_problem(client.get("/epcis/no-such-thing", headers={"accept": BROWSER}), 404, "not_found")


def test_problem_details_name_the_field(client: TestClient, coop: Any) -> None:
    _, headers, body = coop
    problem = assert_problem(
        client.post(f"{API}/events/harvest", headers=headers, json={**body, "quantity": "-1"}), 422, "validation_error"
    )
    assert problem["detail"].startswith("quantity:") and problem["errors"][0]["loc"] == ["body", "quantity"]
    assert problem["instance"] == f"{API}/events/harvest"
