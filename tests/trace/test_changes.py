"""Public writes are noticed in every process (page caches depend on it); scans and progress are not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from tests import factories as f
from tests.conftest import migrate
from trace.platform import changes
from trace.platform.db import make_engine, session_scope
from trace.scans.record import new_scan, write


@pytest.fixture
def db(fresh: tuple[str, Engine]) -> Iterator[tuple[str, Engine]]:
    url, engine = fresh
    migrate(url)
    yield url, engine


def test_a_committed_public_write_bumps_the_counter_in_the_same_transaction(db: tuple[str, Engine]) -> None:
    _, engine = db
    before, local = changes.read(engine), changes.generation()
    with session_scope(engine) as session:
        f.org(session)
    assert changes.read(engine) == (before or 0) + 1
    assert changes.generation() > local


def test_a_rolled_back_write_and_a_read_leave_the_counter_alone(db: tuple[str, Engine]) -> None:
    _, engine = db
    before = changes.read(engine)
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        f.org(session)
        raise RuntimeError("refused")
    with session_scope(engine, write=False) as session:
        session.exec(text("SELECT count(*) FROM organisation"))  # type: ignore[call-overload]
    assert changes.read(engine) == before


def test_scans_do_not_count_as_public_changes(db: tuple[str, Engine]) -> None:
    _, engine = db
    with session_scope(engine) as session:
        lot_id = f.harvest(session, f.org(session)).lot_ids[0]
    before = changes.read(engine)
    with session_scope(engine) as session:
        write(
            session=session,
            scans=[new_scan(lot_id=lot_id, unit_id=None, client_ip="1.2.3.4", user_agent=None, lang="vi", kind="page")],
        )
    assert changes.read(engine) == before


def test_another_process_commit_is_seen_by_the_watcher(db: tuple[str, Engine]) -> None:
    url, engine = db
    watcher = changes.Watcher(engine, every=60)
    assert watcher.poll() is False  # the first read only learns the value
    other = make_engine(url, pool_size=1)  # another process's engine on the same database
    try:
        with session_scope(other) as session:
            f.org(session)
    finally:
        other.dispose()
    seen = changes.generation()
    assert watcher.poll() is True and changes.generation() > seen
    assert watcher.poll() is False


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        ('INSERT INTO "lot" (a) VALUES (1)', "lot"),
        ("INSERT OR IGNORE INTO scan (uid) VALUES (?)", "scan"),
        ("  update organisation SET name = 'x'", "organisation"),
        ("DELETE FROM unit WHERE id = 1", "unit"),
        ("SELECT * FROM lot", None),
        ("WITH RECURSIVE walk(id) AS (SELECT 1) SELECT id FROM walk", None),
    ],
)
def test_the_table_a_statement_writes_is_read_from_its_text(statement: str, table: str | None) -> None:
    assert changes._table_written(statement) == table


def test_commits_that_write_nothing_public_keep_the_generation(db: tuple[str, Engine]) -> None:
    _, engine = db
    with session_scope(engine) as session:
        lot_id = f.harvest(session, f.org(session)).lot_ids[0]
    seen = changes.generation()
    with session_scope(engine, write=False) as session:  # a page being built
        session.exec(text("SELECT count(*) FROM lot"))  # type: ignore[call-overload]
    with session_scope(engine) as session:  # a scan flush
        write(
            session=session,
            scans=[new_scan(lot_id=lot_id, unit_id=None, client_ip="1.2.3.4", user_agent=None, lang="vi", kind="page")],
        )
    assert changes.generation() == seen
