"""The province's dashboard: figures per period with SVG charts and tables beside them, a designation
holder's own, and the administrator's plan targets. Report files of the same figures are in
:mod:`api.web.reports`.

Thin: trace.reports decides who sees what and computes every figure; a page reads the query or the form,
calls it, and renders, or answers 303 after a POST that wrote.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep
from api.web import charts
from api.web.context import N_, Member, Visitor, check_form, render
from api.web.forms import Posted, field_errors, once_key, refused, see_other, values_of, whole
from api.web.words import DESIGNATION_KINDS, ORG_KINDS, say, t
from trace.errors import DomainError, Forbidden, RuleViolation
from trace.platform.timeutil import today
from trace.reports import dashboard, targets
from trace.reports.models import Indicator
from trace.reports.periods import Period, make_period, year_period

router = APIRouter(include_in_schema=False)

INDICATORS = {
    Indicator.ORGANISATIONS: N_("Organisations on the system"),
    Indicator.PRODUCTS: N_("Products with trace codes"),
    Indicator.LABELS: N_("Labels issued in the year"),
    Indicator.SCANS: N_("Scans by people in the year"),
}


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
def set_target(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Record a target (trace.reports.targets decides who may); sent twice, it is recorded once."""
    values = values_of(form, "csrf", "indicator", "year", "value", "note", "idem")
    check_form(who, values.pop("csrf"))
    try:
        dashboard.require_province(who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    errors: dict[str, str] = {}
    read: dict[str, Any] = {
        "indicator": values["indicator"],
        "year": values["year"] or None,
        "value": whole(values["value"], who.lang, errors, "value", required=False),
        "note": values["note"] or None,
    }
    try:
        data = targets.TargetIn.model_validate({k: v for k, v in read.items() if v is not None})
    except ValidationError as error:
        errors = {**field_errors(error, who.lang), **errors}
    if errors:
        return _targets_page(request, session, who, values=values, errors=errors, status=422)
    try:
        targets.set_target(session=session, actor=who.actor, data=data, idempotency_key=values["idem"] or None)
    except DomainError as error:
        return _targets_page(request, session, who, values=values, errors={}, error=say(error, who.lang), status=422)
    return see_other(f"/app/dashboard?year={data.year}#growth")
