"""Which database errors a client can act on, decided once from the driver's own codes.

A write that met a concurrent writer (SQLite busy, a lock wait cut by its timeout, a deadlock, a
serialization failure) was rolled back whole: the same request may be sent again at once, so it is
409 ``write_conflict``. A database that cannot be reached (refused, shut down, starting, out of
connections, a file that cannot be opened) is 503 ``database_unavailable``: nothing was written and
the client should come back later. Anything else is a fault of ours and stays a 500.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout


@dataclass(frozen=True)
class Fault:
    """How the API answers one kind of database error."""

    status: int
    code: str
    detail: str
    retry_after: int  # seconds, sent as Retry-After


WRITE_CONFLICT = Fault(
    409,
    "write_conflict",
    "The request met a concurrent change to the same data and nothing was saved; send it again",
    1,
)
DATABASE_UNAVAILABLE = Fault(
    503, "database_unavailable", "The database cannot be reached now and nothing was saved; retry later", 5
)

# PostgreSQL SQLSTATEs (Appendix A of its manual), whole codes first, then classes.
POSTGRES: dict[str, Fault] = {
    "40001": WRITE_CONFLICT,  # serialization_failure
    "40P01": WRITE_CONFLICT,  # deadlock_detected
    "55P03": WRITE_CONFLICT,  # lock_not_available: lock_timeout, NOWAIT
    # query_canceled: statement_timeout (a write waiting on a lock, mostly) or an operator's cancel;
    # the transaction is rolled back either way, so sending it again is safe.
    "57014": WRITE_CONFLICT,
    "57P01": DATABASE_UNAVAILABLE,  # admin_shutdown
    "57P02": DATABASE_UNAVAILABLE,  # crash_shutdown
    "57P03": DATABASE_UNAVAILABLE,  # cannot_connect_now: starting up, in recovery
}
POSTGRES_CLASSES: dict[str, Fault] = {
    "08": DATABASE_UNAVAILABLE,  # connection_exception
    "53": DATABASE_UNAVAILABLE,  # insufficient_resources: too many connections, disk full, out of memory
}
# SQLite primary result codes (the extended code's low byte: SQLITE_BUSY_SNAPSHOT is a SQLITE_BUSY).
SQLITE: dict[int, Fault] = {
    sqlite3.SQLITE_BUSY: WRITE_CONFLICT,  # "database is locked": another writer held it past busy_timeout
    sqlite3.SQLITE_LOCKED: WRITE_CONFLICT,
    sqlite3.SQLITE_CANTOPEN: DATABASE_UNAVAILABLE,  # "unable to open database file"
    sqlite3.SQLITE_IOERR: DATABASE_UNAVAILABLE,
    sqlite3.SQLITE_FULL: DATABASE_UNAVAILABLE,
}


def fault_of(error: BaseException) -> Fault | None:
    """The answer for a database error, or None when it is not one a client can act on (a 500)."""
    if isinstance(error, PoolTimeout):
        # Every pooled connection busy past the pool's timeout: the database is out of reach for now.
        return DATABASE_UNAVAILABLE
    if not isinstance(error, DBAPIError):
        return None
    if error.connection_invalidated:  # SQLAlchemy saw the connection drop under the statement
        return DATABASE_UNAVAILABLE
    original = error.orig
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", None)
        return SQLITE.get(code & 0xFF) if isinstance(code, int) else None
    if isinstance(original, psycopg.Error):
        state = original.sqlstate
        if state:
            return POSTGRES.get(state) or POSTGRES_CLASSES.get(state[:2])
        # No SQLSTATE: the server never answered (refused, timed out, closed the connection).
        if isinstance(original, psycopg.OperationalError | psycopg.InterfaceError):
            return DATABASE_UNAVAILABLE
    return None
