"""Report files of the dashboard's figures (XLSX, CSV, ZIP): ask for one of a period, follow it while a worker
builds it, download it.

Thin: trace.reports.jobs decides who may ask for and download which report; a page reads the form, calls it,
and renders, or answers 303 after a POST that wrote. A report is sent to the workers after the commit that
queued it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.deps import DbId, JobsDep, SessionDep
from api.web.context import N_, Member, Visitor, check_form, render
from api.web.forms import Posted, field_errors, once_key, refused, see_other, values_of
from api.web.words import say, t
from trace.errors import DomainError, Forbidden, NotFound
from trace.platform.timeutil import today
from trace.reports import dashboard, export, jobs
from trace.reports.models import ReportJob, ReportStatus

router = APIRouter(include_in_schema=False)

FORMATS = {
    "xlsx": N_("Excel workbook (XLSX): every section"),
    "csv": N_("CSV: one section"),
    "zip": N_("CSV files of every section (ZIP)"),
}
SECTIONS = {
    "summary": N_("Summary"),
    "organisations_by_kind": N_("Organisations by kind"),
    "organisations_by_commune": N_("Organisations by commune"),
    "monthly": N_("Per month"),
    "designations": N_("Designations and quotas"),
    "growth": N_("Growth against targets"),
}
HOLDER_SECTIONS = ("summary", "monthly", "designations")
STATUSES = {"queued": N_("waiting"), "building": N_("being built"), "done": N_("ready"), "failed": N_("failed")}
WORKING = (ReportStatus.QUEUED, ReportStatus.BUILDING)


def _scope(session: SessionDep, who: Visitor) -> str:
    """The report a user may ask for: the province's (its administrator) or its designations' (a holder)."""
    try:
        dashboard.require_province(who.actor)
        return "province"
    except Forbidden:
        dashboard.held_designations(session=session, actor=who.actor)
        return "holder"


def _reports_page(
    request: Request,
    session: SessionDep,
    who: Visitor,
    scope: str,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    rows = jobs.list_jobs(session=session, actor=who.actor)
    sections = [
        (code, t(who.lang, SECTIONS[code]))
        for code in export.SECTION_CODES
        if scope == "province" or code in HOLDER_SECTIONS
    ]
    return render(
        request,
        "app/dashboard/reports.html",
        who,
        status=status,
        rows=rows,
        v=values,
        errors=errors,
        error=error,
        scope=scope,
        formats=[(k, t(who.lang, v)) for k, v in FORMATS.items()],
        sections=sections,
        statuses=STATUSES,
        working=any(r.status in WORKING for r in rows),
    )


@router.get("/app/reports", response_class=HTMLResponse)
def reports_page(request: Request, session: SessionDep, who: Member) -> Response:
    """A new report of a period, and the latest reports with their progress."""
    try:
        scope = _scope(session, who)
    except Forbidden as error:
        return refused(request, who, error)
    year = today().year
    values = {
        "from": f"{year}-01-01",
        "to": f"{year}-12-31",
        "format": "xlsx",
        "section": "summary",
        "idem": once_key(),
    }
    return _reports_page(request, session, who, scope, values=values, errors={})


@router.post("/app/reports", response_class=HTMLResponse)
def ask_report(request: Request, form: Posted, session: SessionDep, who: Member, to_workers: JobsDep) -> Response:
    """Queue a report (trace.reports.jobs decides who may), then send it to the workers after the commit."""
    values = values_of(form, "csrf", "from", "to", "format", "section", "idem")
    check_form(who, values.pop("csrf"))
    try:
        scope = _scope(session, who)
    except Forbidden as error:
        return refused(request, who, error)
    try:
        data = jobs.ReportIn.model_validate(
            {
                "scope": scope,
                "period_start": values["from"] or None,
                "period_end": values["to"] or None,
                "format": values["format"] or None,
                "section": values["section"] or None,
            }
        )
    except ValidationError as error:
        found = field_errors(error, who.lang)
        found = {{"period_start": "from", "period_end": "to"}.get(k, k): v for k, v in found.items()}
        return _reports_page(request, session, who, scope, values=values, errors=found, status=422)
    try:
        job = jobs.request_report(session=session, actor=who.actor, data=data, idempotency_key=values["idem"] or None)
    except DomainError as error:
        return _reports_page(
            request, session, who, scope, values=values, errors={}, error=say(error, who.lang), status=422
        )
    if job.status == ReportStatus.QUEUED:
        to_workers.add("report", job.id)  # sent after the commit
    return see_other(f"/app/reports/{job.id}")


def _report_view(job: ReportJob, who: Visitor) -> dict[str, Any]:
    return {
        "job": job,
        "state": t(who.lang, STATUSES[job.status.value]),
        "working": job.status in WORKING,
        "format": t(who.lang, FORMATS[job.format.value]),
        "section": t(who.lang, SECTIONS[job.section]) if job.section in SECTIONS else None,
    }


@router.get("/app/reports/{job_id}", response_class=HTMLResponse)
def report_page(request: Request, session: SessionDep, who: Member, job_id: DbId) -> Response:
    """A report's progress (the page refreshes itself while it is built) and its file when ready."""
    try:
        job = jobs.get_job(session=session, actor=who.actor, job_id=job_id)
    except NotFound as error:
        return refused(request, who, error)
    return render(request, "app/dashboard/report.html", who, error=None, **_report_view(job, who))


@router.get("/app/reports/{job_id}/file")
def report_file(request: Request, session: SessionDep, who: Member, job_id: DbId) -> Response:
    """The report's file, for the organisation that asked for it and the province's administrator only."""
    try:
        job = jobs.report_file(session=session, actor=who.actor, job_id=job_id)
    except NotFound as error:
        return refused(request, who, error)
    except DomainError as error:
        return render(
            request,
            "app/dashboard/report.html",
            who,
            status=409,
            error=say(error, who.lang),
            **_report_view(jobs.get_job(session=session, actor=who.actor, job_id=job_id), who),
        )
    assert job.content is not None
    return Response(
        job.content,
        media_type=job.media_type or "application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{job.filename}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
