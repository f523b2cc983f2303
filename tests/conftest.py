"""Shared fixtures: a migrated database per run (SQLite, or PostgreSQL when
HYTRACE_TEST_DATABASE_URL names one), one rolled-back transaction per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HYTRACE_ENVIRONMENT", "test")
os.environ.setdefault("HYTRACE_SECRET_KEY", "test-secret-key-that-is-long-enough-123")
# Rate limits are proven by their own tests (tests/api/test_ratelimit.py) with low limits.
os.environ.setdefault("HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE", "1000000")
os.environ.setdefault("HYTRACE_RATE_LIMIT_LOGIN_PER_MINUTE", "1000000")
os.environ.setdefault("HYTRACE_RATE_LIMIT_AUTHENTICATED_PER_MINUTE", "1000000")
# The public log's checkpoints: one key for the run, given to every server and worker it starts (live.server_env).
os.environ.setdefault("HYTRACE_TLOG_ORIGIN", "hytrace.test/log")
if not os.environ.get("HYTRACE_TLOG_SIGNING_KEY"):
    from trace.tlog.note import generate_key

    os.environ["HYTRACE_TLOG_SIGNING_KEY"] = generate_key("hytrace.test/log")[0]

from trace.platform.config import get_settings  # noqa: E402
from trace.platform.db import make_engine  # noqa: E402
from trace.scans.buffer import MemoryBuffer  # noqa: E402
from trace.scans.record import ScanIn, write  # noqa: E402

MANDATORY = os.environ.get("HYTRACE_CI") == "1"  # .ci/run: a skip is a failure


def require(condition: bool, reason: str) -> None:
    """Skip (printing why) when a service is missing; fail instead under .ci/run."""
    if condition:
        return
    if MANDATORY:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def migrate(url: str) -> None:
    """Apply every migration to the database at ``url``."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


def alembic_config(url: str) -> Config:
    """An Alembic config pointed at ``url``."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class Databases:
    """Makes fresh, empty databases of the configured kind and drops them afterwards."""

    def __init__(self, base_url: str | None, tmp: Path) -> None:
        self.base_url, self.tmp, self.made = base_url, tmp, []  # type: ignore[var-annotated]

    @property
    def dialect(self) -> str:
        return "postgresql" if self.base_url else "sqlite"

    def new(self) -> str:
        name = f"hytrace_t_{uuid.uuid4().hex[:10]}"
        if not self.base_url:
            return f"sqlite:///{self.tmp / (name + '.db')}"
        admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.made.append(name)
        return make_url(self.base_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.base_url:
            return
        admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    base = os.environ.get("HYTRACE_TEST_DATABASE_URL") or None
    dbs = Databases(base, tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def db_url(databases: Databases) -> str:
    url = databases.new()
    migrate(url)
    return url


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url, pool_size=5)
    yield eng
    eng.dispose()


@pytest.fixture
def fresh(databases: Databases) -> Iterator[tuple[str, Engine]]:
    """An empty database of its own (not migrated) and an engine on it, for tests that commit."""
    url = databases.new()
    fresh_engine = make_engine(url, pool_size=2)
    yield url, fresh_engine
    fresh_engine.dispose()


@pytest.fixture
def postgres_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated PostgreSQL database of its own, even when the suite runs on SQLite: there writers
    never interleave (BEGIN IMMEDIATE), so a race can only be shown here. Room for 30 connections."""
    from tests.services import postgres_base_url

    base = postgres_base_url()
    require(base is not None, "no PostgreSQL server (set HYTRACE_TEST_POSTGRES_URL)")
    dbs = Databases(base, tmp_path)
    url = dbs.new()
    migrate(url)
    postgres = make_engine(url, pool_size=30)
    yield postgres
    postgres.dispose()
    dbs.drop_all()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside one transaction that is rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as sess:
        yield sess
    transaction.rollback()
    connection.close()


def app_sharing(session: Session) -> FastAPI:
    """The API, sharing ``session``: its requests, public pages and rate limit's checks (each request
    commits to a savepoint when ``session`` is the test's transaction)."""
    from api.deps import get_reading_session, get_send, get_session
    from api.jobs import Jobs
    from api.main import create_app
    from api.public import PublicPages
    from api.ratelimit import Credentials

    app = create_app(testing=True)

    def _session(request: Request, send: Callable[[str, int], object] = Depends(get_send)) -> Iterator[Session]:
        jobs = request.state.jobs = Jobs()
        with jobs.sent_after(send):
            jobs.watch(session)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def _reading() -> Iterator[Session]:
        yield session

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_reading_session] = _reading  # a streamed download reads the same transaction
    app.state.public = PublicPages(lambda: nullcontext(session), SessionBuffer(session))
    app.state.credentials = Credentials(lambda: nullcontext(session))  # the rate limit's, as the requests'
    return app


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    """The API, sharing the test's transaction (each request commits to a savepoint)."""
    with TestClient(app_sharing(session), raise_server_exceptions=True) as test_client:
        yield test_client


class SessionBuffer(MemoryBuffer):
    """The scan buffer, writing through the test's session when a test flushes it (no thread)."""

    def __init__(self, session: Session) -> None:
        super().__init__(session.get_bind())  # type: ignore[arg-type]
        self.session = session

    def _write(self, scans: Sequence[ScanIn]) -> int:
        return write(session=self.session, scans=scans)


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
