"""Schema-driven fuzzing (schemathesis): every operation, generated valid and invalid input, as
an organisation administrator, a market inspector or the province admin. No answer may be a 5xx,
and every answer (status, content type, body) must be one the OpenAPI document declares."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine
from sqlmodel import Session

from api.main import create_app
from tests import factories as f
from tests.conftest import Databases, migrate
from trace import auth
from trace.access import Role
from trace.platform.db import make_engine, session_scope
from trace.users import User

schema = schemathesis.openapi.from_dict(create_app(testing=True).openapi())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ("org_admin", "inspector", "admin")
# Small by default so the suite stays fast; HYTRACE_FUZZ_EXAMPLES=400 for a deep run.
EXAMPLES = int(os.environ.get("HYTRACE_FUZZ_EXAMPLES", "25"))


@dataclass
class Fuzzed:
    """The app under fuzzing, on a database of its own, and the users it is called as."""

    app: FastAPI
    engine: Engine
    users: dict[str, int]

    def headers(self, role: str) -> dict[str, str]:
        """A fresh token for one of the users, reactivated first: a fuzzed call may have removed
        or reset it, and each example should start from the same footing."""
        with session_scope(self.engine) as session:
            user = session.get(User, self.users[role])
            assert user is not None
            user.active = True
            session.add(user)
            token = auth.issue_token(user).access_token
        return {"Authorization": f"Bearer {token}"}


def _seed(session: Session) -> dict[str, int]:
    coop, processor, authority = f.org(session), f.org(session, "processor"), f.org(session, "authority")
    admin, _ = f.user(session, coop, Role.ORG_ADMIN, password="")
    inspector, _ = f.user(session, authority, Role.INSPECTOR, password="")
    province, _ = f.user(session, None, Role.ADMIN, password="")
    f.location(session, coop, "warehouse", name="Kho thử")
    lot = f.harvest(session, coop, "500").lot_ids[0]
    f.ship(session, coop, lot, processor, "100")
    return {"org_admin": admin.id, "inspector": inspector.id, "admin": province.id}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def fuzzed(databases: Databases) -> Iterator[Fuzzed]:
    """A migrated database of its own (the fuzzer's requests really commit), seeded with a
    cooperative with a growing area, a product, a lot and a shipment to a processor."""
    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=5)
    with session_scope(engine) as session:
        users = _seed(session)
    app = create_app(testing=True)
    app.state.engine = engine  # api.deps.get_session and /healthz use it
    yield Fuzzed(app=app, engine=engine, users=users)
    engine.dispose()


@schema.given(role=st.sampled_from(ROLES))
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_operation_never_fails_and_answers_as_documented(case: Any, role: str, fuzzed: Fuzzed) -> None:
    """No 5xx; the status, content type and body match the operation's documented responses."""
    case.call_and_validate(app=fuzzed.app, headers=fuzzed.headers(role), checks=CHECKS)
