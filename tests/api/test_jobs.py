"""Jobs a request asks for are sent after its commit, once, and never for rows that were rolled back
(api/jobs.py), on a database of the test's own: commits here are real, seen from other connections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from api.deps import get_send
from api.jobs import Jobs
from api.main import create_app
from tests import factories as f
from tests.api.helpers import bearer
from trace.printing.models import PrintRun, PrintStatus


@pytest.fixture
def engine(fresh: tuple[str, Engine]) -> Iterator[Engine]:
    from tests.conftest import migrate

    url, engine = fresh
    migrate(url)
    yield engine


def _visible(engine: Engine, run_id: int) -> PrintStatus | None:
    """The run's status as another connection sees it: None when it is not committed."""
    with Session(engine) as other:
        run = other.get(PrintRun, run_id)
        return run.status if run is not None else None


def test_a_print_run_is_sent_once_after_its_commit_and_a_refused_one_is_not_sent(engine: Engine) -> None:
    # given a cooperative's lot and the real request session (its own commit), with a sender that looks
    # at the database from another connection when it is called
    with Session(engine) as session:
        coop = f.org(session)
        lot_id = f.harvest(session, coop, "100").lot_ids[0]
        _, token = f.user(session, coop, password="")
        session.commit()
    seen: list[tuple[str, int, PrintStatus | None]] = []
    app = create_app(testing=True)
    app.state.engine = engine
    app.dependency_overrides[get_send] = lambda: (
        lambda kind, job_id: seen.append((kind, job_id, _visible(engine, job_id)))
    )
    with TestClient(app) as client:
        # when a run is asked for
        asked = client.post(f"/api/v1/lots/{lot_id}/print-runs", json={"quantity": 3}, headers=bearer(token))
        # then it was sent once, and by then the worker could read it
        assert asked.status_code == 202, asked.text
        assert seen == [("print_run", asked.json()["id"], PrintStatus.QUEUED)]
        # and when a request is refused (more labels than the lot has room for), nothing is sent
        seen.clear()
        refused = client.post(f"/api/v1/lots/{lot_id}/print-runs", json={"quantity": 10**6}, headers=bearer(token))
        assert 400 <= refused.status_code < 500, refused.text
        assert seen == []
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(PrintRun)).scalar_one() == 1


def test_a_job_goes_with_the_transaction_or_savepoint_that_rolled_back(engine: Engine) -> None:
    sent: list[tuple[str, int]] = []
    jobs = Jobs()
    with jobs.sent_after(lambda kind, job_id: sent.append((kind, job_id))), Session(engine) as session:
        jobs.watch(session)
        # a job added, then its transaction rolled back: dropped
        jobs.add("print_run", 1)
        session.connection()
        session.rollback()
        # a job added in the next transaction, and in a savepoint that committed, are kept; one added in a
        # savepoint that rolled back goes with it
        jobs.add("print_run", 2)
        with session.begin_nested() as savepoint:
            jobs.add("report", 3)
            savepoint.rollback()
        with session.begin_nested():
            jobs.add("report", 5)
        assert sent == []  # nothing is sent before the block ends, even what is ready
        session.commit()
        # a job added after the last commit, never committed: dropped
        jobs.add("report", 4)
    assert sent == [("print_run", 2), ("report", 5)]


def test_a_request_that_fails_after_adding_a_job_sends_nothing(engine: Engine) -> None:
    sent: list[tuple[str, int]] = []
    jobs = Jobs()
    with pytest.raises(RuntimeError), jobs.sent_after(lambda kind, job_id: sent.append((kind, job_id))):
        with Session(engine) as session:
            jobs.watch(session)
            jobs.add("print_run", 1)
            raise RuntimeError("the handler failed before its commit")
    assert sent == []
    # and the listeners are gone: a later commit of that session adds nothing to a finished request
    session.commit()
    assert jobs.ready == [] and jobs.pending == []
