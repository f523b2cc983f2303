"""The province's dashboard and its reports: figures per period with SVG charts and tables beside them,
the administrator's plan targets, and report files (XLSX, CSV, ZIP) built by a worker.

Thin: trace.reports decides who sees what and computes every figure; a page reads the query or the form,
calls it, and renders, or answers 303 after a POST that wrote.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import DbId, JobsDep, SessionDep
from api.web import charts
from api.web.context import N_, Member, Visitor, check_form, render
from api.web.forms import field_errors, number, once_key, refused
from api.web.registry_forms import ORG_KINDS, Posted, text
from api.web.words import say, t
from trace.errors import DomainError, Forbidden, NotFound, RuleViolation
from trace.platform.timeutil import today
from trace.reports import dashboard, export, jobs, targets
from trace.reports.models import Indicator, ReportJob, ReportStatus
from trace.reports.periods import Period, make_period, year_period

router = APIRouter(include_in_schema=False)

INDICATORS = {
    Indicator.ORGANISATIONS: N_("Organisations on the system"),
    Indicator.PRODUCTS: N_("Products with trace codes"),
    Indicator.LABELS: N_("Labels issued in the year"),
    Indicator.SCANS: N_("Scans by people in the year"),
}
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
DESIGNATION_KINDS = {
    "geographical_indication": N_("Geographical indication"),
    "collective_trademark": N_("Collective trademark"),
    "certification_trademark": N_("Certification trademark"),
}
WORKING = (ReportStatus.QUEUED, ReportStatus.BUILDING)


def _period(request: Request) -> Period:
    """``?from=&to=`` (dates), else ``?year=``, else this year; refused with a code when it makes no sense."""
    query = request.query_params
    start, end = query.get("from", "").strip(), query.get("to", "").strip()
    if start or end:
        try:
            return make_period(date.fromisoformat(start), date.fromisoformat(end))
        except ValueError:
            raise RuleViolation("Not a date", code="period_not_a_date") from None
    typed = query.get("year", "").strip()
    if typed:
        if not typed.isdigit():
            raise RuleViolation("Not a year", code="period_out_of_range")
        year = int(typed)
        if not 2000 <= year <= 2100:
            raise RuleViolation("A year between 2000 and 2100", code="period_out_of_range")
        return year_period(year)
    return year_period(today().year)


def _month_labels(found: dashboard.Dashboard) -> list[str]:
    return [f"{m.month}/{m.year % 100:02d}" for m in found.months]


def _monthly_charts(found: dashboard.Dashboard, who: Visitor) -> dict[str, Any]:
    labels, words = _month_labels(found), (lambda text: t(who.lang, text))
    months = found.months
    shown: dict[str, Any] = {
        "lots": charts.grouped(
            words(N_("Lots per month")),
            labels,
            [
                charts.Series(words(N_("Harvested")), [m.lots_harvested for m in months]),
                charts.Series(words(N_("Processed")), [m.lots_produced for m in months]),
            ],
            who.lang,
        ),
        "labels": charts.grouped(
            words(N_("Labels issued per month")),
            labels,
            [
                charts.Series(words(N_("Package codes")), [m.unit_codes for m in months]),
                charts.Series(words(N_("Lot labels")), [m.lot_labels for m in months]),
            ],
            who.lang,
        ),
    }
    if found.scope == "province":
        shown["scans"] = charts.bars(
            words(N_("Scans by people per month")), labels, [m.scans for m in months], who.lang
        )
        shown["checks"] = charts.grouped(
            words(N_("Inspections, holds and recalls per month")),
            labels,
            [
                charts.Series(words(N_("Inspections")), [m.inspections for m in months]),
                charts.Series(words(N_("Holds")), [m.holds for m in months]),
                charts.Series(words(N_("Recalls")), [m.recalls for m in months]),
            ],
            who.lang,
        )
    return shown


def _growth(found: dashboard.Dashboard, who: Visitor) -> list[dict[str, Any]]:
    out = []
    for indicator in Indicator:
        points = [g for g in found.growth if g.indicator == indicator]
        name = t(who.lang, INDICATORS[indicator])
        chart = charts.against_target(
            name,
            [str(g.year) for g in points],
            charts.Series(t(who.lang, N_("Actual")), [g.actual for g in points]),
            charts.Series(t(who.lang, N_("Target")), [g.target for g in points]),
            who.lang,
        )
        out.append(
            {
                "indicator": indicator.value,
                "name": name,
                "chart": chart,
                "points": points,
                "has_target": any(g.target is not None for g in points),
            }
        )
    return out


def _years() -> list[int]:
    return list(range(today().year, 2019, -1))


@router.get("/app/dashboard", response_class=HTMLResponse)
def province(request: Request, session: SessionDep, who: Member) -> Response:
    """The province's dashboard (its administrator); a designation holder is sent to its own."""
    try:
        dashboard.require_province(who.actor)
    except Forbidden as error:
        try:
            dashboard.held_designations(session=session, actor=who.actor)
        except Forbidden:
            return refused(request, who, error)
        return RedirectResponse("/app/dashboard/designations", status_code=303)
    try:
        period = _period(request)
    except RuleViolation as error:
        return render(
            request,
            "app/dashboard/province.html",
            who,
            status=422,
            error=say(error, who.lang),
            found=None,
            years=_years(),
            query=request.query_params,
        )
    found = dashboard.province_dashboard(session=session, actor=who.actor, period=period)
    return render(
        request,
        "app/dashboard/province.html",
        who,
        found=found,
        charts=_monthly_charts(found, who),
        growth=_growth(found, who),
        kinds=ORG_KINDS,
        designation_kinds=DESIGNATION_KINDS,
        years=_years(),
        query=request.query_params,
        error=None,
    )


