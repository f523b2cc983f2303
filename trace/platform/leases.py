"""One lease protocol for work a worker does outside a request: print runs and report jobs.

A job is leased: the attempt that claims it writes a random token and a lease time, renews the lease
with each piece of progress, and only the holder of a live lease may record progress, store the result
or mark the job failed. Each step is one conditional UPDATE, so two workers (or a redelivered task and
its first delivery) cannot both hold a job. A worker killed mid-job leaves a lease that runs out; the job
is then due again (``due``) and claimed by the next attempt.

A table takes part by having ``id``, ``status``, ``lease_token``, ``lease_until``, ``attempts``,
``created_at`` and ``finished_at`` columns and a progress column; ``Lease`` names its states.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlmodel import Session, SQLModel

from trace.platform.timeutil import utcnow


@dataclass(frozen=True)
class Lease:
    """How a table of jobs is leased: its model, the states a job passes through, its progress column."""

    model: type[SQLModel]
    queued: StrEnum
    working: StrEnum
    done: StrEnum
    failed: StrEnum
    progress: str  # the column progress is recorded in (reset to 0 by each claim)
    started: str | None = None  # a column stamped with the time of each claim, if the table keeps one

    def column(self, name: str) -> Any:
        return getattr(self.model, name)


def new_token() -> str:
    """A lease token naming one attempt at a job."""
    return secrets.token_hex(8)


def _ours(lease: Lease, job_id: int, token: str) -> Any:
    return and_(
        lease.column("id") == job_id,
        lease.column("lease_token") == token,
        lease.column("status") == lease.working,
    )


def claim(*, session: Session, lease: Lease, job_id: int, token: str, lease_seconds: int) -> Any | None:
    """Take the job if it is queued or its last attempt's lease ran out; the job, or None when it is not
    this attempt's (finished, cancelled, unknown, or another attempt holds a live lease)."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": lease.working,
        "lease_token": token,
        "lease_until": now + timedelta(seconds=lease_seconds),
        "attempts": lease.column("attempts") + 1,
        lease.progress: 0,
    }
    if lease.started:
        values[lease.started] = now
    taken = session.execute(
        update(lease.model)
        .where(
            lease.column("id") == job_id,
            or_(
                lease.column("status") == lease.queued,
                and_(lease.column("status") == lease.working, lease.column("lease_until") < now),
            ),
        )
        .values(**values)
    ).rowcount  # type: ignore[attr-defined]
    if not taken:
        return None
    return session.get(lease.model, job_id, populate_existing=True)


def heartbeat(*, session: Session, lease: Lease, job_id: int, token: str, progress: int, lease_seconds: int) -> bool:
    """Record progress and renew the lease; False when the job is no longer this attempt's."""
    return bool(
        session.execute(
            update(lease.model)
            .where(_ours(lease, job_id, token))
            .values(**{lease.progress: progress}, lease_until=utcnow() + timedelta(seconds=lease_seconds))
        ).rowcount  # type: ignore[attr-defined]
    )


def finish(*, session: Session, lease: Lease, job_id: int, token: str, **values: Any) -> bool:
    """Mark the job done with ``values`` (its result), if the lease is still this attempt's; False otherwise.
    The caller's transaction holds the update, so anything it stores beside it is kept only if this holds."""
    return bool(
        session.execute(
            update(lease.model)
            .where(_ours(lease, job_id, token))
            .values(status=lease.done, finished_at=utcnow(), lease_until=None, **values)
        ).rowcount  # type: ignore[attr-defined]
    )


def fail(*, session: Session, lease: Lease, job_id: int, token: str, error: str) -> bool:
    """Mark the job failed (a fault a retry will not cure), if the lease is this attempt's."""
    return bool(
        session.execute(
            update(lease.model)
            .where(_ours(lease, job_id, token))
            .values(status=lease.failed, error=error[:500], finished_at=utcnow(), lease_until=None)
        ).rowcount  # type: ignore[attr-defined]
    )


def due(*, session: Session, lease: Lease, queued_for_seconds: int | None = 0) -> list[int]:
    """Jobs a worker should (re)start: those whose attempt's lease ran out (a worker killed mid-job), and
    queued ones older than ``queued_for_seconds`` (None: no queued ones)."""
    now = utcnow()
    status = lease.column("status")
    dead = and_(status == lease.working, lease.column("lease_until") < now)
    if queued_for_seconds is not None:
        waited = lease.column("created_at") <= now - timedelta(seconds=queued_for_seconds)
        dead = or_(dead, and_(status == lease.queued, waited))
    return list(session.execute(select(lease.column("id")).where(dead).order_by(lease.column("id"))).scalars())
