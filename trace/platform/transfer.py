"""Moving a SQLite database into an empty, migrated PostgreSQL database, keeping every key and hash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, Integer, Table, func, inspect, select, text
from sqlmodel import Session

from trace.errors import Conflict, RuleViolation
from trace.events import chain
from trace.schema import metadata
from trace.transparency import verify as log_verify

BATCH = 5_000
Progress = Callable[[str], None]


@dataclass
class TransferReport:
    """Rows copied per table (equal on both sides, or the transfer is rolled back)."""

    rows: dict[str, int] = field(default_factory=dict)
    events_verified: int = 0
    chains: int = 0

    def describe(self) -> str:
        """A short summary for the operator."""
        return (
            f"{sum(self.rows.values()):,} rows in {len(self.rows)} tables copied; "
            f"{self.events_verified:,} events in {self.chains} chains verified on the target"
        )


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# One-row tables each database's migration makes itself: the page caches' change counter (not copied)
# and the public log's head (its row is updated to the source's).
MADE_BY_MIGRATION = ("change_epoch", "tlog_head")


def _tables() -> list[Table]:
    """The tables to copy: all but the one-row tables each database's migration makes itself."""
    return [table for table in metadata.sorted_tables if table.name not in MADE_BY_MIGRATION]


def _check(source: Connection, target: Connection) -> None:
    if target.dialect.name != "postgresql":
        raise RuleViolation("The target must be a PostgreSQL database", code="target_not_postgresql")
    if source.dialect.name != "sqlite":
        raise RuleViolation("The source must be a SQLite database", code="source_not_sqlite")
    src_rev, dst_rev = _revision(source), _revision(target)
    if dst_rev is None:
        raise RuleViolation("The target is not migrated; run the migrations on it first", code="target_not_migrated")
    if src_rev != dst_rev:
        raise RuleViolation(
            f"The source is at revision {src_rev}, the target at {dst_rev}; "
            "migrate the SQLite database to the same revision first",
            code="revision_mismatch",
        )
    used = [t.name for t in _tables() if target.execute(select(1).select_from(t).limit(1)).first()]
    if used:
        raise Conflict(f"The target database is not empty (rows in: {', '.join(used)})", code="target_not_empty")


def _copy_table(source: Connection, target: Connection, table: Table, say: Progress) -> int:
    copied = 0
    # Primary-key order: rows that refer to earlier rows of the same table come after them.
    result = source.execution_options(yield_per=BATCH).execute(select(table).order_by(*table.primary_key.columns))
    for batch in result.partitions():
        # Rows go through the column types both ways (JSON, UTC datetimes, exact decimals),
        # so values arrive as the same Python objects the hash chain was computed from.
        target.execute(table.insert(), [dict(row._mapping) for row in batch])
        copied += len(batch)
        if copied % (BATCH * 10) == 0:
            say(f"  {table.name}: {copied:,} rows …")
    return copied


def _reset_sequences(target: Connection, table: Table) -> None:
    """Point each serial column's sequence past the copied keys, so the next insert gets a fresh id."""
    prep = target.dialect.identifier_preparer
    quoted = prep.format_table(table)
    for column in table.primary_key.columns:
        if not isinstance(column.type, Integer):
            continue
        sequence = target.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": quoted, "c": column.name}
        ).scalar()
        if sequence is None:
            continue
        # is_called=false with max+1 also works for an empty table (a sequence cannot go to 0).
        highest = f"SELECT MAX({prep.quote(column.name)}) FROM {quoted}"
        target.execute(text(f"SELECT setval(:s, COALESCE(({highest}), 0) + 1, false)"), {"s": sequence})


def transfer(source_engine: Engine, target_engine: Engine, *, progress: Progress | None = None) -> TransferReport:
    """Copy every table from SQLite into an empty PostgreSQL database in one transaction, then verify."""
    say = progress or (lambda _line: None)
    report = TransferReport()
    # One read transaction on the source: a consistent snapshot even if the app is still writing.
    with source_engine.connect() as source, source.begin(), target_engine.connect() as target, target.begin():
        _check(source, target)
        for table in _tables():  # parents before the tables that refer to them
            report.rows[table.name] = _copy_table(source, target, table, say)
            _reset_sequences(target, table)
            say(f"{table.name}: {report.rows[table.name]:,} rows")
        head = source.execute(text("SELECT size, root FROM tlog_head WHERE id = 1")).one()
        target.execute(text("UPDATE tlog_head SET size = :s, root = :r WHERE id = 1"), {"s": head[0], "r": head[1]})
        for table in _tables():
            there = _count(target, table)
            if there != report.rows[table.name] or there != _count(source, table):
                raise Conflict(
                    f"Row counts differ for {table.name}: source {report.rows[table.name]}, target {there}",
                    code="transfer_count_mismatch",
                )
        # Verify before committing: a chain that does not survive the move is never left behind.
        with Session(bind=target, join_transaction_mode="create_savepoint") as session:
            verdict = chain.verify(session=session)
            public = log_verify.verify(session=session) if verdict.ok else None
        if not verdict.ok:
            raise Conflict(
                f"The hash chain does not verify on the target (organisation "
                f"{verdict.broken_organisation_id}, seq {verdict.broken_seq}: {verdict.reason}); "
                "nothing was committed",
                code="transfer_chain_broken",
            )
        if public is not None and not public.ok:
            raise Conflict(
                f"The public log does not verify on the target ({public.reason}); nothing was committed",
                code="transfer_log_broken",
            )
        report.events_verified, report.chains = verdict.events, verdict.organisations
        say(f"hash chains verified: {verdict.events:,} events in {verdict.organisations} organisations")
    return report
