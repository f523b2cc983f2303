"""Knowing, cheaply and in every process, that something a public page shows may have changed.

Public pages are cached per process (a label is scanned far more often than its lot changes), and a
cached page must never hide a recall. So every committed transaction that wrote to a table a page
can show bumps one counter row, ``change_epoch``, inside that same transaction, and this process's
own :func:`generation` at once. Other processes (workers, other API processes) see the row change
through :class:`Watcher`, which reads it every ``change_poll_seconds``.

Writes are noticed at the cursor, so Core bulk inserts count as much as ORM flushes; writes that no
page shows (scans, print-run progress, logins, idempotency records) do not bump, or every scan and
every rendering heartbeat would empty the caches.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from sqlalchemy import BigInteger, Engine, event, text
from sqlmodel import Field, Session, SQLModel

log = logging.getLogger(__name__)

# Tables whose rows never show on a public page.
QUIET_TABLES = frozenset(
    {
        "scan",
        "scan_tally",  # the scans' figures: pages read them every few seconds anyway (api/public.py)
        "scan_sighting",
        "scan_bucket",
        "print_run",
        "print_artefact",
        "print_artefact_chunk",
        "idempotency_record",
        "user",
        "api_key",
        "one_time_link",
        "change_epoch",
        "alembic_version",
        "web_session",
        "webhook_subscription",
        "webhook_delivery",  # every delivery attempt writes; no page shows them
    }
)
_DML = re.compile(r'\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
_DDL = re.compile(r"\s*(?:DROP|ALTER|CREATE)\b", re.IGNORECASE)
_BUMP = "UPDATE change_epoch SET value = value + 1 WHERE id = 1"
_DIRTY = "hytrace_public_write"


class ChangeEpoch(SQLModel, table=True):
    """One row: how many committed transactions have changed what public pages show."""

    __tablename__ = "change_epoch"
    id: int = Field(default=1, primary_key=True)
    value: int = Field(default=0, sa_type=BigInteger)


class _Generation:
    """This process's view: bumped by its own commits and by the watcher."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.value += 1


_generation = _Generation()


def generation() -> int:
    """A number that changes whenever a public fact may have changed (this process or, within
    ``change_poll_seconds``, any other)."""
    return _generation.value


def bump() -> None:
    """Count a change now (commits call it; so may code that changes what pages show by other means)."""
    _generation.bump()


def _table_written(statement: str) -> str | None:
    found = _DML.match(statement)
    return found.group(1).lower() if found else None


def _before_cursor_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    if _DDL.match(statement):  # a migration may drop the counter (a downgrade): look again next time
        _MIGRATED.discard(str(conn.engine.url))
    if _DIRTY in conn.info:
        return
    table = _table_written(statement)
    if table is not None and table not in QUIET_TABLES:
        conn.info[_DIRTY] = True


def _on_commit(conn: Any) -> None:
    # Runs just before the database commits: the bump is part of the same transaction, so another
    # process sees the new counter exactly when it can see the data.
    if conn.info.pop(_DIRTY, None) is None:
        return
    cursor = conn.connection.cursor()
    try:
        if _has_table(conn, cursor):
            cursor.execute(_BUMP)
    finally:
        cursor.close()
    _generation.bump()
    _committing.public = True


_MIGRATED: set[str] = set()
_EXISTS = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'change_epoch'",
    "postgresql": "SELECT to_regclass('change_epoch')",
}


def _has_table(conn: Any, cursor: Any) -> bool:
    # A database not yet migrated this far (upgrades replay old revisions) has no counter to bump;
    # an error inside the transaction would abort it on PostgreSQL, so look first. Only a "yes" is kept.
    key = str(conn.engine.url)
    if key in _MIGRATED:
        return True
    cursor.execute(_EXISTS[conn.dialect.name])
    row = cursor.fetchone()
    if row is not None and row[0] is not None:
        _MIGRATED.add(key)
        return True
    return False


def _on_rollback(conn: Any) -> None:
    conn.info.pop(_DIRTY, None)


def _on_release_savepoint(conn: Any, *_args: Any) -> None:
    # A savepoint's work becomes the transaction's: pages read through this connection see it now.
    if _DIRTY in conn.info:
        _generation.bump()


# Set by _on_commit, in the committing thread, for the session's after_commit hook just after.
_committing = threading.local()


def _after_session_commit(_session: Session) -> None:
    # Once more after a public write's commit has landed: a page built by another thread between the
    # bump above and the commit itself (still seeing the old rows) is not kept. Commits that wrote
    # nothing public (page builds, scan flushes) must not empty the caches.
    if getattr(_committing, "public", False):
        _committing.public = False
        _generation.bump()


def watch_engine(engine: Engine) -> None:
    """Track public writes on this engine (``trace.platform.db.make_engine`` calls it)."""
    event.listen(engine, "before_cursor_execute", _before_cursor_execute)
    event.listen(engine, "commit", _on_commit)
    event.listen(engine, "rollback", _on_rollback)
    event.listen(engine, "release_savepoint", _on_release_savepoint)


event.listen(Session, "after_commit", _after_session_commit)


def read(engine: Engine) -> int | None:
    """The committed counter, or None when the table is missing (a database not yet migrated)."""
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT value FROM change_epoch WHERE id = 1")).scalar_one_or_none()
        except Exception:  # no table yet, or the database is away: the next round tries again
            return None


class Watcher:
    """A daemon thread that notices commits made by other processes (each API process runs one)."""

    def __init__(self, engine: Engine, every: float) -> None:
        self.engine, self.every = engine, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: int | None = None

    def poll(self) -> bool:
        """Read the counter once; True (and a bump) when it moved since the last read."""
        value = read(self.engine)
        moved = value is not None and self._seen is not None and value != self._seen
        if value is not None:
            self._seen = value
        if moved:
            _generation.bump()
        return moved

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.poll()
            except Exception:  # keep watching; a bad round must not end the thread
                log.warning("change watcher: poll failed", exc_info=True)

    def start(self) -> None:
        """Start polling in the background."""
        self.poll()
        self._thread = threading.Thread(target=self._run, name="hytrace-change-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
