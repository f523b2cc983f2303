"""Real Celery worker processes render print runs: progress others can see, a worker killed with
SIGKILL mid-run and its run finished by the next one, and the embedded (Redis-less) default.

The PNG format is used to kill mid-run because it is the slowest: 1,000 labels of 50 × 30 mm at
300 dpi take 5–7 s on one core here (140–200 labels/s), so there is time to see progress and to kill.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from tests import factories as f
from tests.e2e.live import read_as
from trace.lots import Lot
from trace.platform.db import make_engine, session_scope
from trace.printing import artefacts, runs
from trace.printing.models import PrintArtefact, PrintRun, PrintStatus
from trace.units import Unit

ROOT = Path(__file__).resolve().parents[2]
REDIS = os.environ.get("HYTRACE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
# How long a worker may take for a step: the two database suites share this 2-core machine in CI,
# and a step that passes in seconds alone took over 45 s there; a stuck run still fails.
WAIT = 120.0
# A queue of this run's own: two suites at once (SQLite and PostgreSQL) share one Redis.
QUEUE = f"hytrace-test-{os.getpid()}"
BASE = "https://truyxuat.example.vn"
QR = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
LEASE = 4  # seconds: a dead worker's run is free again this soon after its last report


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _queue(engine: Engine, quantity: int, fmt: str) -> int:
    with session_scope(engine) as session:
        coop = f.org(session)
        lot_id = f.harvest(session, coop, str(quantity * 2)).lot_ids[0]
        run = runs.create_run(
            session=session,
            actor=f.member(coop),
            lot_id=lot_id,
            data=runs.PrintRunCreate(quantity=quantity, format=fmt),
        )
        assert run.id is not None
        return run.id


def _state(engine: Engine, run_id: int) -> PrintRun:
    with Session(engine) as session:
        run = session.get(PrintRun, run_id)
        assert run is not None
        return run


def _registered(engine: Engine, run_id: int) -> list[str]:
    """The run's unit URIs in registration order, built here from the rows (not by the worker's code)."""
    with Session(engine) as session:
        rows = session.execute(
            select(col(Unit.serial), col(Lot.gtin), col(Lot.lot_code))
            .join(Lot, col(Lot.id) == col(Unit.lot_id))
            .where(Unit.print_run_id == run_id)
            .order_by(col(Unit.id))
        ).all()  # type: ignore[arg-type]
    return [f"{BASE}/01/{gtin}/10/{lot}/21/{serial}" for serial, gtin, lot in rows]


def _wait(what: str, until: Callable[[], bool], timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{tails}")
        time.sleep(0.05)


class Workers:
    """Starts worker processes and makes sure every one of them is gone at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, []  # type: ignore[var-annotated]

    @property
    def log_files(self) -> list[Path]:
        return [self.logs / f"worker-{n}.log" for n in range(len(self.started))]

    def start(self) -> subprocess.Popen[bytes]:
        n = len(self.started)
        out = (self.logs / f"worker-{n}.log").open("wb")
        # cwd = the repository root: ``trace`` must be ours, not the standard library's.
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "-Q",
                QUEUE,
                "-n",
                f"print-{os.getpid()}-{n}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.started:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)


@contextmanager
def _workers(env: dict[str, str], logs: Path) -> Iterator[Workers]:
    pool = Workers(env, logs)
    try:
        yield pool
    finally:
        pool.stop_all()


def _decode_png(data: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)), formats=QR)]


