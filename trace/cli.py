"""Operator commands, run from the repository root: ``python -m trace.cli <command> --help``."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from trace.access import Actor, Role
from trace.errors import Conflict, DomainError, RuleViolation
from trace.platform.config import get_settings
from trace.platform.db import make_engine, session_scope
from trace.platform.timeutil import utcnow

ROOT = Path(__file__).resolve().parents[1]
CLI_ACTOR = Actor(role=Role.ADMIN, organisation_id=None, name="cli")
OK, BROKEN, ERROR = 0, 1, 2  # exit codes; argparse also exits 2 on bad arguments


def alembic_config(url: str) -> Config:
    """Alembic's configuration (alembic.ini at the repository root) aimed at ``url``."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url, pool_size=2)
    try:
        yield engine
    finally:
        engine.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    """Upgrade the schema to a revision (default: the newest)."""
    command.upgrade(alembic_config(args.database_url), args.revision)
    print(f"{_shown(args.database_url)}: upgraded to {args.revision}")
    return OK


def cmd_downgrade(args: argparse.Namespace) -> int:
    """Downgrade the schema to an older revision."""
    command.downgrade(alembic_config(args.database_url), args.revision)
    print(f"{_shown(args.database_url)}: downgraded to {args.revision}")
    return OK


def cmd_create_admin(args: argparse.Namespace) -> int:
    """Create the province administrator account (nothing happens if it already exists)."""
    from trace.users import MIN_PASSWORD, User, ensure_admin

    settings = get_settings()
    email = (args.email or settings.admin_email).strip().lower()
    password = args.password or settings.admin_password
    if not password:
        raise RuleViolation("No password: pass --password or set HYTRACE_ADMIN_PASSWORD", code="password_missing")
    if len(password) < MIN_PASSWORD:
        raise RuleViolation(f"The password must have at least {MIN_PASSWORD} characters", code="password_too_short")
    with _engine(args.database_url) as engine, session_scope(engine) as session:
        existing = session.exec(select(User).where(User.email == email)).first()
        if existing is not None and existing.role != Role.ADMIN:
            raise Conflict(
                f"{email} is already a user with role {existing.role}; choose another email", code="email_taken"
            )
        if existing is not None:
            print(f"administrator {email} exists (id {existing.id}); unchanged")
            return OK
        user = ensure_admin(session=session, email=email, password=password)
        assert user is not None
        print(f"created administrator {email} (id {user.id})")
    return OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Load the demo organisations, lots and events."""
    try:
        from trace.demo import load_demo
    except ModuleNotFoundError as error:
        if error.name != "trace.demo":
            raise
        raise RuleViolation("Demo data is not available in this version", code="demo_missing") from None
    with _engine(args.database_url) as engine, session_scope(engine) as session:
        summary = load_demo(session=session, reload=args.reload)
    describe = getattr(summary, "describe", None)
    print(describe() if callable(describe) else summary)
    return OK


def cmd_verify_log(args: argparse.Namespace) -> int:
    """Recompute the event log's hash chains, then every table derived from the events; exit 1 at the
    first broken link or differing row."""
    from trace.events import derived

    def progress(percent: int) -> None:
        if args.progress:
            print(f"{percent}%", file=sys.stderr, flush=True)

    with _engine(args.database_url) as engine, session_scope(engine, write=False) as session:
        report = derived.verify_log(session=session, organisation_id=args.organisation, on_progress=progress)
    chain, found = report.chain, report.derived
    if not chain["ok"]:
        where = f"event {chain['broken_event_id']}" if chain["broken_event_id"] else "end of chain"
        print(
            f"BROKEN: organisation {chain['broken_organisation_id']}, seq {chain['broken_seq']}, {where}: "
            f"{chain['reason']}"
        )
        return BROKEN
    print(f"ok: {chain['events']:,} events in {chain['organisations']} organisation chain(s) verified")
    if found is None:
        return OK
    if not found["ok"]:
        difference = found["difference"]
        key = ", ".join(f"{k}={v}" for k, v in difference["row"].items())
        print(f"DIFFERS: {difference['table']} ({key}): {difference['problem']}")
        return BROKEN
    rows = ", ".join(f"{count:,} {table}" for table, count in found["checked"].items())
    print(f"ok: derived tables recomputed from the events: {rows}")
    public = report.public_log
    if public is None:
        return OK
    if not public["ok"]:
        print(f"BROKEN: public log: {public['reason']}")
        return BROKEN
    print(
        f"ok: public log recomputed from the events: {public['leaves']:,} leaves, {public['checkpoints']:,} "
        f"signed checkpoints agree ({public['pending']:,} events waiting to be appended)"
    )
    return OK


def cmd_tlog_tick(args: argparse.Namespace) -> int:
    """Append every committed event to the public log and sign a checkpoint (workers do this every few
    seconds; run it by hand after a restore, or where no worker runs)."""
    from trace.transparency import keys, log

    with _engine(args.database_url) as engine:
        appended = log.drain(lambda: session_scope(engine), keys.signing(get_settings()))
        with session_scope(engine, write=False) as session:
            newest = log.latest(session=session)
    size = newest.size if newest is not None else 0
    print(f"ok: {appended:,} events appended; the newest checkpoint is of {size:,} leaves")
    return OK


def cmd_tlog_keygen(args: argparse.Namespace) -> int:
    """Print a new signed-note key pair: the signer key (keep it secret: HYTRACE_TLOG_SIGNING_KEY) and
    its verifier key (publish it; verifiers and witnesses pin it)."""
    from trace.tlog import note

    name = args.name or (args.witness and "witness") or get_settings().log_origin
    skey, vkey = note.generate_key(name, witness=bool(args.witness))
    print(f"signer key (secret):   {skey}")
    print(f"verifier key (public): {vkey}")
    return OK


def cmd_tlog_key(args: argparse.Namespace) -> int:
    """Print the log's verifier key (the key its checkpoints are signed with), to pin in a verifier."""
    from trace.transparency import keys

    print(keys.signer(get_settings()).verifier_key)
    return OK


