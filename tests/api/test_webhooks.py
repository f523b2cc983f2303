"""Partner webhooks over HTTP: subscribe, list, see deliveries (failed ones too), stop; refusals."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, snapshot
from trace import webhooks
from trace.access import Role
from trace.platform.config import get_settings

API = "/api/v1"
URL = "https://doi-tac.example.vn/hytrace"


@pytest.fixture(autouse=True)
def _attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_WEBHOOK_MAX_ATTEMPTS", "3")
    get_settings.cache_clear()


def test_an_organisation_admin_subscribes_lists_and_stops(client: TestClient, session: Session) -> None:
    grower = f.org(session)
    product = f.product(session, grower)
    admin = headers_for(session, grower, Role.ORG_ADMIN)
    session.commit()
    created = client.post(f"{API}/webhooks", headers=admin, json={"url": URL, "product_id": product.id})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["active"] is True and body["owner_organisation_id"] == grower.id
    listed = client.get(f"{API}/webhooks", headers=admin).json()
    assert [s["id"] for s in listed] == [body["id"]] and "secret" not in listed[0]  # shown once
    assert "secret" not in client.get(f"{API}/webhooks/{body['id']}", headers=admin).json()
    stopped = client.delete(f"{API}/webhooks/{body['id']}", headers=admin)
    assert stopped.status_code == 200 and stopped.json()["active"] is False


def test_failed_deliveries_are_visible_with_their_last_answer(client: TestClient, session: Session) -> None:
    # given a delivery that failed three times
    grower = f.org(session)
    product = f.product(session, grower)
    admin = headers_for(session, grower, Role.ORG_ADMIN)
    session.commit()
    sub = client.post(f"{API}/webhooks", headers=admin, json={"url": URL, "organisation_id": grower.id}).json()
    event_id = f.harvest(session, grower, prod=product).events[0].id
    (delivery_id,) = webhooks.dispatch(session=session)
    for _ in range(3):
        webhooks.record_attempt(session=session, delivery_id=delivery_id, status_code=503)
    session.commit()
    # when
    response = client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=admin, params={"status": "failed"})
    # then
    assert response.status_code == 200, response.text
    [row] = response.json()
    assert (row["id"], row["event_id"], row["status"], row["attempts"], row["last_status_code"], row["last_error"]) == (
        delivery_id,
        event_id,
        "failed",
        3,
        503,
        "HTTP 503",
    )
    assert (
        client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=admin, params={"status": "pending"}).json() == []
    )


def test_another_organisations_events_are_refused_and_nothing_is_written(client: TestClient, session: Session) -> None:
    grower = f.org(session)
    product = f.product(session, grower)
    nosy = headers_for(session, f.org(session), Role.ORG_ADMIN)
    member = headers_for(session, grower)
    province = headers_for(session, None, Role.ADMIN)
    session.commit()
    before = snapshot(session)
    assert_problem(
        client.post(f"{API}/webhooks", headers=nosy, json={"url": URL, "product_id": product.id}),
        403,
        "not_your_events",
    )
    assert_problem(
        client.post(f"{API}/webhooks", headers=nosy, json={"url": URL, "organisation_id": grower.id}),
        403,
        "not_your_events",
    )
    assert_problem(
        client.post(f"{API}/webhooks", headers=member, json={"url": URL, "organisation_id": grower.id}),
        403,
        "org_admin_only",
    )
    assert_problem(client.post(f"{API}/webhooks", json={"url": URL, "organisation_id": grower.id}), 401)
    assert snapshot(session) == before
    # the province administrator may subscribe to anything
    assert (
        client.post(f"{API}/webhooks", headers=province, json={"url": URL, "product_id": product.id}).status_code == 201
    )


def test_bad_subscriptions_are_422(client: TestClient, session: Session) -> None:
    grower = f.org(session)
    admin = headers_for(session, grower, Role.ORG_ADMIN)
    session.commit()
    before = snapshot(session)
    assert_problem(
        client.post(
            f"{API}/webhooks", headers=admin, json={"url": "http://doi-tac.example.vn/h", "organisation_id": grower.id}
        ),
        422,
        "bad_webhook_url",
    )
    assert_problem(client.post(f"{API}/webhooks", headers=admin, json={"url": URL}), 422, "validation_error")
    assert_problem(
        client.post(f"{API}/webhooks", headers=admin, json={"url": URL, "product_id": 1, "organisation_id": grower.id}),
        422,
        "validation_error",
    )
    assert_problem(client.post(f"{API}/webhooks", headers=admin, json={"url": URL, "product_id": 999999}), 404)
    assert snapshot(session) == before


def test_a_subscription_is_only_its_organisations_business(client: TestClient, session: Session) -> None:
    grower = f.org(session)
    admin = headers_for(session, grower, Role.ORG_ADMIN)
    other = headers_for(session, f.org(session), Role.ORG_ADMIN)
    session.commit()
    sub = client.post(f"{API}/webhooks", headers=admin, json={"url": URL, "organisation_id": grower.id}).json()
    assert client.get(f"{API}/webhooks", headers=other).json() == []
    for response in (
        client.get(f"{API}/webhooks/{sub['id']}", headers=other),
        client.delete(f"{API}/webhooks/{sub['id']}", headers=other),
        client.get(f"{API}/webhooks/{sub['id']}/deliveries", headers=other),
    ):
        assert_problem(response, 404)
    assert client.get(f"{API}/webhooks/{sub['id']}", headers=admin).json()["active"] is True
