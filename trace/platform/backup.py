"""Backups of the whole database: SQLite's online backup API, or pg_dump/pg_restore for PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, create_engine, inspect, make_url, text
from sqlalchemy.pool import NullPool

from trace.errors import Conflict, RuleViolation


@dataclass(frozen=True)
class BackupResult:
    """Where a backup or restore went, and how big the file is."""

    path: Path
    size: int
    dialect: str

    def describe(self) -> str:
        """One line for the operator."""
        return f"{self.dialect}: {self.path} ({self.size:,} bytes)"


def sqlite_path(url: str | URL) -> Path:
    """The file behind a SQLite URL (refusing in-memory databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise RuleViolation(f"Not a SQLite URL: {parsed.render_as_string()}", code="not_sqlite")
    if not parsed.database or parsed.database == ":memory:":
        raise RuleViolation("An in-memory SQLite database cannot be backed up", code="not_a_file")
    return Path(parsed.database)


def _is_postgres(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def backup(url: str, output: Path) -> BackupResult:
    """Write a consistent copy of the database at ``url`` to ``output`` (the app may keep running)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if _is_postgres(url):
        _pg("pg_dump", url, ["--format=custom", f"--file={output}"])
        return BackupResult(output, output.stat().st_size, "postgresql")
    source = sqlite_path(url)
    if not source.is_file():
        raise RuleViolation(f"No SQLite database at {source}", code="database_missing")
    # Write beside the destination and rename: a half-written backup never carries the final name.
    fd, tmp_name = tempfile.mkstemp(prefix=".hytrace-backup-", suffix=".db", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with closing(sqlite3.connect(source, timeout=15)) as src, closing(sqlite3.connect(tmp)) as dst:
            # One step (pages=-1) reads the whole database in one read transaction: a
            # consistent snapshot that includes pages still in the -wal file.
            src.backup(dst)
            # The copy is a single self-contained file, not a WAL database with side files.
            dst.execute("PRAGMA journal_mode=DELETE")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return BackupResult(output, output.stat().st_size, "sqlite")


def _check_sqlite_backup(path: Path) -> None:
    if not path.is_file():
        raise RuleViolation(f"No backup file at {path}", code="backup_missing")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            status = conn.execute("PRAGMA quick_check").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as error:
        raise RuleViolation(f"{path} is not a SQLite database ({error})", code="backup_invalid") from None
    if status != "ok":
        raise RuleViolation(f"{path} is damaged: {status}", code="backup_invalid")
    if "alembic_version" not in tables:
        raise RuleViolation(f"{path} is not a hytrace database (no alembic_version table)", code="backup_invalid")


def _published(url: str) -> int | None:
    """The size of the newest checkpoint the database's public log signed (None: none, or no database)."""
    if not _is_postgres(url) and not sqlite_path(url).is_file():
        return None
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("tlog_checkpoint"):
                return None
            found = connection.execute(text("SELECT max(size) FROM tlog_checkpoint")).scalar()
            return int(found) if found is not None else None
    finally:
        engine.dispose()


def _published_in_backup(url: str, source: Path) -> int | None:
    """The size of the newest checkpoint a backup file holds (None: none, or a backup from before the log)."""
    if not _is_postgres(url):
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as backup_db:
            try:
                found = backup_db.execute("SELECT max(size) FROM tlog_checkpoint").fetchone()[0]
            except sqlite3.OperationalError:  # no such table: a backup from before the log
                return None
        return int(found) if found is not None else None
    exe = shutil.which("pg_restore")
    if exe is None:
        raise RuleViolation("pg_restore is not installed (apt-get install postgresql-client)", code="tool_missing")
    done = subprocess.run(
        [exe, "--data-only", "--table=tlog_checkpoint", "--file=-", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuleViolation(f"pg_restore could not read {source}: {done.stderr.strip()[:300]}", code="backup_invalid")
    sizes, copying = [], False
    for line in done.stdout.splitlines():
        if line.startswith("COPY ") and "tlog_checkpoint" in line:
            copying = True
        elif copying and line == "\\.":
            break
        elif copying and line:
            sizes.append(int(line.split("\t", 1)[0]))
    return max(sizes) if sizes else None


def restore(url: str, source: Path, *, accept_rollback: bool = False) -> BackupResult:
    """Replace the database at ``url`` with the content of the backup ``source`` (stop the app first).

    A backup whose public log ends before a checkpoint this database already published is refused unless
    ``accept_rollback``: the leaves after it would be appended again differently, and every witness and
    verifier that saw the newer checkpoint will see the log fork (docs/operations.md)."""
    source = Path(source)
    if source.is_file():
        published = _published(url)
        restored = _published_in_backup(url, source) if published is not None else None
        if published is not None and (restored or 0) < published and not accept_rollback:
            raise Conflict(
                f"The backup's public log ends at {restored or 0} leaves, but this database already published a "
                f"checkpoint of {published}: restoring it rolls the log back, and every witness that saw the "
                "newer checkpoint will see a fork. Restore a newer backup, or pass --accept-rollback",
                code="restore_rolls_back_log",
            )
    if _is_postgres(url):
        if not source.is_file():
            raise RuleViolation(f"No backup file at {source}", code="backup_missing")
        # One transaction: a failed restore leaves the database as it was.
        _pg(
            "pg_restore",
            url,
            ["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error", str(source)],
        )
        return BackupResult(source, source.stat().st_size, "postgresql")
    _check_sqlite_backup(source)
    target = sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        _replace_file(source, target)
    else:
        # The backup API writes into the live file in one write transaction, through
        # SQLite's own locks and WAL: atomic, and never leaves a -wal file that belongs
        # to other content (which replacing the file underneath would).
        try:
            with (
                closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
                closing(sqlite3.connect(target, timeout=15)) as dst,
            ):
                src.backup(dst)
        except sqlite3.Error as error:
            raise RuleViolation(f"Restore into {target} failed: {error}", code="restore_failed") from None
    return BackupResult(target, target.stat().st_size, "sqlite")


def _replace_file(source: Path, target: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=".hytrace-restore-", suffix=".db", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(source, tmp)
        for side in ("-wal", "-shm", "-journal"):  # stale side files would be replayed onto the copy
            Path(f"{target}{side}").unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _pg(tool: str, url: str, args: list[str]) -> None:
    """Run pg_dump/pg_restore against ``url``; the password goes in the environment, not argv."""
    exe = shutil.which(tool)
    if exe is None:
        raise RuleViolation(
            f"{tool} is not installed (Debian/Ubuntu: apt-get install postgresql-client)", code="tool_missing"
        )
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    # libpq understands postgresql://user@host:port/db?sslmode=...; not the +psycopg driver part.
    dsn = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run([exe, f"--dbname={dsn}", *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # One line for the operator, but all of it: a version mismatch spans two lines.
        detail = "; ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
        raise RuleViolation(f"{tool} failed: {detail[:500] or 'exit ' + str(done.returncode)}", code="tool_failed")
