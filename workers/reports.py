"""Building report files: glue between the domain's report jobs and the workers (thin on purpose).

Safe to run twice: a lease lets one attempt build a job at a time, and the file is stored once, on the
job's own row; a second delivery finds the job done and does nothing. A worker killed mid-build leaves a
lease that runs out; a sweep sends the job again.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from trace.errors import DomainError
from trace.platform.db import session_scope
from trace.reports import jobs
from trace.reports.models import ReportJob
from workers.app import app

log = logging.getLogger(__name__)
SWEEP_SECONDS = 60


class LeaseLost(Exception):
    """Another attempt took the job over, or it is no longer building."""


def build_report(job_id: int, *, engine: Engine | None = None) -> str:
    """Build one job if it is ours to build; returns what happened (done, skipped, lost, failed)."""
    token = jobs.new_token()
    with session_scope(engine) as session:
        if jobs.claim(session=session, job_id=job_id, token=token) is None:
            return "skipped"

    def progress(done: int) -> None:
        with session_scope(engine) as session:
            if not jobs.heartbeat(session=session, job_id=job_id, token=token, progress=done):
                raise LeaseLost

    try:
        with session_scope(engine, write=False) as session:
            job = session.get(ReportJob, job_id)
            assert job is not None
            built = jobs.build(session=session, job=job, on_progress=progress)
    except LeaseLost:
        return "lost"
    except SQLAlchemyError:
        raise  # the database, not the report: transient; the lease runs out and the job is claimed again
    except Exception as error:  # the requester lost the right, or a fault building the file: retrying won't cure it
        if not isinstance(error, DomainError):
            log.exception("report %s failed", job_id)
        with session_scope(engine) as session:
            jobs.fail(session=session, job_id=job_id, token=token, error=f"{type(error).__name__}: {error}")
        return "failed"
    with session_scope(engine) as session:
        stored = jobs.finish(session=session, job_id=job_id, token=token, built=built)
    return "done" if stored else "lost"


@app.task(name="reports.build", ignore_result=True)
def build(job_id: int) -> str:
    """Build a report job's file and store it (idempotent)."""
    return build_report(job_id)


def enqueue(job_id: int) -> None:
    """Send a job to the workers (after the commit that created it). A broker that is down is not the
    user's error: the job stays queued and a sweep sends it."""
    try:
        build.apply_async(args=[job_id], retry=False)
    except Exception:  # kombu raises several kinds for an unreachable broker
        log.warning("could not reach the broker; report %s stays queued", job_id)


def sweep(engine: Engine | None = None) -> list[int]:
    """Send every job that should be building but is not: queued longer than a minute (its message was
    lost, or the broker was down when it was asked for) or building under a lease that ran out."""
    with session_scope(engine, write=False) as session:
        waiting = jobs.due(session=session, queued_for_seconds=SWEEP_SECONDS)
    for job_id in waiting:
        enqueue(job_id)
    return waiting


def _sweep_forever(stop: threading.Event) -> None:
    while not stop.wait(SWEEP_SECONDS):
        try:
            sweep()
        except Exception:
            log.exception("report sweep failed")


@worker_ready.connect
def _on_worker_ready(**_: object) -> None:
    # Jobs queued while no worker ran are sent at once; then a sweep a minute picks up lost ones.
    with session_scope(write=False) as session:
        waiting = jobs.due(session=session)
    for job_id in waiting:
        enqueue(job_id)
    threading.Thread(target=_sweep_forever, args=(threading.Event(),), name="report-sweeper", daemon=True).start()
