"""A whole verify-log as a job: asked for by the province's administrator, run by a worker with its
progress recorded, its report kept on the job's row.

Leased by the one protocol of trace/platform/leases.py (as print runs and reports are): only the attempt
holding a live lease records progress or stores the report; a worker killed mid-verify leaves a lease that
runs out, and the job is claimed again from the start (a verify changes nothing, so it can always rerun).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, col, select

from trace.access import Actor, require_admin
from trace.errors import NotFound
from trace.events import derived
from trace.platform import leases
from trace.platform.sqltypes import enum_type
from trace.platform.timeutil import utcnow

LEASE_SECONDS = 300


class VerifyStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # the report says whether the log verified (ok) or where it differs
    FAILED = "failed"  # the verify itself could not run


class VerifyJob(SQLModel, table=True):
    __tablename__ = "verify_job"

    id: int | None = Field(default=None, primary_key=True)
    requested_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    status: VerifyStatus = Field(default=VerifyStatus.QUEUED, sa_type=enum_type(VerifyStatus, 12), index=True)
    progress: int = Field(default=0, ge=0, le=100)
    ok: bool | None = None
    report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = Field(default=None, max_length=500)
    attempts: int = 0
    lease_token: str | None = Field(default=None, max_length=32)
    lease_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class VerifyJobPublic(SQLModel):
    id: int
    status: VerifyStatus
    progress: int
    ok: bool | None
    report: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


LEASE = leases.Lease(
    model=VerifyJob,
    queued=VerifyStatus.QUEUED,
    working=VerifyStatus.RUNNING,
    done=VerifyStatus.DONE,
    failed=VerifyStatus.FAILED,
    progress="progress",
    started="started_at",
)


def request(*, session: Session, actor: Actor) -> VerifyJob:
    """Queue a whole verify (administrators only); one already queued or running is returned instead of a
    second one (a verify is read-only: two asked at the very same moment may both run, which only costs
    twice). The caller sends it after commit."""
    require_admin(actor)
    running = session.exec(
        select(VerifyJob)
        .where(col(VerifyJob.status).in_([VerifyStatus.QUEUED, VerifyStatus.RUNNING]))
        .order_by(col(VerifyJob.id).desc())
    ).first()
    if running is not None:
        return running
    job = VerifyJob(requested_by_user_id=actor.user_id)
    session.add(job)
    session.flush()
    return job


def get(*, session: Session, actor: Actor, job_id: int) -> VerifyJob:
    require_admin(actor)
    job = session.get(VerifyJob, job_id)
    if job is None:
        raise NotFound(f"Verify job {job_id} not found")
    return job


def recent(*, session: Session, actor: Actor, limit: int = 20) -> list[VerifyJob]:
    require_admin(actor)
    return list(session.exec(select(VerifyJob).order_by(col(VerifyJob.id).desc()).limit(limit)))


def run(*, session: Session, on_progress: Callable[[int], None]) -> derived.LogReport:
    """The verify itself, in the caller's (read-only) transaction."""
    return derived.verify_log(session=session, on_progress=on_progress)


def heartbeat(*, session: Session, job_id: int, token: str, progress: int) -> bool:
    return leases.heartbeat(
        session=session,
        lease=LEASE,
        job_id=job_id,
        token=token,
        progress=max(0, min(99, progress)),
        lease_seconds=LEASE_SECONDS,
    )


def finish(*, session: Session, job_id: int, token: str, report: derived.LogReport) -> bool:
    return leases.finish(
        session=session,
        lease=LEASE,
        job_id=job_id,
        token=token,
        progress=100,
        ok=report.ok,
        report={"chain": report.chain, "derived": report.derived},
    )
