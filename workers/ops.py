"""Operational tasks: verify-log, whole (chains and derived tables), as a leased job with its progress."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import Task
from sqlalchemy import Engine
from sqlmodel import Session

from trace.events import derived, verify_jobs
from trace.events.verify_jobs import VerifyJob
from trace.platform.db import session_scope
from workers import jobs as driver
from workers.app import app


def _prepare(_: Session, job: VerifyJob) -> int:
    return job.id  # type: ignore[return-value]


def _verify(job_id: int, progress: driver.Progress, engine: Engine | None) -> derived.LogReport:
    # One read-only transaction: every table is read as of one moment (progress is written in others).
    with session_scope(engine, write=False) as session:
        return verify_jobs.run(session=session, on_progress=progress)


def _heartbeat(session: Session, job_id: int, token: str, progress: int) -> bool:
    return verify_jobs.heartbeat(session=session, job_id=job_id, token=token, progress=progress)


def _store(session: Session, job_id: int, token: str, report: derived.LogReport) -> bool:
    return verify_jobs.finish(session=session, job_id=job_id, token=token, report=report)


def _task() -> Task:
    return verify_job  # type: ignore[return-value]


VERIFY = driver.register(
    driver.Kind(
        name="verify_log",
        lease=verify_jobs.LEASE,
        lease_seconds=lambda: verify_jobs.LEASE_SECONDS,
        prepare=_prepare,
        work=_verify,
        heartbeat=_heartbeat,
        store=_store,
        task=_task,
    )
)


def run_verify(job_id: int, *, engine: Engine | None = None) -> str:
    """One attempt at a verify job if it is ours; what happened (done, skipped, lost, failed)."""
    return driver.attempt(VERIFY, job_id, engine=engine)


@app.task(name="ops.verify_job", ignore_result=True)
def verify_job(job_id: int) -> str:
    """Run a queued verify-log job and store its report (idempotent)."""
    return run_verify(job_id)


@app.task(name="ops.verify_log")
def verify_log() -> dict[str, Any]:
    """Verify the whole log (e.g. nightly from a beat schedule) and return the report."""
    with session_scope(write=False) as session:
        return asdict(derived.verify_log(session=session))
