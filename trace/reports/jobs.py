"""Report jobs: asked for on a page, built by a worker with its progress recorded, downloaded by the
requester's organisation (or the province's administrator).

A job is leased by the one protocol of trace/platform/leases.py, as a print run is: only the attempt
holding a live lease may store the file, which is written once, on the job's own row. A second delivery
of the task finds the job done (or leased) and does nothing; a worker killed mid-build leaves a lease
that runs out and the job is claimed again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import model_validator
from sqlmodel import Field, Session, SQLModel, col, select

from trace.access import Actor, Role
from trace.auth import actor_for_user
from trace.errors import Conflict, NotFound, RuleViolation
from trace.idempotency import insert_once
from trace.platform import leases
from trace.reports import export
from trace.reports.dashboard import (
    held_designations,
    holder_dashboard,
    province_dashboard,
    require_province,
)
from trace.reports.models import ReportFormat, ReportJob, ReportStatus
from trace.reports.periods import Period, make_period
from trace.users import User

LEASE_SECONDS = 300
MEDIA = {
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.ZIP: "application/zip",
}


class ReportIn(SQLModel):
    scope: Literal["province", "holder"] = "province"
    period_start: date
    period_end: date
    format: ReportFormat = ReportFormat.XLSX
    section: str | None = Field(default=None, max_length=30)

    @model_validator(mode="after")
    def _section(self) -> ReportIn:
        if self.format == ReportFormat.CSV and self.section not in export.SECTION_CODES:
            raise ValueError("a CSV report is one section: choose it")
        if self.format != ReportFormat.CSV:
            self.section = None
        return self


def _scope_org(session: Session, actor: Actor, scope: str) -> int | None:
    """Who the report belongs to: None for the province's, the holder for a holder's (access checked here)."""
    if scope == "province":
        require_province(actor)
        return None
    org, _ = held_designations(session=session, actor=actor)
    return org


def _replay(session: Session, actor: Actor, key: str, data: ReportIn) -> ReportJob | None:
    found = session.execute(select(ReportJob).where(col(ReportJob.request_key) == key)).scalars().first()
    if found is None:
        return None
    same = (
        found.requested_by_user_id,
        found.scope,
        found.period_start,
        found.period_end,
        found.format,
        found.section,
    ) == (actor.user_id, data.scope, data.period_start, data.period_end, data.format, data.section)
    if not same:
        raise Conflict("This once-only key was used for another report", code="idempotency_key_reused")
    return found


def request_report(*, session: Session, actor: Actor, data: ReportIn, idempotency_key: str | None = None) -> ReportJob:
    """Queue a report of a period (the province's for its administrator, a holder's for the holder); the
    same form sent twice asks once. The caller sends the job to the workers after its commit."""
    make_period(data.period_start, data.period_end)
    org = _scope_org(session, actor, data.scope)
    if data.scope == "holder" and data.section in ("organisations_by_kind", "organisations_by_commune", "growth"):
        raise RuleViolation("A designation holder's report has no such section", code="section_not_in_scope")
    if idempotency_key and (found := _replay(session, actor, idempotency_key, data)):
        return found
    job = ReportJob(
        organisation_id=org,
        requested_by_user_id=actor.user_id,
        scope=data.scope,
        period_start=data.period_start,
        period_end=data.period_end,
        format=data.format,
        section=data.section,
        request_key=idempotency_key or None,
    )
    if not idempotency_key:
        session.add(job)
        session.flush()
        return job
    key = idempotency_key
    return insert_once(session=session, row=job, replay=lambda: _replay(session, actor, key, data))


def _mine(actor: Actor, job: ReportJob) -> bool:
    if actor.is_admin:
        return True
    return (
        job.organisation_id is not None
        and actor.organisation_id == job.organisation_id
        and actor.role in (Role.ORG_ADMIN, Role.MEMBER)
    )


def get_job(*, session: Session, actor: Actor, job_id: int) -> ReportJob:
    """A job of the actor's organisation (or any, for the province's administrator); others' are not found."""
    job = session.get(ReportJob, job_id)
    if job is None or not _mine(actor, job):
        raise NotFound(f"Report {job_id} not found")
    return job


