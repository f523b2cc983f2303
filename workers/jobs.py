"""The one driver for leased jobs (print runs, reports): run one attempt, send jobs, sweep lost ones.

Each kind of job says how to prepare its work from the claimed row, do it (reporting progress) and
store the result; the driver holds the lease protocol of trace/platform/leases.py around those steps,
each step its own transaction. Sending never fails the caller and never waits long: a broker that is
down leaves the job queued, and the sweeper of every running worker sends it once the broker's queue
is empty again (a queued job older than a sweep, with nothing waiting in the queue, lost its message).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Task
from celery.signals import worker_ready
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from trace.errors import DomainError
from trace.platform import leases
from trace.platform.config import get_settings
from trace.platform.db import session_scope
from workers.app import app

log = logging.getLogger(__name__)
Progress = Callable[[int], None]
# A job queued this recently may still be on its way to the broker (sent just after its commit, or taken
# by a worker that has not claimed it yet): a sweep leaves it alone.
IN_FLIGHT_SECONDS = 2


class LeaseLost(Exception):
    """Another attempt took the job over, or it is no longer being worked on."""


@dataclass(frozen=True)
class Kind:
    """One kind of leased job and the steps of an attempt at it."""

    name: str  # how senders, logs and the sweeper name it ("print_run", "report")
    lease: leases.Lease
    lease_seconds: Callable[[], int]
    # In the claim's transaction: what the work needs, read from the claimed row.
    prepare: Callable[[Session, Any], Any]
    # Outside any transaction of the driver's: the work itself (it may open read-only sessions).
    work: Callable[[Any, Progress, Engine | None], Any]
    # In one transaction each: record progress and renew the lease / store the result, if the lease is
    # still this attempt's (False: it was lost). Arguments: session, job id, token, progress or result.
    heartbeat: Callable[[Session, int, str, int], bool]
    store: Callable[[Session, int, str, Any], bool]
    task: Callable[[], Task]  # the Celery task that runs an attempt (looked up late: tasks name their kind)


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def attempt(kind: Kind, job_id: int, *, engine: Engine | None = None) -> str:
    """One attempt at a job if it is ours to do; what happened: done, skipped, lost or failed."""
    token = leases.new_token()
    seconds = kind.lease_seconds()
    with session_scope(engine) as session:
        row = leases.claim(session=session, lease=kind.lease, job_id=job_id, token=token, lease_seconds=seconds)
        if row is None:
            return "skipped"
        prepared = kind.prepare(session, row)

    def progress(done: int) -> None:
        with session_scope(engine) as session:
            if not kind.heartbeat(session, job_id, token, done):
                raise LeaseLost

    try:
        result = kind.work(prepared, progress, engine)
    except LeaseLost:
        return "lost"
    except SQLAlchemyError:
        raise  # the database, not the job: transient; the lease runs out and a sweep sends the job again
    except Exception as error:  # a refusal or a fault in the work itself: retrying would do the same again
        if not isinstance(error, DomainError):
            log.exception("%s %s failed", kind.name, job_id)
        with session_scope(engine) as session:
            leases.fail(
                session=session, lease=kind.lease, job_id=job_id, token=token, error=f"{type(error).__name__}: {error}"
            )
        return "failed"
    with session_scope(engine) as session:
        stored = kind.store(session, job_id, token, result)
    return "done" if stored else "lost"


def send(kind: str, job_id: int) -> bool:
    """Send a job to the workers (after the commit that made it); False when the broker could not be
    reached. That is not the caller's error: the job stays queued and a sweep sends it. Sending waits
    at most the broker's connect timeout (no retries: see workers/app.py)."""
    try:
        KINDS[kind].task().apply_async(args=[job_id], retry=False)
        return True
    except Exception:  # kombu raises several kinds for an unreachable broker
        log.warning("could not reach the broker; %s %s stays queued for the sweeper", kind, job_id)
        return False


def waiting_messages() -> int | None:
    """How many messages wait in this instance's queue; None when the broker cannot be reached."""
    try:
        with app.connection_for_write() as connection:
            declared = connection.default_channel.queue_declare(queue=get_settings().celery_queue)
            return int(declared.message_count)
    except Exception:
        return None


def sweep(engine: Engine | None = None, *, at_start: bool = False) -> dict[str, list[int]]:
    """Send every job that should be running but is not, by kind: those whose attempt's lease ran out
    (its worker died), and queued ones whose message was lost. A queued job's message may be waiting in
    the broker's queue, so queued jobs are sent only when the queue is empty: then one queued for more
    than a moment (IN_FLIGHT_SECONDS) was never sent (the broker was down) or its message is gone. At a
    worker's start, every queued job is sent (jobs asked for while no worker ran)."""
    waiting = waiting_messages()
    if waiting is None:
        return {}  # the broker is down: nothing can be sent; the next sweep tries again
    queued_for = None if waiting else 0 if at_start else IN_FLIGHT_SECONDS
    with session_scope(engine, write=False) as session:
        found = {
            name: leases.due(session=session, lease=kind.lease, queued_for_seconds=queued_for)
            for name, kind in KINDS.items()
        }
    for name, ids in found.items():
        for job_id in ids:
            send(name, job_id)
    return found


def _sweep_forever(stop: threading.Event) -> None:
    while not stop.wait(get_settings().job_sweep_seconds):
        try:
            sweep()
        except Exception:
            log.exception("job sweep failed")


@worker_ready.connect
def _on_worker_ready(**_: object) -> None:
    # Jobs queued while no worker ran are sent at once (e.g. the demo's print run); then a sweep every
    # job_sweep_seconds picks up jobs whose message was lost or whose worker died.
    try:
        sweep(at_start=True)
    except Exception:
        log.exception("job sweep at start failed")
    threading.Thread(target=_sweep_forever, args=(threading.Event(),), name="job-sweeper", daemon=True).start()