def test_a_run_whose_worker_is_killed_mid_run_is_finished_by_the_next_worker_with_every_code_once(
    databases, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import migrate, require

    require(_redis_up(), "Redis is not running on 127.0.0.1:6379")
    # given a database of its own (the workers are other processes) and an empty queue
    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=2)
    env = {
        **os.environ,
        "HYTRACE_DATABASE_URL": url,
        "HYTRACE_REDIS_URL": REDIS,
        "HYTRACE_PUBLIC_BASE_URL": BASE,
        "HYTRACE_PRINT_LEASE_SECONDS": str(LEASE),
        "HYTRACE_PRINT_PROGRESS_EVERY": "25",
        "HYTRACE_CELERY_QUEUE": QUEUE,
    }
    read_as(env, monkeypatch)
    from workers.app import create_celery

    client = create_celery()
    client.control.purge()
    try:
        with _workers(env, tmp_path) as pool:
            first = pool.start()
            # and a committed run of 1,000 PNG labels, sent to the workers as the API sends it
            run_id = _queue(engine, 1000, "png-50x30")
            client.send_task("labels.render_print_run", args=[run_id])
            # when the worker is killed (SIGKILL: no clean-up of any kind) once it is well into the run
            seen: set[int] = set()

            def partway() -> bool:
                run = _state(engine, run_id)
                if run.status == PrintStatus.RENDERING and 0 < run.done < run.quantity:
                    seen.add(run.done)
                return len(seen) >= 3

            _wait("progress from the first worker", partway, WAIT, pool.log_files)
            first.kill()
            first.wait(timeout=10)
            killed = _state(engine, run_id)
            assert killed.status == PrintStatus.RENDERING and 0 < killed.done < 1000, killed
            # and another worker starts
            pool.start()

            def finished() -> bool:
                run = _state(engine, run_id)
                if run.status == PrintStatus.RENDERING and 0 < run.done < run.quantity:
                    seen.add(run.done)
                return run.status not in (PrintStatus.QUEUED, PrintStatus.RENDERING)

            _wait("the run to finish on the second worker", finished, WAIT, pool.log_files)
        # then the run is done by a second attempt, with progress seen on the way
        run = _state(engine, run_id)
        assert (run.status, run.done, run.error) == (PrintStatus.DONE, 1000, None), run
        assert run.attempts >= 2
        assert len(seen) >= 3 and all(0 < done < 1000 for done in seen)
        with Session(engine) as session:
            stored = list(session.execute(select(PrintArtefact).where(PrintArtefact.print_run_id == run_id)).scalars())  # type: ignore[arg-type]
            files = [artefacts.read(session=session, artefact=one) for one in stored]
            # every unit in this database (it holds only this run): none added by the second attempt
            units = session.execute(
                select(
                    func.count(), func.count(func.distinct(Unit.serial)), func.count(func.distinct(Unit.print_run_id))
                )
            ).one()
        # exactly one file, and no serial lost or registered twice
        assert len(files) == 1 and tuple(units) == (1000, 1000, 1)
        archive = zipfile.ZipFile(io.BytesIO(files[0]))
        members = archive.namelist()
        registered = _registered(engine, run_id)
        assert len(members) == 1000 == len(set(registered))
        # each image holds exactly its own label's code (member i is registered unit i): all 1,000
        # are decoded, which takes ~2 s
        assert [_decode_png(archive.read(member)) for member in members] == [[uri] for uri in registered]
    finally:
        client.close()
        engine.dispose()


def test_the_embedded_default_renders_runs_without_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import migrate

    # given the embedded deployment: a SQLite database, no Redis (the broker is a SQLite file
    # beside the database), and a run queued before any worker ran
    home = tmp_path / "data"
    url = f"sqlite:///{home / 'hytrace.db'}"
    migrate(url)
    engine = make_engine(url, pool_size=2)
    env = {k: v for k, v in os.environ.items() if k != "HYTRACE_REDIS_URL"}
    env.update(HYTRACE_DATABASE_URL=url, HYTRACE_PUBLIC_BASE_URL=BASE, HYTRACE_CELERY_QUEUE=QUEUE)
    read_as(env, monkeypatch)  # no HYTRACE_REDIS_URL: the embedded broker
    from workers.app import broker_urls, create_celery

    assert broker_urls()[0] == f"sqla+sqlite:///{home / 'celery-broker.db'}"
    early = _queue(engine, 40, "a4-4x10")
    try:
        with _workers(env, tmp_path) as pool:
            # when a worker starts, it sends itself the run that was waiting
            pool.start()
            _wait("the waiting run", lambda: _state(engine, early).status == PrintStatus.DONE, WAIT, pool.log_files)
            # and a run queued while it runs is sent through the embedded broker, as the API sends it
            late = _queue(engine, 40, "zpl-50x30")
            client = create_celery()
            try:
                client.send_task("labels.render_print_run", args=[late])
            finally:
                client.close()
            _wait(
                "the run sent while it ran", lambda: _state(engine, late).status == PrintStatus.DONE, 30, pool.log_files
            )
        # then both are rendered, and the broker's file lies beside the database, not in the repository
        for run_id in (early, late):
            run = _state(engine, run_id)
            assert (run.done, run.attempts) == (40, 1)
        assert (home / "celery-broker.db").is_file()
        with Session(engine) as session:
            zpl = session.get(PrintArtefact, late)
            assert zpl is not None
            content = artefacts.read(session=session, artefact=zpl)
        fields = re.findall(r"\^BQ[^\^]*(?:\^FH_)?\^FDQA,(.*?)\^FS", content.decode("utf-8"))
        unescaped = [re.sub(r"_([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), field) for field in fields]
        assert unescaped == _registered(engine, late)
    finally:
        engine.dispose()
