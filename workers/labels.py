"""Rendering print runs: glue between the domain's print jobs and labels/ (thin on purpose).

Safe to run twice: the codes were registered when the run was created, a lease lets one attempt
render at a time, and the file is stored once per run. A worker killed mid-run leaves a lease that
runs out; the sweeper (or the broker redelivering the unacknowledged task) starts it again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict

from celery.signals import worker_ready
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

import labels
from trace.platform.config import get_settings
from trace.platform.db import session_scope
from trace.printing import jobs
from workers.app import app

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another attempt took the run over, or the run is no longer rendering."""


def render_run(run_id: int, *, engine: Engine | None = None) -> str:
    """Render one run if it is ours to render; returns what happened (done, skipped, lost, failed)."""
    settings = get_settings()
    token = jobs.new_token()
    with session_scope(engine) as session:
        run = jobs.claim(session=session, run_id=run_id, token=token, lease_seconds=settings.print_lease_seconds)
        if run is None:
            return "skipped"
        spec = labels.FORMATS[run.format]
        data = [labels.LabelData(**asdict(label)) for label in jobs.labels_for(session=session, run=run)]

    def progress(done: int) -> None:
        with session_scope(engine) as session:
            if not jobs.heartbeat(
                session=session, run_id=run_id, token=token, done=done, lease_seconds=settings.print_lease_seconds
            ):
                raise LeaseLost

    try:
        content = labels.render(data, format=spec.name, on_progress=progress, every=settings.print_progress_every)
    except LeaseLost:
        return "lost"
    except SQLAlchemyError:
        # The database, not the labels: transient. The lease runs out and a sweep sends the run again.
        raise
    except Exception as error:  # a fault in rendering itself: retrying would render the same data again
        log.exception("print run %s failed", run_id)
        with session_scope(engine) as session:
            jobs.fail(session=session, run_id=run_id, token=token, error=f"{type(error).__name__}: {error}")
        return "failed"
    with session_scope(engine) as session:
        stored = jobs.finish(
            session=session,
            run_id=run_id,
            token=token,
            content=content,
            done=len(data),
            media_type=spec.media_type,
            filename=f"hytrace-print-run-{run_id}.{spec.extension}",
        )
    return "done" if stored else "lost"


@app.task(name="labels.render_print_run", ignore_result=True)
def render_print_run(run_id: int) -> str:
    """Render a print run's labels and store the file (idempotent)."""
    return render_run(run_id)


def enqueue(run_id: int) -> None:
    """Send a run to the workers (after the commit that created it). A broker that is down is not
    the user's error: the run stays queued and the sweeper sends it when a worker runs."""
    try:
        render_print_run.apply_async(args=[run_id], retry=False)
    except Exception:  # kombu raises several kinds for an unreachable broker
        log.warning("could not reach the broker; print run %s stays queued for the sweeper", run_id)


def sweep(engine: Engine | None = None) -> list[int]:
    """Send every run that should be rendering but is not: queued longer than a lease (its message
    was lost) or rendering under a lease that ran out (its worker died)."""
    with session_scope(engine, write=False) as session:
        due = jobs.due(session=session, queued_for_seconds=get_settings().print_lease_seconds)
    for run_id in due:
        enqueue(run_id)
    return due


def _sweep_forever(stop: threading.Event) -> None:
    interval = max(5, get_settings().print_lease_seconds // 2)
    while not stop.wait(interval):
        try:
            sweep()
        except Exception:
            log.exception("print-run sweep failed")


@worker_ready.connect
def _on_worker_ready(**_: object) -> None:
    # On start, queued runs are sent at once (e.g. the demo's run, or runs queued while no worker
    # ran); then a sweep every half lease picks up runs whose worker died.
    with session_scope(write=False) as session:
        for run_id in jobs.due(session=session, queued_for_seconds=0):
            enqueue(run_id)
    threading.Thread(target=_sweep_forever, args=(threading.Event(),), name="print-sweeper", daemon=True).start()