@router.get("/app/dashboard/designations", response_class=HTMLResponse)
def holder(request: Request, session: SessionDep, who: Member) -> Response:
    """A designation holder's dashboard, read-only: its designations' usage, lots and labels."""
    try:
        dashboard.held_designations(session=session, actor=who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    try:
        period = _period(request)
    except RuleViolation as error:
        return render(
            request,
            "app/dashboard/holder.html",
            who,
            status=422,
            error=say(error, who.lang),
            found=None,
            years=_years(),
            query=request.query_params,
        )
    found = dashboard.holder_dashboard(session=session, actor=who.actor, period=period)
    return render(
        request,
        "app/dashboard/holder.html",
        who,
        found=found,
        charts=_monthly_charts(found, who),
        designation_kinds=DESIGNATION_KINDS,
        years=_years(),
        query=request.query_params,
        error=None,
    )


# --------------------------------------------------------------------------- targets


def _targets_page(
    request: Request,
    session: SessionDep,
    who: Visitor,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    rows = targets.history(session=session, actor=who.actor)
    return render(
        request,
        "app/dashboard/targets.html",
        who,
        status=status,
        rows=rows,
        v=values,
        errors=errors,
        error=error,
        indicators=[(i.value, t(who.lang, name)) for i, name in INDICATORS.items()],
        names={i.value: t(who.lang, name) for i, name in INDICATORS.items()},
        saved=request.query_params.get("saved") == "1",
    )


@router.get("/app/dashboard/targets", response_class=HTMLResponse)
def targets_page(request: Request, session: SessionDep, who: Member) -> Response:
    """The administrator's form for the plan's yearly targets, and the targets entered so far."""
    try:
        dashboard.require_province(who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    values = {
        "indicator": request.query_params.get("indicator", Indicator.ORGANISATIONS.value),
        "year": str(today().year),
        "value": "",
        "note": "",
        "idem": once_key(),
    }
    return _targets_page(request, session, who, values=values, errors={})


@router.post("/app/dashboard/targets", response_class=HTMLResponse)
def set_target(request: Request, session: SessionDep, who: Member, form: Posted) -> Response:
    """Record a target (trace.reports.targets decides who may); sent twice, it is recorded once."""
    check_form(who, text(form, "csrf"))
    try:
        dashboard.require_province(who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    values = {name: text(form, name) for name in ("indicator", "year", "value", "note", "idem")}
    typed = number(values["value"], who.lang) if values["value"] else None
    raw: dict[str, Any] = {
        "indicator": values["indicator"],
        "year": values["year"] or None,
        "value": (int(typed) if typed is not None and typed == typed.to_integral_value() else values["value"] or None),
        "note": values["note"] or None,
    }
    try:
        data = targets.TargetIn.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as error:
        return _targets_page(request, session, who, values=values, errors=field_errors(error, who.lang), status=422)
    try:
        targets.set_target(session=session, actor=who.actor, data=data, idempotency_key=values["idem"] or None)
    except DomainError as error:
        return _targets_page(request, session, who, values=values, errors={}, error=say(error, who.lang), status=422)
    return RedirectResponse(f"/app/dashboard?year={data.year}#growth", status_code=303)


# --------------------------------------------------------------------------- reports


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
def ask_report(request: Request, session: SessionDep, who: Member, form: Posted, to_workers: JobsDep) -> Response:
    """Queue a report (trace.reports.jobs decides who may), then send it to the workers after the commit."""
    check_form(who, text(form, "csrf"))
    try:
        scope = _scope(session, who)
    except Forbidden as error:
        return refused(request, who, error)
    values = {name: text(form, name) for name in ("from", "to", "format", "section", "idem")}
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
    return RedirectResponse(f"/app/reports/{job.id}", status_code=303)


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
