"""Small helpers shared by the API tests: auth headers, problem+json checks, database snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

import trace.schema  # noqa: F401 - registers every table on the metadata
from tests import factories as f
from trace.access import Role

PROBLEM_FIELDS = ("type", "title", "status", "detail", "code")


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a bearer token or API key."""
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert an RFC 9457 problem document with this status (and domain code); return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    missing = [name for name in PROBLEM_FIELDS if name not in body]
    assert not missing, (missing, body)
    assert body["status"] == status
    assert body["type"].endswith("/" + body["code"])
    if code is not None:
        assert body["code"] == code, body
    return body


def iso(moment: datetime) -> str:
    """A datetime as JSON sends it."""
    return moment.isoformat()


def count(session: Session, table: type[SQLModel]) -> int:
    """Rows in a table, as the database sees them in this transaction."""
    return session.connection().execute(select(func.count()).select_from(table.__table__)).scalar_one()  # type: ignore[attr-defined]


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, so a test can prove a refused request wrote nothing at all."""
    session.flush()
    connection = session.connection()
    return {
        table.name: sorted((tuple(map(repr, row)) for row in connection.execute(select(table))), key=repr)
        for table in SQLModel.metadata.sorted_tables
    }


def party(session: Session, kind: str = "cooperative", role: Role = Role.MEMBER) -> tuple[Any, dict[str, str]]:
    """An organisation and the auth headers of one of its users (a member unless ``role`` says)."""
    org = f.org(session, kind)
    return org, headers_for(session, org, role)


def headers_for(session: Session, org: Any, role: Role = Role.MEMBER) -> dict[str, str]:
    """Auth headers of a new user of ``org`` (no password: skipping argon2 keeps the suite fast)."""
    _, token = f.user(session, org, role, password="")
    return bearer(token)


def jobs_sent(client: Any, kind: str) -> list[int]:
    """The ids of the jobs of ``kind`` the app sends to the workers from now on (after its commits),
    in order; the app's sender is replaced, so nothing reaches a broker."""
    from api.deps import get_send

    sent: list[int] = []
    client.app.dependency_overrides[get_send] = lambda: lambda k, job_id: sent.append(job_id) if k == kind else None
    return sent
