"""The operator CLI, on fresh databases of the configured kind."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlmodel import Session, select

from tests.conftest import ROOT, migrate, require
from tests.services import World, populate, tamper
from trace import cli
from trace.errors import Forbidden, NotFound, RuleViolation
from trace.lots import Lot
from trace.platform.config import get_settings
from trace.users import User, authenticate


@pytest.fixture
def populated(fresh: tuple[str, Engine]) -> tuple[str, Engine, World]:
    url, engine = fresh
    migrate(url)
    return url, engine, populate(engine)


def run(url: str, *args: str) -> int:
    return cli.main(["--database-url", url, *args])


def test_migrate_brings_an_empty_database_to_head_and_is_safe_to_repeat(fresh: tuple[str, Engine]) -> None:
    url, engine = fresh
    assert run(url, "migrate") == cli.OK
    assert run(url, "migrate") == cli.OK
    head = ScriptDirectory.from_config(cli.alembic_config(url)).get_current_head()
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
        assert {"event", "lot", "organisation"} <= set(inspect(conn).get_table_names())


def test_downgrade_to_base_removes_the_schema(fresh: tuple[str, Engine]) -> None:
    url, engine = fresh
    assert run(url, "migrate") == cli.OK
    assert run(url, "downgrade", "--revision", "base") == cli.OK
    with engine.connect() as conn:
        assert "event" not in inspect(conn).get_table_names()


def test_create_admin_makes_a_province_admin_who_can_sign_in_once(
    fresh: tuple[str, Engine],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, engine = fresh
    migrate(url)
    assert run(url, "create-admin", "--email", "Admin@HungYen.gov.vn", "--password", "mật khẩu đủ dài") == cli.OK
    assert run(url, "create-admin", "--email", "admin@hungyen.gov.vn", "--password", "another long one") == cli.OK
    assert "unchanged" in capsys.readouterr().out
    with Session(engine) as s:
        admins = list(s.exec(select(User)))
        assert [(u.email, u.role) for u in admins] == [("admin@hungyen.gov.vn", "admin")]
        authenticate(session=s, email="admin@hungyen.gov.vn", password="mật khẩu đủ dài")


def test_create_admin_reads_the_settings_when_no_arguments(
    fresh: tuple[str, Engine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, engine = fresh
    migrate(url)
    monkeypatch.setenv("HYTRACE_ADMIN_EMAIL", "op@example.vn")
    monkeypatch.setenv("HYTRACE_ADMIN_PASSWORD", "from the environment")
    get_settings.cache_clear()
    assert run(url, "create-admin") == cli.OK
    with Session(engine) as s:
        authenticate(session=s, email="op@example.vn", password="from the environment")


def test_create_admin_refuses_a_short_password_and_creates_nobody(
    fresh: tuple[str, Engine],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, engine = fresh
    migrate(url)
    assert run(url, "create-admin", "--email", "a@example.vn", "--password", "short") == cli.ERROR
    err = capsys.readouterr().err
    assert "at least 10 characters" in err and "Traceback" not in err
    with Session(engine) as s:
        assert s.exec(select(User)).first() is None


def test_create_admin_refuses_an_email_that_belongs_to_a_member(
    populated: tuple[str, Engine, World],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, engine, _world = populated
    with Session(engine) as s:
        member = s.exec(select(User)).one()
    assert run(url, "create-admin", "--email", member.email, "--password", "long enough 123") == cli.ERROR
    assert "already a user" in capsys.readouterr().err


def test_verify_log_passes_on_an_intact_log_and_names_the_first_altered_event(
    populated: tuple[str, Engine, World],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, engine, world = populated
    assert run(url, "verify-log") == cli.OK
    assert run(url, "verify-log", "--organisation", str(world.org_ids[0])) == cli.OK
    capsys.readouterr()
    # when one event is altered behind the application's back
    tamper(engine, world.corrected_event_id)
    # then verification fails with exit 1 and names it; other organisations still verify
    assert run(url, "verify-log") == cli.BROKEN
    out = capsys.readouterr().out
    assert world.corrected_event_id in out and "altered" in out
    assert run(url, "verify-log", "--organisation", str(world.org_ids[2])) == cli.OK


def test_export_trace_writes_the_fsma_csv_by_id_or_by_gtin_and_lot_code(
    populated: tuple[str, Engine, World],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, engine, world = populated
    with Session(engine) as s:
        dried, fresh = s.get(Lot, world.dried_lot_id), s.get(Lot, world.fresh_lot_id)
    assert dried is not None and fresh is not None
    by_id = tmp_path / "by-id.csv"
    assert run(url, "export-trace", "--lot", str(dried.id), "--output", str(by_id)) == cli.OK
    assert run(url, "export-trace", "--gtin", dried.gtin, "--lot-code", dried.lot_code) == cli.OK
    by_code = capsys.readouterr().out
    # the file carries a byte-order mark for spreadsheet programs; the content is the same
    assert by_id.read_bytes().startswith(b"\xef\xbb\xbf")
    assert by_id.read_bytes().decode("utf-8-sig") == by_code
    rows = list(csv.DictReader(io.StringIO(by_code)))
    # a backward trace of the dried lot reaches the harvested fresh lot it was made from
    assert {r["lot_code"] for r in rows} >= {dried.lot_code, fresh.lot_code}
    assert "Harvesting" in {r["critical_tracking_event"] for r in rows}


def test_export_trace_json_forward_lists_the_descendants(
    populated: tuple[str, Engine, World],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _engine, world = populated
    assert (
        run(url, "export-trace", "--lot", str(world.fresh_lot_id), "--direction", "forward", "--format", "json")
        == cli.OK
    )
    data = json.loads(capsys.readouterr().out)
    assert data["root_lot_id"] == world.fresh_lot_id
    assert {lot["id"] for lot in data["lots"]} == {world.fresh_lot_id, world.dried_lot_id}


def test_export_trace_of_an_unknown_lot_is_one_line_on_stderr(
    populated: tuple[str, Engine, World],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, engine, world = populated
    with Session(engine) as s:
        gtin = s.get(Lot, world.fresh_lot_id).gtin  # type: ignore[union-attr]
    assert run(url, "export-trace", "--gtin", gtin, "--lot-code", "NOPE") == cli.ERROR
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "NOPE" in err


def test_export_trace_needs_a_lot_id_or_both_gtin_and_lot_code() -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["export-trace", "--gtin", "09521234000019"])
    assert caught.value.code == 2


def test_backup_and_restore_commands_round_trip(
    populated: tuple[str, Engine, World],
    tmp_path: Path,
) -> None:
    url, engine, _world = populated
    if engine.dialect.name == "postgresql":
        require(shutil.which("pg_dump") is not None, "pg_dump is not installed")
    assert run(url, "backup", "--output", str(tmp_path / "b.backup")) == cli.OK
    assert run(url, "create-admin", "--email", "later@example.vn", "--password", "added after backup") == cli.OK
    engine.dispose()
    assert run(url, "restore", "--input", str(tmp_path / "b.backup")) == cli.OK
    with Session(engine) as s:
        assert s.exec(select(User).where(User.email == "later@example.vn")).first() is None
        assert s.exec(select(User)).first() is not None


def test_demo_loads_through_trace_demo_and_passes_reload(
    fresh: tuple[str, Engine],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _engine = fresh
    migrate(url)
    calls: list[dict[str, Any]] = []

    class Summary:
        def describe(self) -> str:
            return "3 organisations, 12 events"

    def load_demo(*, session: Session, reload: bool = False) -> Summary:
        calls.append({"session": session, "reload": reload})
        return Summary()

    monkeypatch.setitem(sys.modules, "trace.demo", types.SimpleNamespace(load_demo=load_demo))
    assert run(url, "demo", "--reload") == cli.OK
    assert calls and calls[0]["reload"] is True and isinstance(calls[0]["session"], Session)
    assert "3 organisations, 12 events" in capsys.readouterr().out


def test_an_unreachable_database_is_one_line_and_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("postgresql+psycopg://nobody@127.0.0.1:1/none", "verify-log") == cli.ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: database:") and len(err.strip().splitlines()) == 1


def test_runs_as_a_module_from_the_root_without_loading_the_web_or_worker_stack(tmp_path: Path) -> None:
    env = {**os.environ, "HYTRACE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    probe = (
        "import sys, trace.cli; print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'fastapi', 'starlette', 'celery', 'api', 'labels', 'workers'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    failed = subprocess.run(
        [sys.executable, "-m", "trace.cli", "verify-log"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # the database file has no tables yet: a clean one-line error, no traceback
    assert failed.returncode == cli.ERROR and "Traceback" not in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


def test_portal_export_writes_the_zip_an_operator_uploads(
    populated: tuple[str, Engine, World],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import zipfile

    from trace.organisations import Organisation

    url, engine, _ = populated
    monkeypatch.setenv("HYTRACE_PORTAL_SETTLE_SECONDS", "0")  # the rows were written a moment ago
    get_settings.cache_clear()
    # into a folder: the file takes its dated name
    assert run(url, "portal-export", "--output", str(tmp_path)) == cli.OK
    (written,) = tmp_path.glob("hytrace-portal-*.zip")
    with zipfile.ZipFile(written) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        organisations = next(f for f in manifest["files"] if f["feed"] == "organisations")
        with Session(engine) as s:
            assert organisations["rows"] == len(s.exec(select(Organisation)).all()) > 0
        assert archive.read(organisations["name"]).startswith(b"\xef\xbb\xbf")  # Vietnamese opens right in Excel
    # a period that ends before it starts is refused in words, and nothing is written
    bad = tmp_path / "bad.zip"
    assert (
        run(url, "portal-export", "--since", "2026-05-01", "--until", "2026-04-01", "--output", str(bad)) == cli.ERROR
    )
    assert not bad.exists()


# The least each command needs on its command line (the database URL is never opened here).
MINIMAL = {
    "migrate": [],
    "downgrade": ["--revision", "base"],
    "create-admin": [],
    "demo": [],
    "verify-log": [],
    "export-trace": ["--lot", "3"],
    "portal-export": ["--output", "x.zip"],
    "backup": ["--output", "x.backup"],
    "restore": ["--input", "x.backup"],
    "move-to-postgres": ["--target", "postgresql+psycopg://x@127.0.0.1/y"],
    "tlog-tick": [],
    "tlog-keygen": [],
    "tlog-key": [],
    "tlog-dev-witness": ["--key-file", "x.key"],
}


def _commands() -> dict[str, Any]:
    import argparse

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: parser.get_default("handler") for name, parser in sub.choices.items()}


def test_every_command_is_covered_below() -> None:
    assert set(_commands()) == set(MINIMAL)


@pytest.mark.parametrize("name", sorted(MINIMAL))
@pytest.mark.parametrize(
    "error",
    [
        NotFound("Lot 3 not found\n  (and a second line)"),
        RuleViolation("No such thing", code="x"),
        Forbidden("Not yours"),
    ],
)
def test_a_domain_error_in_any_command_is_one_line_on_stderr_and_no_traceback(
    name: str,
    error: Exception,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given the command's work refuses, as trace/ refuses
    def refuse(args: Any) -> int:
        raise error

    monkeypatch.setattr(cli, _commands()[name].__name__, refuse)
    # when
    code = cli.main(["--database-url", "sqlite:///unused.db", name, *MINIMAL[name]])
    # then
    err = capsys.readouterr().err
    assert code == cli.ERROR
    assert err == f"error: {str(error).splitlines()[0]}\n" and "Traceback" not in err


def test_the_cli_process_answers_an_unknown_lot_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate(url)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "trace.cli",
            "--database-url",
            url,
            "export-trace",
            "--gtin",
            "09520002000019",
            "--lot-code",
            "LN260715",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (cli.ERROR, "")
    assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_development_witness_key_is_made_once_private_and_never_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "data" / "witness.key"
    assert cli.main(["tlog-dev-witness", "--key-file", str(key_file)]) == cli.OK
    first = capsys.readouterr().out.strip()
    assert key_file.stat().st_mode & 0o777 == 0o600 and first.startswith("hytrace-dev-witness+")
    assert cli.main(["tlog-dev-witness", "--key-file", str(key_file)]) == cli.OK
    assert capsys.readouterr().out.strip() == first  # kept, not made again
    monkeypatch.setenv("HYTRACE_ENVIRONMENT", "production")
    monkeypatch.setenv("HYTRACE_SECRET_KEY", "x7#Qp9!zLm2@Rt5^Wv8&Yb1*Nc4(Hd6)")
    get_settings.cache_clear()
    assert cli.main(["tlog-dev-witness", "--key-file", str(tmp_path / "other.key")]) == cli.ERROR
    assert "never make one here" in capsys.readouterr().err and not (tmp_path / "other.key").exists()
