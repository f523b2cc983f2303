"""Operator endpoints: the log verification, liveness and readiness, and the API's own documentation."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from sqlmodel import Session

from api.errors import PROBLEM_RESPONSES
from api.routes import health
from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, party
from tests.conftest import ROOT, require
from trace.access import Role
from trace.platform.config import get_settings

API = "/api/v1"


def test_admin_verifies_one_chain_in_the_request_and_the_whole_log_as_a_job(
    client: TestClient, session: Session
) -> None:
    coop, member = party(session)
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    admin = headers_for(session, None, Role.ADMIN)
    f.harvest(session, coop)
    f.harvest(session, coop)
    session.commit()
    own = client.get(f"{API}/admin/verify-log", headers=admin, params={"organisation_id": coop.id})
    assert own.status_code == 200, own.text
    assert own.json() == {**own.json(), "ok": True, "organisations": 1, "events": 2, "broken_event_id": None}
    # the whole log is not verified inside a request: the answer says where to ask
    whole = assert_problem(client.get(f"{API}/admin/verify-log", headers=admin), 422, "verify_is_a_job")
    assert whole["jobs"] == f"{API}/admin/verify-log/jobs"
    queued = client.post(f"{API}/admin/verify-log/jobs", headers=admin)
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["status"] == "queued" and job["progress"] == 0 and job["report"] is None
    assert queued.headers["location"] == f"{API}/admin/verify-log/jobs/{job['id']}"
    assert client.post(f"{API}/admin/verify-log/jobs", headers=admin).json()["id"] == job["id"]  # one at a time
    assert client.get(queued.headers["location"], headers=admin).json() == job
    assert [j["id"] for j in client.get(f"{API}/admin/verify-log/jobs", headers=admin).json()][:1] == [job["id"]]
    assert_problem(client.get(f"{API}/admin/verify-log/jobs/{job['id'] + 1000}", headers=admin), 404)
    for who in (member, inspector):
        assert_problem(client.get(f"{API}/admin/verify-log", headers=who), 403, "admin_only")
        assert_problem(client.post(f"{API}/admin/verify-log/jobs", headers=who), 403, "admin_only")
        assert_problem(client.get(queued.headers["location"], headers=who), 403, "admin_only")
    assert_problem(client.get(f"{API}/admin/verify-log"), 401, "no_credentials")
    assert_problem(client.post(f"{API}/admin/verify-log/jobs"), 401, "no_credentials")


def _ready(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch, redis_url: str = "", path: str = "/readyz"
) -> httpx.Response:
    monkeypatch.setenv("HYTRACE_REDIS_URL", redis_url)  # "" wins over a .env file too
    get_settings.cache_clear()  # the client's start-up already read the settings
    client.app.state.engine = engine  # type: ignore[attr-defined]  # the test database, not the configured one
    return client.get(path)


def _unreachable(where: str, tmp_path: Path) -> Engine:
    if where == "sqlite":  # a file in a folder that does not exist (make_engine would make the folder)
        return create_engine(f"sqlite:///{tmp_path / 'gone' / 'hytrace.db'}")
    return create_engine("postgresql+psycopg://postgres@127.0.0.1:1/hytrace")  # nothing listens on port 1


@pytest.mark.parametrize("path", ["/readyz", "/healthz"])
def test_ready_reports_database_and_embedded_broker(
    client: TestClient, engine: Engine, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = _ready(client, engine, monkeypatch, path=path)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "broker": "embedded"}


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
@pytest.mark.parametrize("path", ["/readyz", "/healthz"])
def test_not_ready_while_the_database_is_unreachable(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str, path: str
) -> None:
    # given a database that cannot be reached, then readiness is 503 (an orchestrator reads only the status)
    response = _ready(client, _unreachable(where, tmp_path), monkeypatch, path=path)
    body = assert_problem(response, 503, "database_unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert body["database"] == "unavailable" and body["broker"] == "embedded" and body["retryable"] is True
    # while the process still lives: a restart would not bring the database back
    assert client.get("/livez").status_code == 200 and client.get("/livez").json() == {"status": "ok"}


def test_ready_answers_soon_when_the_database_never_answers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a "database" that accepts connections and never says a word
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        began = time.monotonic()
        response = _ready(client, create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"), monkeypatch)
        waited = time.monotonic() - began
    # then the probe gives up after its own short timeout, not the pool's 30 s or TCP's minutes
    assert_problem(response, 503, "database_unavailable")
    assert waited < health.TIMEOUT_SECONDS + 5, waited


def test_ready_with_the_broker_down_reports_it_without_failing(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given Redis down: events, reads and sign-in still work; print runs, reports and webhooks wait
    response = _ready(client, engine, monkeypatch, redis_url="redis://127.0.0.1:1/0")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "unavailable"}


def test_ready_with_the_broker_up(client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        require(False, "no Redis server at 127.0.0.1:6379")
    assert _ready(client, engine, monkeypatch, redis_url=url).json() == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
    }


def test_health_checks_are_never_rate_limited(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE", "2")
    monkeypatch.setenv("HYTRACE_REDIS_URL", "")
    get_settings.cache_clear()
    from api.main import create_app

    app = create_app(testing=True)
    app.state.engine = engine
    with TestClient(app) as limited:
        assert [limited.get("/api/v1/communes").status_code for _ in range(3)] == [200, 200, 429]
        for path in ("/livez", "/readyz", "/healthz"):
            assert [limited.get(path).status_code for _ in range(3)] == [200] * 3, path


def test_a_flood_of_readiness_probes_checks_the_database_once(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the paths are not rate limited and each check opens a connection of its own: answers are shared
    checks: list[Engine] = []
    real = health._database

    def slow_check(probed: Engine) -> str:
        checks.append(probed)
        time.sleep(0.2)  # long enough for the other probes to arrive while it runs
        return real(probed)

    monkeypatch.setattr(health, "_database", slow_check)
    monkeypatch.setattr(health, "_cache", {})
    _ready(client, engine, monkeypatch)  # the settings and the engine, as the others will find them
    checks.clear()
    monkeypatch.setattr(health, "_cache", {})
    gate = threading.Barrier(20)

    def probe() -> int:
        gate.wait(timeout=10)
        return client.get("/readyz").status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: probe(), range(20)))
    assert codes == [200] * 20 and len(checks) == 1


def test_a_probe_does_not_wait_for_a_check_under_way(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an answer a little old, and a check of a database that takes long to answer
    assert _ready(client, engine, monkeypatch).status_code == 200
    started, finish = threading.Event(), threading.Event()
    real = health._database

    def hanging_check(probed: Engine) -> str:
        started.set()
        finish.wait(timeout=10)
        return real(probed)

    monkeypatch.setattr(health, "_database", hanging_check)
    monkeypatch.setattr(health, "CACHE_SECONDS", 0.0)
    with ThreadPoolExecutor(1) as pool:
        checking = pool.submit(client.get, "/readyz")
        assert started.wait(timeout=10)
        # when another probe arrives meanwhile, then it has the last answer without holding a thread
        began = time.monotonic()
        assert client.get("/readyz").json()["database"] == "ok"
        assert time.monotonic() - began < 5
        finish.set()
        assert checking.result(timeout=10).status_code == 200


def test_docker_compose_checks_readiness_by_http_status() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    # urlopen raises on a 503, so the check fails exactly when /readyz does
    assert "urlopen('http://127.0.0.1:8000/readyz'" in api_check and "/healthz" not in api_check
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    # whatever waits on a server waits for it to be healthy, not merely started
    for name, service in services.items():
        for needed, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if needed == "migrate" else "service_healthy"
            assert condition == {"condition": expected}, (name, needed)


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
                expected = (
                    ["application/problem+json", "text/html"]
                    if path.startswith("/01/") and status in (404, 422)
                    else ["application/problem+json"]
                )
                assert sorted(content) == expected, (method, path, status)
