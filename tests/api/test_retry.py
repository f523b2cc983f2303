"""A write that met a concurrent writer is run again on the server; the client hears only the last run."""

from __future__ import annotations

import psycopg
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError, OperationalError

from api import errors
from api.retry import ATTEMPTS, RETRY_HEADER, RetryConflicts
from trace.errors import RuleViolation


def _app(failures: int, fault: Exception) -> tuple[FastAPI, list[bytes]]:
    """An app whose write fails with ``fault`` the first ``failures`` runs; it records each run's body."""
    app = FastAPI()
    app.add_middleware(RetryConflicts)
    errors.install(app)
    bodies: list[bytes] = []

    @app.post("/api/v1/things")
    async def write(request: Request) -> dict[str, int]:
        bodies.append(await request.body())
        if len(bodies) <= failures:
            raise fault
        if request.headers.get("x-refuse"):
            raise RuleViolation("Only 100 kg held", code="exceeds_holding")
        return {"runs": len(bodies)}

    @app.get("/api/v1/things")
    def read() -> dict[str, int]:
        bodies.append(b"")
        raise fault

    return app, bodies


def deadlock() -> OperationalError:
    return OperationalError("UPDATE holding …", {}, psycopg.errors.DeadlockDetected("deadlock detected"))


def unique_taken() -> IntegrityError:
    return IntegrityError("INSERT INTO holding …", {}, psycopg.errors.UniqueViolation("duplicate key"))


@pytest.mark.parametrize("fault", [deadlock(), unique_taken()], ids=["deadlock", "unique_key"])
def test_a_conflicted_write_is_run_again_with_the_same_body_and_the_client_sees_only_the_success(
    fault: Exception,
) -> None:
    # given a write that meets a concurrent writer on its first two runs
    app, bodies = _app(failures=2, fault=fault)
    # when a client sends it once
    answer = TestClient(app).post("/api/v1/things", json={"lot_id": 7, "quantity": "25"})
    # then the server ran it three times with the same body, and answered the third run's 200
    assert answer.status_code == 200 and answer.json() == {"runs": 3}
    assert bodies == [b'{"lot_id":7,"quantity":"25"}'] * 3
    assert RETRY_HEADER.decode() not in answer.headers


def test_a_write_that_still_conflicts_after_the_last_run_answers_409_with_retry_after() -> None:
    app, bodies = _app(failures=100, fault=deadlock())
    answer = TestClient(app).post("/api/v1/things", json={})
    assert len(bodies) == ATTEMPTS
    assert answer.status_code == 409 and answer.json()["code"] == "write_conflict"
    assert answer.headers["retry-after"] == "1"
    assert RETRY_HEADER.decode() not in answer.headers  # the marker stays on the server


def test_a_rule_refusal_on_the_run_after_a_conflict_is_the_answer() -> None:
    # the second run waits for the other writer and then decides on what it left
    app, bodies = _app(failures=1, fault=deadlock())
    answer = TestClient(app).post("/api/v1/things", json={}, headers={"x-refuse": "1"})
    assert len(bodies) == 2 and answer.status_code == 422 and answer.json()["code"] == "exceeds_holding"


def test_reads_and_other_database_faults_are_not_run_again() -> None:
    app, bodies = _app(failures=100, fault=deadlock())
    assert TestClient(app).get("/api/v1/things").status_code == 409 and len(bodies) == 1
    unreachable = OperationalError("SELECT 1", {}, psycopg.errors.AdminShutdown("terminating connection"))
    app, bodies = _app(failures=100, fault=unreachable)
    answer = TestClient(app).post("/api/v1/things", json={})
    assert answer.status_code == 503 and len(bodies) == 1
