"""Operator endpoints: the log verification, the health check and the API's own documentation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from api.errors import PROBLEM_RESPONSES
from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, party
from trace.access import Role
from trace.config import get_settings

API = "/api/v1"


def test_admin_verifies_a_clean_log(client: TestClient, session: Session) -> None:
    coop, member = party(session)
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    admin = headers_for(session, None, Role.ADMIN)
    f.harvest(session, coop)
    f.harvest(session, coop)
    session.commit()
    report = client.get(f"{API}/admin/verify-log", headers=admin)
    assert report.status_code == 200, report.text
    assert report.json()["ok"] is True and report.json()["broken_event_id"] is None
    own = client.get(f"{API}/admin/verify-log", headers=admin, params={"organisation_id": coop.id}).json()
    assert own == {**own, "ok": True, "organisations": 1, "events": 2}
    assert_problem(client.get(f"{API}/admin/verify-log", headers=member), 403, "admin_only")
    assert_problem(client.get(f"{API}/admin/verify-log", headers=inspector), 403, "admin_only")
    assert_problem(client.get(f"{API}/admin/verify-log"), 401, "no_credentials")


def test_healthz_reports_database_and_embedded_broker(client: TestClient, engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYTRACE_REDIS_URL", raising=False)
    monkeypatch.setenv("HYTRACE_REDIS_URL", "")  # a .env file must not bring one in either
    get_settings.cache_clear()  # the client's start-up already read the settings
    client.app.state.engine = engine  # type: ignore[attr-defined]  # the test database, not the configured one
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "embedded"}


def test_healthz_reports_an_unreachable_broker(client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    get_settings.cache_clear()
    client.app.state.engine = engine  # type: ignore[attr-defined]
    body = client.get("/healthz").json()
    assert body["status"] == "degraded" and body["broker"].startswith("error") and body["database"] == "ok"


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    assert client.get("/docs").status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/events/harvest" in paths and "/api/v1/lots/{lot_id}/trace.csv" in paths
    assert "Problem" in schema.json()["components"]["schemas"]


def test_every_operation_documents_its_problem_responses(client: TestClient) -> None:
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            for status in PROBLEM_RESPONSES:
                content = operation["responses"][str(status)]["content"]
                # The label URIs answer people too: their errors are pages for browsers.
                expected = ["application/problem+json", "text/html"] if path.startswith("/01/") and status in (404, 422) else [
                    "application/problem+json"]
                assert sorted(content) == expected, (method, path, status)
