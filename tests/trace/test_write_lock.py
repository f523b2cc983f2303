"""SQLite: this process's writers take turns on one lock, held until the transaction has ended."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, text

from trace.platform.db import _WRITE_LOCKS, make_engine, writer


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    made = make_engine(f"sqlite:///{tmp_path / 'w.db'}", pool_size=3)
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    yield made
    made.dispose()


def test_the_write_lock_is_held_through_the_commit_and_released_after_it(engine) -> None:  # type: ignore[no-untyped-def]
    # given a listener that runs where the commit's own statements run (the change counter's bump)
    lock = None
    seen: list[bool] = []

    def at_commit(conn: object) -> None:
        seen.append(lock is not None and lock.locked())

    event.listen(engine, "commit", at_commit)
    # when a writer commits
    with writer(engine).begin() as conn:
        conn.execute(text("INSERT INTO t VALUES ('a')"))
        lock = _WRITE_LOCKS[str(engine.url)]
        assert lock.locked()
    # then no other writer of this process could begin before the COMMIT, and any may after it
    assert seen == [True]
    assert not lock.locked()


def test_the_write_lock_is_released_after_a_rollback_and_a_returned_connection(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError), writer(engine).begin() as conn:
        conn.execute(text("INSERT INTO t VALUES ('b')"))
        raise ValueError
    lock = _WRITE_LOCKS[str(engine.url)]
    assert not lock.locked()
    conn = writer(engine).connect()
    conn.execute(text("INSERT INTO t VALUES ('c')"))
    assert lock.locked()
    conn.close()  # the pool rolls it back
    assert not lock.locked()
    with engine.connect() as reader:
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