def list_jobs(*, session: Session, actor: Actor, limit: int = 20) -> list[ReportJob]:
    """The latest reports the actor may see."""
    query = select(ReportJob).order_by(col(ReportJob.id).desc()).limit(limit)
    if not actor.is_admin:
        if actor.organisation_id is None or actor.role not in (Role.ORG_ADMIN, Role.MEMBER):
            return []
        query = query.where(col(ReportJob.organisation_id) == actor.organisation_id)
    return list(session.execute(query).scalars())


def report_file(*, session: Session, actor: Actor, job_id: int) -> ReportJob:
    """A finished job with its file, for whoever may see the job."""
    job = get_job(session=session, actor=actor, job_id=job_id)
    if job.status != ReportStatus.DONE or job.content is None:
        raise Conflict("This report is not ready yet", code="report_not_ready")
    return job


# --------------------------------------------------------------------------- the worker's steps


@dataclass(frozen=True)
class Built:
    content: bytes
    filename: str
    media_type: str


LEASE = leases.Lease(
    model=ReportJob,
    queued=ReportStatus.QUEUED,
    working=ReportStatus.BUILDING,
    done=ReportStatus.DONE,
    failed=ReportStatus.FAILED,
    progress="progress",
)
new_token = leases.new_token


def claim(*, session: Session, job_id: int, token: str, lease_seconds: int = LEASE_SECONDS) -> ReportJob | None:
    """Take the job if it is queued or its builder's lease ran out; None when it is not ours to build."""
    return leases.claim(session=session, lease=LEASE, job_id=job_id, token=token, lease_seconds=lease_seconds)  # type: ignore[no-any-return]


def heartbeat(*, session: Session, job_id: int, token: str, progress: int, lease_seconds: int = LEASE_SECONDS) -> bool:
    """Record progress (0-99: 100 is the finished file) and renew the lease; False when the job is no longer ours."""
    return leases.heartbeat(
        session=session,
        lease=LEASE,
        job_id=job_id,
        token=token,
        progress=max(0, min(99, progress)),
        lease_seconds=lease_seconds,
    )


def finish(*, session: Session, job_id: int, token: str, built: Built) -> bool:
    """Store the file on the job and mark it done, if the lease is still ours (one file per job)."""
    return leases.finish(
        session=session,
        lease=LEASE,
        job_id=job_id,
        token=token,
        progress=100,
        content=built.content,
        size=len(built.content),
        filename=built.filename,
        media_type=built.media_type,
    )


def fail(*, session: Session, job_id: int, token: str, error: str) -> None:
    """Mark the job failed (a fault a retry will not cure), if the lease is ours."""
    leases.fail(session=session, lease=LEASE, job_id=job_id, token=token, error=error)


def due(*, session: Session, queued_for_seconds: int = 0) -> list[int]:
    """Jobs a worker should (re)start: queued ones older than ``queued_for_seconds``, and those whose
    builder's lease ran out."""
    return leases.due(session=session, lease=LEASE, queued_for_seconds=queued_for_seconds)


def build(*, session: Session, job: ReportJob, on_progress: Callable[[int], None]) -> Built:
    """The job's file, read as its requester is allowed today (a right lost since is refused)."""
    user = session.get(User, job.requested_by_user_id) if job.requested_by_user_id else None
    if user is None or not user.active:
        raise NotFound("The person who asked for this report is no longer a user")
    actor = actor_for_user(user)
    period = Period(job.period_start, job.period_end)
    if job.scope == "province":
        found = province_dashboard(session=session, actor=actor, period=period, on_progress=on_progress)
    else:
        found = holder_dashboard(session=session, actor=actor, period=period, on_progress=on_progress)
    parts = export.sections(found)
    stem = f"bao-cao-truy-xuat-{job.period_start:%Y%m%d}-{job.period_end:%Y%m%d}"
    if job.format == ReportFormat.XLSX:
        content = export.to_xlsx(parts)
    elif job.format == ReportFormat.ZIP:
        content = export.to_zip(parts)
    else:
        chosen = [p for p in parts if p.code == job.section]
        if not chosen:
            raise RuleViolation("This report has no such section", code="section_not_in_scope")
        content, stem = export.to_csv(chosen[0]), f"{stem}-{chosen[0].filename.removesuffix('.csv')}"
    on_progress(95)
    return Built(content, f"{stem}.{job.format.value}", MEDIA[job.format])
