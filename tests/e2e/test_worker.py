"""A real Celery worker process on the real Redis runs a task against committed rows."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session

from tests import factories as f
from trace.access import Actor, Role
from trace.events import verify_jobs
from trace.platform.db import make_engine, session_scope
from trace.tlog import note
from trace.transparency import keys, log

ROOT = Path(__file__).resolve().parents[2]
REDIS = os.environ.get("HYTRACE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
# A queue of this run's own: two suites at once (SQLite and PostgreSQL) share one Redis.
QUEUE = f"hytrace-test-{os.getpid()}"
ADMIN = Actor(role=Role.ADMIN, organisation_id=None, user_id=None, name="admin")


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def test_worker_verifies_the_log_of_a_committed_database(databases, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import migrate, require

    require(_redis_up(), "Redis is not running on 127.0.0.1:6379")
    # given a database of its own with committed events (the worker is another process)
    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=2)
    with session_scope(engine) as session:
        coop = f.org(session)
        f.harvest(session, coop, "10")
    env = {
        **os.environ,
        "HYTRACE_DATABASE_URL": url,
        "HYTRACE_REDIS_URL": REDIS,
        "HYTRACE_CELERY_QUEUE": QUEUE,
        "HYTRACE_TLOG_SEQUENCE_SECONDS": "0.5",
    }
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
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        monkeypatch.setenv("HYTRACE_REDIS_URL", REDIS)
        monkeypatch.setenv("HYTRACE_CELERY_QUEUE", QUEUE)
        from trace.platform.config import get_settings

        get_settings.cache_clear()
        from workers.app import create_celery

        client = create_celery()
        client.control.purge()
        # when the task is sent to the worker
        started = time.monotonic()
        report = client.send_task("ops.verify_log").get(timeout=60)
        # then the worker read the committed chain and the tables derived from it, and found them intact
        assert report["ok"] is True and report["chain"]["events"] == 1 and report["chain"]["organisations"] == 1
        assert report["derived"]["checked"]["lot"] == 1
        assert time.monotonic() - started < 60
        # and a verify job asked for by the administrator is run by the worker, its report on the job's row
        with session_scope(engine) as session:
            job_id = verify_jobs.request(session=session, actor=ADMIN).id
        client.send_task("ops.verify_job", args=[job_id])
        deadline = time.monotonic() + 60
        while True:
            with Session(engine) as session:
                job = session.get(verify_jobs.VerifyJob, job_id)
                assert job is not None
                if job.status == verify_jobs.VerifyStatus.DONE or time.monotonic() > deadline:
                    break
            time.sleep(0.2)
        assert job.status == verify_jobs.VerifyStatus.DONE and job.ok is True and job.progress == 100, job
        assert job.report and job.report["derived"]["ok"] is True
        # and, with no task sent, the worker's sequencer appended the committed event to the public log and
        # signed a checkpoint of it with the configured key
        deadline = time.monotonic() + 30
        while True:
            with Session(engine) as session:
                newest = log.latest(session=session)
            if (newest is not None and newest.size == 1) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert newest is not None and newest.size == 1
        note.open_note(newest.note, [note.Verifier(keys.signer(get_settings()).verifier_key)])
    finally:
        engine.dispose()
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
