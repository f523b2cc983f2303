"""Rendering print runs: glue between the domain's print jobs and labels/ (thin on purpose).

Safe to run twice: the codes were registered when the run was created, a lease lets one attempt
render at a time (workers/jobs.py drives it), and the file is stored once per run. A worker killed
mid-run leaves a lease that runs out; the sweeper starts the run again.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from typing import IO

from celery import Task
from sqlalchemy import Engine
from sqlmodel import Session

import labels
from trace.platform.config import get_settings
from trace.printing import jobs
from trace.printing.models import PrintRun
from workers import jobs as driver
from workers.app import app


@dataclass(frozen=True)
class _Labels:
    run_id: int
    spec: labels.Format
    data: list[labels.LabelData]


@dataclass(frozen=True)
class _File:
    spec: labels.Format
    done: int
    content: IO[bytes]  # a temporary file, already unlinked: closing it (or losing it) frees its space


def _prepare(session: Session, run: PrintRun) -> _Labels:
    data = [labels.LabelData(**asdict(label)) for label in jobs.labels_for(session=session, run=run)]
    return _Labels(run.id, labels.FORMATS[run.format], data)  # type: ignore[arg-type]


def _render(job: _Labels, progress: driver.Progress, _: Engine | None) -> _File:
    every = get_settings().print_progress_every
    # Written to disk as it is made, read back a chunk at a time when stored: the run's size never
    # sets the worker's memory (a 100,000-label roll is ~200 MB of PDF).
    content = tempfile.TemporaryFile(prefix="hytrace-print-run-")
    try:
        labels.render_to(job.data, content, format=job.spec.name, on_progress=progress, every=every)
    except BaseException:
        content.close()
        raise
    content.seek(0)
    return _File(job.spec, len(job.data), content)


def _store(session: Session, run_id: int, token: str, rendered: _File) -> bool:
    with rendered.content:
        return jobs.finish(
            session=session,
            run_id=run_id,
            token=token,
            content=rendered.content,
            done=rendered.done,
            media_type=rendered.spec.media_type,
            filename=f"hytrace-print-run-{run_id}.{rendered.spec.extension}",
        )


def _heartbeat(session: Session, run_id: int, token: str, done: int) -> bool:
    seconds = get_settings().print_lease_seconds
    return jobs.heartbeat(session=session, run_id=run_id, token=token, done=done, lease_seconds=seconds)


def _task() -> Task:
    return render_print_run  # type: ignore[return-value]


PRINT_RUN = driver.register(
    driver.Kind(
        name="print_run",
        lease=jobs.LEASE,
        lease_seconds=lambda: get_settings().print_lease_seconds,
        prepare=_prepare,
        work=_render,
        heartbeat=_heartbeat,
        store=_store,
        task=_task,
    )
)


def render_run(run_id: int, *, engine: Engine | None = None) -> str:
    """Render one run if it is ours to render; returns what happened (done, skipped, lost, failed)."""
    return driver.attempt(PRINT_RUN, run_id, engine=engine)


@app.task(name="labels.render_print_run", ignore_result=True)
def render_print_run(run_id: int) -> str:
    """Render a print run's labels and store the file (idempotent)."""
    return render_run(run_id)
