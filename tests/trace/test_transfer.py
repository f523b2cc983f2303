"""Moving a SQLite database into PostgreSQL (runs on both suite runs: it needs a PostgreSQL server
either way, from HYTRACE_TEST_POSTGRES_URL or the local default)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from tests import factories as f
from tests.conftest import Databases, migrate, require
from tests.services import append_to_log, counts, populate, postgres_base_url, tamper
from trace import cli
from trace.errors import Conflict
from trace.events import chain
from trace.events.models import Event
from trace.lineage import Direction, trace
from trace.organisations import Organisation
from trace.platform import transfer as transfer_module
from trace.platform.db import make_engine, session_scope
from trace.platform.transfer import transfer
from trace.transparency import log
from trace.transparency import verify as log_verify
from trace.transparency.models import LogHead


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """Makes fresh PostgreSQL databases, even when the suite runs on SQLite."""
    base = postgres_base_url()
    require(base is not None, "no PostgreSQL server (set HYTRACE_TEST_POSTGRES_URL)")
    dbs = Databases(base, tmp_path_factory.mktemp("pg"))
    yield dbs
    dbs.drop_all()


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'hytrace.db'}"
    migrate(url)
    engine = make_engine(url, pool_size=2)
    yield url, engine
    engine.dispose()


@pytest.fixture
def target(postgres: Databases) -> Iterator[tuple[str, Engine]]:
    url = postgres.new()  # empty: the command migrates it
    engine = make_engine(url, pool_size=2)
    yield url, engine
    engine.dispose()


def _traces(engine: Engine, lot_id: int) -> list[str]:
    with Session(engine) as s:
        return [
            trace(session=s, actor=cli.CLI_ACTOR, lot_id=lot_id, direction=d).model_dump_json()
            for d in (Direction.BACKWARD, Direction.FORWARD)
        ]


def test_a_moved_database_keeps_its_public_log_and_the_log_verifies_there(
    source: tuple[str, Engine],
    target: tuple[str, Engine],
) -> None:
    # given a SQLite database whose events are in its public log
    _src_url, src = source
    dst_url, dst = target
    populate(src)
    with session_scope(src) as s:
        append_to_log(s)
    migrate(dst_url)
    # when it is moved, then the tree, its head and its checkpoints arrived and verify against the events
    transfer(src, dst)
    with Session(src) as a, Session(dst) as b:
        assert log.latest(session=a).note == log.latest(session=b).note  # type: ignore[union-attr]
        report = log_verify.verify(session=b)
        head = b.exec(select(LogHead)).one()
    assert report.ok and report.leaves == counts(src)["event"] > 0 and head.size == report.leaves


def test_move_to_postgres_copies_everything_and_the_target_keeps_working(
    source: tuple[str, Engine],
    target: tuple[str, Engine],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a SQLite database with a whole supply chain in it (and batches small enough to need several)
    src_url, src = source
    dst_url, dst = target
    world = populate(src)
    monkeypatch.setattr(transfer_module, "BATCH", 2)
    # when the operator moves it
    code = cli.main(["--database-url", src_url, "move-to-postgres", "--target", dst_url])
    # then every row arrived, the hash chains verify and traces are identical
    assert code == cli.OK, capsys.readouterr().err
    assert "verified" in capsys.readouterr().out
    assert counts(dst) == counts(src) and counts(src)["event"] >= 9
    with Session(dst) as s:
        report = chain.verify(session=s)
    assert report.ok and report.organisations == 3
    assert _traces(dst, world.dried_lot_id) == _traces(src, world.dried_lot_id)
    assert _traces(dst, world.fresh_lot_id) == _traces(src, world.fresh_lot_id)
    with Session(src) as a, Session(dst) as b:
        assert [e.hash for e in a.exec(select(Event).order_by(Event.id))] == [
            e.hash for e in b.exec(select(Event).order_by(Event.id))
        ]
    # and new rows get fresh keys (the sequences were moved past the copied ids)
    with session_scope(dst) as s:
        coop = s.get(Organisation, world.org_ids[0])
        assert coop is not None
        new = f.harvest(s, coop, "30")
        f.org(s)
    assert new.lot_ids[0] > world.dried_lot_id
    with Session(dst) as s:
        assert chain.verify(session=s).ok


def test_move_refuses_a_target_that_already_holds_data(
    source: tuple[str, Engine],
    target: tuple[str, Engine],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given a target that already received the data once
    src_url, src = source
    dst_url, dst = target
    populate(src)
    assert cli.main(["--database-url", src_url, "move-to-postgres", "--target", dst_url]) == cli.OK
    before = counts(dst)
    capsys.readouterr()
    # when the move is run again
    code = cli.main(["--database-url", src_url, "move-to-postgres", "--target", dst_url])
    # then it refuses, in one line, and copies nothing
    err = capsys.readouterr().err
    assert code == cli.ERROR and "not empty" in err and len(err.strip().splitlines()) == 1
    assert counts(dst) == before


def test_a_chain_that_does_not_verify_after_the_copy_leaves_the_target_empty(
    source: tuple[str, Engine],
    target: tuple[str, Engine],
) -> None:
    # given a source whose log was altered behind the application's back
    _src_url, src = source
    dst_url, dst = target
    world = populate(src)
    tamper(src, world.corrected_event_id)
    migrate(dst_url)
    # when it is moved
    with pytest.raises(Conflict) as caught:
        transfer(src, dst)
    # then nothing was committed on the target
    assert caught.value.code == "transfer_chain_broken"
    assert set(counts(dst).values()) == {0}


def test_move_refuses_a_target_that_is_not_postgresql(
    source: tuple[str, Engine],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src_url, _src = source
    code = cli.main(["--database-url", src_url, "move-to-postgres", "--target", f"sqlite:///{tmp_path / 'x.db'}"])
    assert code == cli.ERROR and "postgresql" in capsys.readouterr().err
