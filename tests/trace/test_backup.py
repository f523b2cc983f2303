"""Backups on the configured database kind: SQLite's online backup, or pg_dump/pg_restore."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from tests import factories as f
from tests.conftest import Databases, migrate, require
from tests.services import append_to_log, counts, populate
from trace.errors import RuleViolation
from trace.events import chain
from trace.organisations import Organisation
from trace.platform import backup as bk
from trace.platform.db import make_engine, session_scope
from trace.users import User


@pytest.fixture
def fresh(databases: Databases) -> Iterator[tuple[str, Engine]]:
    if databases.dialect == "postgresql":
        require(
            shutil.which("pg_dump") is not None and shutil.which("pg_restore") is not None,
            "pg_dump/pg_restore are not installed (apt-get install postgresql-client)",
        )
    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=2)
    yield url, engine
    engine.dispose()


def test_restore_brings_back_changed_deleted_and_later_data_and_the_chain_verifies(
    fresh: tuple[str, Engine],
    tmp_path: Path,
) -> None:
    # given a populated database and a backup of it
    url, engine = fresh
    world = populate(engine)
    before = counts(engine)
    with Session(engine) as s:
        name = s.get(Organisation, world.org_ids[0]).name  # type: ignore[union-attr]
    result = bk.backup(url, tmp_path / "hytrace.backup")
    assert result.path.is_file() and result.size > 0
    # when data is changed, deleted and added afterwards
    with session_scope(engine) as s:
        org = s.get(Organisation, world.org_ids[0])
        assert org is not None
        org.name = "Đã đổi tên"
        s.add(org)
        s.delete(s.exec(select(User)).first())
        f.harvest(s, org, "12")
    assert counts(engine) != before
    engine.dispose()  # the operator stops the app before a restore
    bk.restore(url, tmp_path / "hytrace.backup")
    # then the database is exactly as it was at the backup, and its log verifies
    assert counts(engine) == before
    with Session(engine) as s:
        assert s.get(Organisation, world.org_ids[0]).name == name  # type: ignore[union-attr]
        report = chain.verify(session=s)
    assert report.ok and report.events == before["event"]


def test_backup_holds_committed_rows_only_and_restores_into_a_new_database(
    fresh: tuple[str, Engine],
    databases: Databases,
    tmp_path: Path,
) -> None:
    # given committed data, and a writer in the middle of an uncommitted harvest
    url, engine = fresh
    populate(engine)
    committed = counts(engine)
    with session_scope(engine) as writer:
        org = writer.exec(select(Organisation)).first()
        assert org is not None
        f.harvest(writer, org, "99")
        # when the backup runs while that transaction is open
        bk.backup(url, tmp_path / "snapshot.backup")
        writer.rollback()
    # then restoring it into a brand-new database gives exactly the committed rows
    other = databases.new()
    bk.restore(other, tmp_path / "snapshot.backup")
    copy = make_engine(other, pool_size=1)
    try:
        assert counts(copy) == committed
        with Session(copy) as s:
            assert chain.verify(session=s).ok
    finally:
        copy.dispose()


def test_restore_refuses_a_file_that_is_not_a_backup_and_leaves_the_database_alone(
    fresh: tuple[str, Engine],
    tmp_path: Path,
) -> None:
    # given a populated database and a file that is no backup
    url, engine = fresh
    populate(engine)
    before = counts(engine)
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all\n" * 100)
    engine.dispose()
    # when it is restored
    with pytest.raises(RuleViolation):
        bk.restore(url, junk)
    # then nothing changed
    assert counts(engine) == before


def test_restore_refuses_a_missing_file(fresh: tuple[str, Engine], tmp_path: Path) -> None:
    url, _engine = fresh
    with pytest.raises(RuleViolation) as caught:
        bk.restore(url, tmp_path / "nowhere.backup")
    assert caught.value.code == "backup_missing"


def test_postgres_backup_without_pg_dump_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bk.shutil, "which", lambda _name: None)
    with pytest.raises(RuleViolation) as caught:
        bk.backup("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path / "x.backup")
    assert caught.value.code == "tool_missing" and "postgresql-client" in caught.value.message


def test_in_memory_sqlite_cannot_be_backed_up(tmp_path: Path) -> None:
    with pytest.raises(RuleViolation):
        bk.backup("sqlite:///:memory:", tmp_path / "x.backup")


def _tick(engine: Engine) -> int:
    from trace.transparency import log

    with session_scope(engine) as s:
        append_to_log(s)
        return log.latest(session=s).size  # type: ignore[union-attr]


def test_a_restore_that_would_roll_the_public_log_back_is_refused_unless_accepted(
    fresh: tuple[str, Engine], tmp_path: Path
) -> None:
    # given a backup taken when the log had published N leaves, and a newer checkpoint published since
    url, engine = fresh
    with session_scope(engine) as s:
        f.harvest(s, f.org(s), "5")
    backed_up = _tick(engine)
    bk.backup(url, tmp_path / "hytrace.backup")
    with session_scope(engine) as s:
        f.harvest(s, f.org(s), "6")
    published = _tick(engine)
    assert published > backed_up
    engine.dispose()
    # when the older backup is restored, then it is refused with the reason, and nothing changed
    with pytest.raises(Exception) as refused:
        bk.restore(url, tmp_path / "hytrace.backup")
    assert getattr(refused.value, "code", None) == "restore_rolls_back_log"
    assert f"ends at {backed_up} leaves" in str(refused.value) and f"checkpoint of {published}" in str(refused.value)
    with Session(engine) as s:
        assert len(s.exec(select(Organisation)).all()) >= 2
        from trace.transparency import log

        assert log.latest(session=s).size == published  # type: ignore[union-attr]
    # and told to, it restores (the log is back at the backup's checkpoint)
    bk.restore(url, tmp_path / "hytrace.backup", accept_rollback=True)
    with Session(engine) as s:
        assert log.latest(session=s).size == backed_up  # type: ignore[union-attr]


def test_a_newer_backup_restores_without_being_told(fresh: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = fresh
    with session_scope(engine) as s:
        f.harvest(s, f.org(s), "5")
    _tick(engine)
    bk.backup(url, tmp_path / "hytrace.backup")
    engine.dispose()
    bk.restore(url, tmp_path / "hytrace.backup")  # the same checkpoint: nothing rolls back
