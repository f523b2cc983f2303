"""Operator endpoints: verify the tamper-evident log and everything derived from it.

One organisation's chain is checked in the request; the whole log (every chain, then every derived table
recomputed from the events) runs as a worker job with its progress: POST /admin/verify-log/jobs, then
GET /admin/verify-log/jobs/{id} until it is done.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response

from api.deps import CurrentActor, DbId, JobsDep, SessionDep
from trace.access import require_admin
from trace.errors import RuleViolation
from trace.events import chain, verify_jobs
from trace.events.verify_jobs import VerifyJobPublic

router = APIRouter(prefix="/admin", tags=["admin"])
JOBS = "/api/v1/admin/verify-log/jobs"


@router.get("/verify-log")
def verify_log(session: SessionDep, actor: CurrentActor, organisation_id: int | None = None) -> dict[str, Any]:
    """Recompute one organisation's hash chain; names its first broken link if any."""
    require_admin(actor)
    if organisation_id is None:
        raise RuleViolation(
            f"A whole verify (every chain and the tables derived from them) runs as a job: POST {JOBS}",
            code="verify_is_a_job",
            jobs=JOBS,
        )
    return asdict(chain.verify(session=session, organisation_id=organisation_id))


@router.post("/verify-log/jobs", status_code=202, response_model=VerifyJobPublic)
def start_verify(session: SessionDep, actor: CurrentActor, to_workers: JobsDep, response: Response) -> Any:
    """Queue a whole verify (or answer the one already queued or running); a worker runs it."""
    job = verify_jobs.request(session=session, actor=actor)
    to_workers.add("verify_log", job.id)  # sent after the commit
    response.headers["Location"] = f"{JOBS}/{job.id}"
    return job


@router.get("/verify-log/jobs", response_model=list[VerifyJobPublic])
def list_verifies(session: SessionDep, actor: CurrentActor) -> Any:
    """The latest verify jobs, newest first."""
    return verify_jobs.recent(session=session, actor=actor)


@router.get("/verify-log/jobs/{job_id}", response_model=VerifyJobPublic)
def get_verify(session: SessionDep, actor: CurrentActor, job_id: DbId) -> Any:
    """A verify job: its status and progress, and once done its report (ok, or the first row that differs)."""
    return verify_jobs.get(session=session, actor=actor, job_id=job_id)
