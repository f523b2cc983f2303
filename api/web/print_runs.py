"""Workspace pages for printing labels: ask for a run, watch it render, download, reprint, cancel.

The same trace.printing.runs functions as the JSON API (api/routes/print_runs.py), and the same
queue: a run is handed to the rendering workers after the commit that created it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import DbId, JobsDep, ReadingSessionDep, SessionDep
from api.web.context import N_, Member, Visitor, check_form, held, product_name, render
from api.web.forms import Posted, field_errors, once_key, refused, refusing, see_other, text, values_of, whole
from api.web.words import say, t
from trace import lots
from trace.errors import Conflict, DomainError, Forbidden, NotFound
from trace.lots import Lot
from trace.printing import artefacts, capacity, runs
from trace.printing.models import FORMATS, PrintRun, PrintRunBase, PrintStatus
from trace.products import get_product

router = APIRouter(include_in_schema=False)

DEFAULT_FORMAT: str = PrintRunBase.model_fields["format"].default

# The label formats in words for people (the domain's descriptions are for the API).
FORMAT_NAMES: dict[str, str] = {
    "a4-3x8": N_("A4 sheet of 24 labels, 63.5 × 33.9 mm (PDF)"),
    "a4-4x10": N_("A4 sheet of 40 labels, 45.7 × 25.4 mm (PDF)"),
    "roll-50x30": N_("Thermal roll, 50 × 30 mm labels (PDF)"),
    "roll-100x50": N_("Thermal roll, 100 × 50 mm labels (PDF)"),
    "zpl-50x30": N_("Zebra printer, 50 × 30 mm (ZPL)"),
    "zpl-100x50": N_("Zebra printer, 100 × 50 mm (ZPL)"),
    "png-50x30": N_("Images, 50 × 30 mm (PNG files in a ZIP)"),
    "svg-50x30": N_("Images, 50 × 30 mm (SVG files in a ZIP)"),
}
WORKING = (PrintStatus.QUEUED, PrintStatus.RENDERING)


def _formats(lang: str) -> list[tuple[str, str]]:
    return [(name, t(lang, FORMAT_NAMES[name]) if name in FORMAT_NAMES else about) for name, about in FORMATS.items()]


def _run_url(run: PrintRun) -> Response:
    return see_other(f"/app/print-runs/{run.id}")


def _print_page(
    request: Request,
    session: Session,
    who: Visitor,
    lot: Lot,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    idem: str | None = None,
) -> Response:
    try:
        room: capacity.Capacity | None = capacity.capacity(session=session, lot=lot)
    except DomainError:
        room = None  # a lot counted in other units than its product: the domain refuses with words on sending
    earlier = runs.list_runs(session=session, actor=who.actor, lot_id=lot.id)  # type: ignore[arg-type]
    return render(
        request,
        "app/handling/print.html",
        who,
        status=status,
        lot=lot,
        room=room,
        product=product_name(get_product(session=session, product_id=lot.product_id), who.lang),
        held=held(session, who, lot),
        formats=_formats(who.lang),
        runs=earlier[:20],
        typed=typed
        or {"format": DEFAULT_FORMAT, "count": str(room.left) if room and room.left else "", "override_reason": ""},
        errors=errors or {},
        error=error,
        idem=idem or once_key(),
    )


@router.get("/app/lots/{lot_id}/print")
@refusing(refused)
def print_form(request: Request, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """Ask for labels of a lot: the format, and how many (by default, what the lot has room for)."""
    return _print_page(request, session, who, lots.visible_lot(session=session, actor=who.actor, lot_id=lot_id))


@router.post("/app/lots/{lot_id}/print")
def print_labels(
    request: Request, form: Posted, session: SessionDep, who: Member, to_workers: JobsDep, lot_id: DbId
) -> Response:
    """Register the run's codes, hand it to the workers after the commit, and follow it."""
    check_form(who, text(form, "csrf"))
    idem = text(form, "idem")
    try:
        lot = lots.visible_lot(session=session, actor=who.actor, lot_id=lot_id)
    except NotFound as error:
        return refused(request, who, error)
    typed = {"format": text(form, "format") or DEFAULT_FORMAT, **values_of(form, "count", "override_reason")}
    errors: dict[str, str] = {}
    wanted = whole(typed["count"], who.lang, errors, "count")
    data = None
    if wanted is not None:
        try:
            data = runs.PrintRunCreate(
                format=typed["format"], quantity=wanted, override_reason=typed["override_reason"] or None
            )
        except ValidationError as error:
            errors = field_errors(error, who.lang, {"quantity": "count"})
    if data is None:
        return _print_page(request, session, who, lot, status=422, typed=typed, errors=errors, idem=idem)
    try:
        run = runs.create_run(session=session, actor=who.actor, lot_id=lot_id, data=data, idempotency_key=idem or None)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    except DomainError as error:
        return _print_page(request, session, who, lot, status=422, typed=typed, idem=idem, error=say(error, who.lang))
    if run.status == PrintStatus.QUEUED:
        to_workers.add("print_run", run.id)  # sent after the commit
    return _run_url(run)