def cmd_tlog_dev_witness(args: argparse.Namespace) -> int:
    """Development only: make a witness key once (kept in --key-file) and print its verifier key, for
    HYTRACE_TLOG_WITNESS_KEYS; `make run` runs this witness beside the server."""
    from trace.tlog import note

    if get_settings().environment == "production":
        print("error: a witness is someone else's: configure its verifier key, never make one here", file=sys.stderr)
        return ERROR
    path = Path(args.key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        skey, _ = note.generate_key(args.name, witness=True)
        try:  # readable by its owner only from the start; a second run racing here keeps the first key
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(skey + "\n")
        except FileExistsError:
            pass
    print(note.Signer(path.read_text()).verifier_key)
    return OK


def cmd_export_trace(args: argparse.Namespace) -> int:
    """Write a lot's trace as FSMA 204 CSV or as JSON."""
    from trace import lineage
    from trace.lots import lot_by_code

    direction = lineage.Direction(args.direction)
    with _engine(args.database_url) as engine, session_scope(engine, write=False) as session:
        lot_id = (
            args.lot
            if args.lot is not None
            else lot_by_code(session=session, gtin=args.gtin, lot_code=args.lot_code).id
        )
        assert lot_id is not None
        if args.format == "csv":
            body = lineage.fsma_csv(session=session, actor=CLI_ACTOR, lot_id=lot_id, direction=direction)
        else:
            body = (
                lineage.trace(session=session, actor=CLI_ACTOR, lot_id=lot_id, direction=direction).model_dump_json(
                    indent=2
                )
                + "\n"
            )
    if args.output is None:
        sys.stdout.write(body)
        return OK
    # A byte-order mark makes spreadsheet programs read the Vietnamese text as UTF-8.
    args.output.write_text(body, encoding="utf-8-sig" if args.format == "csv" else "utf-8", newline="")
    print(f"wrote {args.format} trace of lot {lot_id} to {args.output}", file=sys.stderr)
    return OK


def cmd_portal_export(args: argparse.Namespace) -> int:
    """Write the national portal's export (Circular 02/2024) as a ZIP of CSV files with a manifest."""
    from trace.portal import export

    with _engine(args.database_url) as engine, session_scope(engine, write=False) as session:
        chunks = export.export_zip(session=session, actor=CLI_ACTOR, since=args.since, until=args.until)
        output = args.output
        if output.is_dir():
            output = output / export.filename(utcnow())
        with output.open("wb") as out:
            size = sum(out.write(chunk) for chunk in chunks)
    print(f"wrote the portal export ({size:,} bytes) to {output}", file=sys.stderr)
    return OK


def cmd_backup(args: argparse.Namespace) -> int:
    """Back up the whole database to a file."""
    from trace.platform.backup import backup

    print(f"backed up {_shown(args.database_url)} → {backup(args.database_url, args.output).describe()}")
    return OK


def cmd_restore(args: argparse.Namespace) -> int:
    """Replace the whole database with a backup."""
    from trace.platform.backup import restore

    restore(args.database_url, args.input, accept_rollback=args.accept_rollback)
    print(f"restored {_shown(args.database_url)} from {args.input}")
    return OK


def cmd_move_to_postgres(args: argparse.Namespace) -> int:
    """Migrate an empty PostgreSQL database and copy the SQLite data into it."""
    from trace.platform.transfer import transfer

    if make_url(args.target).get_backend_name() != "postgresql":
        raise RuleViolation("--target must be a postgresql+psycopg:// URL", code="target_not_postgresql")
    print(f"migrating {_shown(args.target)} …")
    command.upgrade(alembic_config(args.target), "head")
    print(f"copying {_shown(args.database_url)} → {_shown(args.target)}")
    with _engine(args.database_url) as source, _engine(args.target) as target:
        report = transfer(source, target, progress=print)
    print(report.describe())
    print(f"Done. Set HYTRACE_DATABASE_URL={_shown(args.target)} and restart the app and workers.")
    return OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command."""
    parser = argparse.ArgumentParser(prog="python -m trace.cli", description="hytrace operator commands.")
    parser.add_argument("--database-url", help="database to work on (default: HYTRACE_DATABASE_URL)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def add(name: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        doc = (handler.__doc__ or "").strip()
        cmd = sub.add_parser(name, help=doc, description=doc)
        cmd.set_defaults(handler=handler)
        return cmd

    add("migrate", cmd_migrate).add_argument("--revision", default="head", help="target revision (default: head)")
    add("downgrade", cmd_downgrade).add_argument(
        "--revision", required=True, help="target revision, e.g. -1 or base (back up first)"
    )
    cmd = add("create-admin", cmd_create_admin)
    cmd.add_argument("--email", help="default: HYTRACE_ADMIN_EMAIL")
    cmd.add_argument("--password", help="at least 10 characters; default: HYTRACE_ADMIN_PASSWORD")
    add("demo", cmd_demo).add_argument(
        "--reload",
        action="store_true",
        help="demo data already there: add a batch of recent harvests (events are never deleted)",
    )
    cmd = add("verify-log", cmd_verify_log)
    cmd.add_argument("--organisation", type=int, metavar="ID", help="only this organisation's chain")
    cmd.add_argument("--progress", action="store_true", help="print the percentage done to stderr")
    add("tlog-tick", cmd_tlog_tick)
    cmd = add("tlog-keygen", cmd_tlog_keygen)
    cmd.add_argument("--name", help="the key's name (default: the log's origin, or 'witness')")
    cmd.add_argument("--witness", action="store_true", help="a witness's cosigning key (cosignature/v1)")
    add("tlog-key", cmd_tlog_key)
    cmd = add("tlog-dev-witness", cmd_tlog_dev_witness)
    cmd.add_argument("--key-file", default="data/witness.key", help="default: data/witness.key")
    cmd.add_argument("--name", default="hytrace-dev-witness", help="the witness key's name")
    cmd = add("export-trace", cmd_export_trace)
    cmd.add_argument("--lot", type=int, metavar="ID", help="lot id")
    cmd.add_argument("--gtin", help="GTIN of the lot (with --lot-code)")
    cmd.add_argument("--lot-code", help="lot code (with --gtin)")
    cmd.add_argument("--direction", choices=["backward", "forward"], default="backward")
    cmd.add_argument("--format", choices=["csv", "json"], default="csv", help="FSMA 204 CSV or the JSON trace")
    cmd.add_argument("--output", type=Path, metavar="FILE", help="default: standard output")
    cmd = add("portal-export", cmd_portal_export)
    cmd.add_argument("--since", type=datetime.fromisoformat, metavar="TIME", help="only rows changed since (ISO 8601)")
    cmd.add_argument("--until", type=datetime.fromisoformat, metavar="TIME", help="only rows changed until (ISO 8601)")
    cmd.add_argument(
        "--output",
        type=Path,
        required=True,
        metavar="FILE_OR_FOLDER",
        help="the ZIP file, or a folder to write it in under its dated name",
    )
    add("backup", cmd_backup).add_argument("--output", type=Path, required=True, metavar="FILE")
    cmd = add("restore", cmd_restore)
    cmd.add_argument("--input", type=Path, required=True, metavar="FILE")
    cmd.add_argument(
        "--accept-rollback",
        action="store_true",
        help="restore even a backup whose public log ends before a checkpoint already published (a fork)",
    )
    cmd = add("move-to-postgres", cmd_move_to_postgres)
    cmd.add_argument("--target", required=True, metavar="URL", help="postgresql+psycopg://user:pw@host/db (empty)")
    return parser


def _reason(error: BaseException) -> str:
    if isinstance(error, DomainError):
        return error.message
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"configuration: {first['msg']}"
    if isinstance(error, SQLAlchemyError):
        orig = getattr(error, "orig", None)
        return f"database: {orig if orig is not None else error}"
    return str(error) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors become one line on stderr and a non-zero exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "export-trace" and not (
        (args.lot is not None and args.gtin is None and args.lot_code is None)
        or (args.lot is None and args.gtin is not None and args.lot_code is not None)
    ):
        parser.error("export-trace needs either --lot ID or both --gtin and --lot-code")
    try:
        args.database_url = args.database_url or get_settings().database_url
        return args.handler(args)
    except (DomainError, ValidationError, SQLAlchemyError, CommandError, sqlite3.Error, OSError) as error:
        line = (_reason(error).strip().splitlines() or [type(error).__name__])[0]
        print(f"error: {line}", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
