"""Print runs: ask for labels of a lot, follow the rendering, download, reprint, cancel, void."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlmodel import SQLModel

from api.deps import CurrentActor, DbId, IdempotencyKey, JobsDep, ReadingSessionDep, SessionDep
from api.problems import PROBLEM_CONTENT
from trace.printing import artefacts, runs
from trace.printing.models import FORMAT_LIMITS, FORMATS, MAX_LABELS

router = APIRouter(tags=["print runs"])


class FormatPublic(SQLModel):
    name: str
    description: str
    max_labels: int


class VoidResult(SQLModel):
    voided: int


@router.get("/print-formats", response_model=list[FormatPublic])
def formats() -> list[FormatPublic]:
    """Label templates a run can be rendered in."""
    return [
        FormatPublic(name=k, description=v, max_labels=FORMAT_LIMITS.get(k, MAX_LABELS)) for k, v in FORMATS.items()
    ]


def _one(session: SessionDep, run: runs.PrintRun) -> runs.PrintRunPublic:
    return runs.public(session=session, runs=[run])[0]


@router.post("/lots/{lot_id}/print-runs", status_code=202, response_model=runs.PrintRunPublic)
def create(
    session: SessionDep,
    actor: CurrentActor,
    to_workers: JobsDep,
    lot_id: DbId,
    data: runs.PrintRunCreate,
    idempotency_key: IdempotencyKey = None,
) -> runs.PrintRunPublic:
    """Register N codes for a lot you hold and queue their labels; follow ``status``/``done``."""
    run = runs.create_run(session=session, actor=actor, lot_id=lot_id, data=data, idempotency_key=idempotency_key)
    if run.status == runs.PrintStatus.QUEUED:
        to_workers.add("print_run", run.id)  # sent after the commit
    return _one(session, run)


@router.get("/lots/{lot_id}/print-runs", response_model=list[runs.PrintRunPublic])
def list_(session: SessionDep, actor: CurrentActor, lot_id: DbId) -> list[runs.PrintRunPublic]:
    """Your organisation's print runs of a lot, newest first."""
    return runs.public(session=session, runs=runs.list_runs(session=session, actor=actor, lot_id=lot_id))


@router.get("/print-runs/{run_id}", response_model=runs.PrintRunPublic)
def get(session: SessionDep, actor: CurrentActor, run_id: int) -> runs.PrintRunPublic:
    """A run's state and progress (``done`` of ``total`` labels)."""
    return _one(session, runs.get_run(session=session, actor=actor, run_id=run_id))


@router.get(
    "/print-runs/{run_id}/file",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}, "application/zip": {}, "text/plain": {}}},
        500: {"description": "The stored file fails its checksum (artefact_corrupt)", "content": PROBLEM_CONTENT},
    },
)
def download(
    session: SessionDep, reading: ReadingSessionDep, actor: CurrentActor, request: Request, run_id: int
) -> Response:
    """The rendered labels (PDF, ZPL, or a ZIP of PNG/SVG files); 409 until the run is done."""
    found = runs.artefact(session=session, actor=actor, run_id=run_id)
    etag = f'"{found.sha256}"'
    headers = {
        "ETag": etag,
        "Content-Disposition": f'attachment; filename="{found.filename}"',
        "Cache-Control": "private, no-cache",
    }
    wanted = {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=headers)
    # Checked whole before the first byte goes (a changed file is refused with a problem), then streamed
    # a chunk at a time from a session that outlives the handler; the stream checks again as it goes.
    artefacts.check(session=reading, artefact=found)
    return StreamingResponse(
        artefacts.chunks(session=reading, artefact=found),
        media_type=found.media_type,
        headers={**headers, "Content-Length": str(found.size)},
    )


@router.post("/print-runs/{run_id}/reprint", status_code=202, response_model=runs.PrintRunPublic)
def reprint(
    session: SessionDep,
    actor: CurrentActor,
    to_workers: JobsDep,
    run_id: int,
    data: runs.ReprintIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> runs.PrintRunPublic:
    """Print a run's codes again (same codes; voided ones left out), optionally on another template."""
    run = runs.reprint(
        session=session, actor=actor, run_id=run_id, data=data or runs.ReprintIn(), idempotency_key=idempotency_key
    )
    if run.status == runs.PrintStatus.QUEUED:
        to_workers.add("print_run", run.id)  # sent after the commit
    return _one(session, run)


@router.post("/print-runs/{run_id}/cancel", response_model=runs.PrintRunPublic)
def cancel(session: SessionDep, actor: CurrentActor, run_id: int) -> runs.PrintRunPublic:
    """Cancel a run that no worker has started; its codes are voided."""
    return _one(session, runs.cancel(session=session, actor=actor, run_id=run_id))


@router.post("/print-runs/{run_id}/void", response_model=VoidResult)
def void(session: SessionDep, actor: CurrentActor, run_id: int, data: runs.VoidIn) -> VoidResult:
    """Void printed codes of a run (a damaged sheet, a lost roll): they read as not valid from now on."""
    return VoidResult(voided=runs.void_codes(session=session, actor=actor, run_id=run_id, data=data))