def _run_page(
    request: Request, session: Session, who: Visitor, run: PrintRun, *, status: int = 200, error: str | None = None
) -> Response:
    shown = runs.public(session=session, runs=[run])[0]
    lot = lots.get_lot(session=session, lot_id=run.lot_id)
    return render(
        request,
        "app/handling/run.html",
        who,
        status=status,
        run=shown,
        lot=lot,
        error=error,
        product=product_name(get_product(session=session, product_id=lot.product_id), who.lang),
        format=dict(_formats(who.lang)).get(run.format, run.format),
        working=run.status in WORKING,
        ours=run.organisation_id == who.actor.organisation_id,
        idem=once_key(),
    )


@router.get("/app/print-runs/{run_id}")
@refusing(refused)
def run_page(request: Request, session: SessionDep, who: Member, run_id: DbId) -> Response:
    """A run's state; the page refreshes itself while the labels are being rendered."""
    return _run_page(request, session, who, runs.get_run(session=session, actor=who.actor, run_id=run_id))


@router.get("/app/print-runs/{run_id}/file")
@refusing(refused, DomainError)
def download(request: Request, session: SessionDep, reading: ReadingSessionDep, who: Member, run_id: DbId) -> Response:
    """The rendered labels, for the organisation that printed them only (as the API's download, streamed)."""
    found = runs.artefact(session=session, actor=who.actor, run_id=run_id)
    artefacts.check(session=reading, artefact=found)  # a changed file is refused before a byte is sent
    return StreamingResponse(
        artefacts.chunks(session=reading, artefact=found),
        media_type=found.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{found.filename}"',
            "Content-Length": str(found.size),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/app/print-runs/{run_id}/reprint")
def reprint(
    request: Request, form: Posted, session: SessionDep, who: Member, to_workers: JobsDep, run_id: DbId
) -> Response:
    """Print the same codes again (a damaged sheet, a printer jam); a double tap makes one reprint."""
    check_form(who, text(form, "csrf"))
    try:
        run = runs.reprint(
            session=session,
            actor=who.actor,
            run_id=run_id,
            data=runs.ReprintIn(),
            idempotency_key=text(form, "idem") or None,
        )
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    except DomainError as error:
        return _run_page(
            request,
            session,
            who,
            runs.get_run(session=session, actor=who.actor, run_id=run_id),
            status=422,
            error=say(error, who.lang),
        )
    if run.status == PrintStatus.QUEUED:  # a resent form finds its first reprint, perhaps printed already
        to_workers.add("print_run", run.id)  # sent after the commit
    return _run_url(run)


@router.post("/app/print-runs/{run_id}/cancel")
def cancel(request: Request, form: Posted, session: SessionDep, who: Member, run_id: DbId) -> Response:
    """Cancel a run no worker has started (its codes are voided); sent twice, it is cancelled once."""
    check_form(who, text(form, "csrf"))
    try:
        run = runs.cancel(session=session, actor=who.actor, run_id=run_id)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    except Conflict as error:
        run = runs.get_run(session=session, actor=who.actor, run_id=run_id)
        if run.status == PrintStatus.CANCELLED:
            return _run_url(run)  # already done: a second tap changes nothing
        return _run_page(request, session, who, run, status=422, error=say(error, who.lang))
    return _run_url(run)
