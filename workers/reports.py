"""Building report files: glue between the domain's report jobs and the workers (thin on purpose).

Safe to run twice: a lease lets one attempt build a job at a time (workers/jobs.py drives it), and the
file is stored once, on the job's own row; a second delivery finds the job done and does nothing. A
worker killed mid-build leaves a lease that runs out; a sweep sends the job again.
"""

from __future__ import annotations

from celery import Task
from sqlalchemy import Engine
from sqlmodel import Session

from trace.platform.db import session_scope
from trace.reports import jobs
from trace.reports.models import ReportJob
from workers import jobs as driver
from workers.app import app


def _prepare(_: Session, job: ReportJob) -> int:
    return job.id  # type: ignore[return-value]


def _build(job_id: int, progress: driver.Progress, engine: Engine | None) -> jobs.Built:
    # Read as the requester may read today, in a read-only transaction of its own (progress is written
    # by the driver in others).
    with session_scope(engine, write=False) as session:
        job = session.get(ReportJob, job_id)
        assert job is not None
        return jobs.build(session=session, job=job, on_progress=progress)


def _heartbeat(session: Session, job_id: int, token: str, progress: int) -> bool:
    return jobs.heartbeat(session=session, job_id=job_id, token=token, progress=progress)


def _store(session: Session, job_id: int, token: str, built: jobs.Built) -> bool:
    return jobs.finish(session=session, job_id=job_id, token=token, built=built)


def _task() -> Task:
    return build  # type: ignore[return-value]


REPORT = driver.register(
    driver.Kind(
        name="report",
        lease=jobs.LEASE,
        lease_seconds=lambda: jobs.LEASE_SECONDS,
        prepare=_prepare,
        work=_build,
        heartbeat=_heartbeat,
        store=_store,
        task=_task,
    )
)


def build_report(job_id: int, *, engine: Engine | None = None) -> str:
    """Build one job if it is ours to build; returns what happened (done, skipped, lost, failed)."""
    return driver.attempt(REPORT, job_id, engine=engine)


@app.task(name="reports.build", ignore_result=True)
def build(job_id: int) -> str:
    """Build a report job's file and store it (idempotent)."""
    return build_report(job_id)
