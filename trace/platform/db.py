"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlmodel import Session

from trace.platform import changes
from trace.platform.config import get_settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # We issue BEGIN ourselves (below) so SAVEPOINTs work and writers can take the
    # write lock up front.
    dbapi_connection.isolation_level = None
    # WAL lets readers run beside the single writer; NORMAL is durable across app
    # crashes in WAL mode and avoids an fsync per commit.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


AUTOCOMMIT_READ = "hytrace_autocommit_read"
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCK_WAIT = 60.0


def _sqlite_begin(conn: Any) -> None:
    # A write transaction that first reads and then writes would fail with
    # SQLITE_BUSY if another writer committed in between; BEGIN IMMEDIATE takes the
    # write lock first. Writers of this process queue on a lock before that: SQLite's own
    # busy handler polls with growing sleeps, which starves some writers for many seconds.
    options = conn.get_execution_options()
    if options.get(AUTOCOMMIT_READ, False):
        return  # each statement its own snapshot (read_connection)
    if not options.get("sqlite_immediate", False):
        conn.exec_driver_sql("BEGIN")
        return
    lock = _WRITE_LOCKS.setdefault(str(conn.engine.url), threading.Lock())
    if lock.acquire(timeout=_WRITE_LOCK_WAIT):
        conn.info["hytrace_write_lock"] = lock
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _sqlite_release(conn)
        raise


def _sqlite_release(conn: Any) -> None:
    # A plain Lock (not RLock): the request's session may end on another threadpool thread.
    # ``conn``: a Connection, or the pooled DBAPI connection the dialect commits (the same ``info``).
    try:
        info = conn.info
    except NotImplementedError:  # the engine's first connection, before the pool keeps it: no lock held
        return
    lock = info.pop("hytrace_write_lock", None)
    if lock is not None:
        lock.release()


def _release_after_ending(engine: Engine) -> None:
    """The next writer of this process may begin once the transaction has ended, not just before.

    SQLAlchemy's ``commit`` and ``rollback`` events come before the COMMIT (and the statements other
    listeners add to it), so a writer woken there found the database still locked and slept in SQLite's
    busy handler (1, 2, 5, 10 ms…) while the commit and its WAL checkpoint ran. It also always began
    while that checkpoint was copying pages, so it never reset the WAL: the file grew by every page
    ever written (17 GB at 600,000 events) and capture slowed as the log grew. Released after the
    dialect's commit or rollback (this engine's own dialect instance), a writer begins when the
    checkpoint is done and restarts the WAL from its start."""
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            _sqlite_release(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            _sqlite_release(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def make_engine(url: str, *, pool_size: int | None = None, pre_ping: bool = True) -> Engine:
    """Create an engine with the settings each backend needs (``pre_ping``: PostgreSQL's connections
    are tested with a round trip as they leave the pool)."""
    size = pool_size or get_settings().db_pool_size
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 15},
            pool_size=size,
            max_overflow=0,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        _release_after_ending(engine)
    else:
        # The pool is as large as the request threadpool so a thread never waits for a
        # connection held by a request that waits for a thread (fastapi#3205).
        engine = create_engine(url, pool_size=size, max_overflow=0, pool_pre_ping=pre_ping)
    changes.watch_engine(engine)
    return engine


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine for the configured database."""
    return make_engine(get_settings().database_url)


@lru_cache
def get_read_engine() -> Engine:
    """The engine the public pages read through: a read replica when one is configured, else the database.

    Its change counter is watched too, so a page cached from the replica before a write reached it is
    built again once it has (the counter moves in the replica with the data)."""
    url = get_settings().database_read_url
    return make_engine(url) if url else get_engine()


@lru_cache
def get_page_engine() -> Engine:
    """The public pages' own pool on the read engine's database, for the one-statement reads of a page
    not cached yet (:func:`read_connection`): no test round trip per checkout (on PostgreSQL that ping
    was a third of such a read); a connection found dead is retried once by the reader."""
    settings = get_settings()
    return make_engine(settings.database_read_url or settings.database_url, pre_ping=False)


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads that need no transaction: each statement is its own snapshot, and neither
    a BEGIN nor a ROLLBACK goes to the database (PostgreSQL's autocommit; SQLite without our BEGIN)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT", **{AUTOCOMMIT_READ: True})
        else:
            conn = conn.execution_options(**{AUTOCOMMIT_READ: True})
        yield conn


def writer(engine: Engine) -> Engine:
    """The same engine, for sessions that will write (BEGIN IMMEDIATE on SQLite)."""
    return engine.execution_options(sqlite_immediate=True)


@contextmanager
def session_scope(engine: Engine | None = None, *, write: bool = True) -> Iterator[Session]:
    """A session committed once on success and rolled back on any error."""
    engine = engine or get_engine()
    with Session(writer(engine) if write else engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# The planner's statistics after bulk writes (issue 17): a lot's 100,000 new units, a flush of scans. A
# table is analysed once a tenth of it (and at least 1,000 rows) changed since its last analysis, the rule
# of PostgreSQL's autovacuum, which may be off or a minute behind (it was off where a 500,000-unit lot's
# look-up was planned from a never-analysed table and took minutes). One worker at a time, by an advisory lock.
_STALE_TABLES = text(
    "SELECT relname FROM pg_stat_user_tables"
    " WHERE n_mod_since_analyze >= 1000 + 0.1 * n_live_tup ORDER BY n_mod_since_analyze DESC"
)
_STATISTICS_LOCK = 0x68797472  # "hytr": the advisory lock key of this round


def refresh_statistics(engine: Engine) -> list[str]:
    """Analyse the tables whose statistics fell behind their writes; the tables analysed.

    PostgreSQL: ``ANALYZE`` of each stale table (a sample, seconds at most). SQLite: ``PRAGMA optimize``,
    which analyses what its own rules say needs it."""
    with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            conn.exec_driver_sql("PRAGMA optimize")
            return []
        with conn.begin():
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _STATISTICS_LOCK}).scalar():
                return []  # another worker is at it
            stale = list(conn.execute(_STALE_TABLES).scalars())
            for name in stale:
                conn.exec_driver_sql(f'ANALYZE "{name}"')  # a name from the catalogue, quoted
        return stale
