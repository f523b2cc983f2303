"""Workspace pages of designation holders: the designations an organisation holds, the rights to use each
with their quotas, and who labelled what under it. Granting and changing a right is in :mod:`api.web.rights`.
The province's pages (organisations, users, the designation registry) are in :mod:`api.web.registry_admin`,
on this router.

Thin: each handler reads the form, calls the same trace/ function as the JSON API (trace.designations
decides who may do what) and renders, or answers 303 after a POST that wrote.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import DbId, SessionDep
from api.web import registry_admin
from api.web.context import Member, Visitor, render
from api.web.forms import refused
from api.web.words import DESIGNATION_KINDS, RIGHT_STATUSES
from trace.access import require_writer
from trace.designations import registry, usage
from trace.designations.models import Designation
from trace.errors import Forbidden, NotFound
from trace.platform.timeutil import today

router = APIRouter(include_in_schema=False)
router.include_router(registry_admin.router)  # the province's pages belong to this area too


@router.get("/app/designations", response_class=HTMLResponse)
def designations(request: Request, session: SessionDep, who: Member) -> Response:
    """The designations the user's organisation holds."""
    try:
        org = require_writer(who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    rows = registry.list_designations(session=session, holder_organisation_id=org, limit=500)
    return render(request, "app/registry/designations.html", who, rows=rows, kinds=DESIGNATION_KINDS)


def _usage(
    session: SessionDep, who: Visitor, designation_id: int, year: int | None
) -> tuple[Designation, usage.DesignationUsage]:
    # trace.designations.usage decides who sees a designation's rights and use: its holder and the province.
    designation = registry.get_designation(session=session, designation_id=designation_id)
    return designation, usage.designation_usage(
        session=session, actor=who.actor, designation_id=designation_id, year=year
    )


@router.get("/app/designations/{designation_id}", response_class=HTMLResponse)
def designation_page(request: Request, session: SessionDep, who: Member, designation_id: DbId) -> Response:
    """The rights to use a designation: producer, decision, validity, status, quota and labels used this year."""
    year = today().year
    try:
        designation, found = _usage(session, who, designation_id, year)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    rows = [{"right": r, "used": r.quota_use[0] if r.quota_use else None} for r in found.rights]
    return render(
        request,
        "app/registry/designation.html",
        who,
        designation=designation,
        rows=rows,
        year=year,
        kinds=DESIGNATION_KINDS,
        statuses=RIGHT_STATUSES,
        holds=designation.holder_organisation_id == who.actor.organisation_id,
        saved=request.query_params.get("saved") == "1",
    )


@router.get("/app/designations/{designation_id}/usage", response_class=HTMLResponse)
def usage_page(request: Request, session: SessionDep, who: Member, designation_id: DbId) -> Response:
    """Who labelled what under the designation, per year; quota use; labelling beyond a plausible yield."""
    typed = request.query_params.get("year", "")
    year = int(typed) if typed.isdigit() and 2000 <= int(typed) <= 2100 else None
    try:
        designation, found = _usage(session, who, designation_id, year)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    return render(
        request,
        "app/registry/usage.html",
        who,
        designation=designation,
        usage=found,
        year=year,
        this_year=today().year,
        statuses=RIGHT_STATUSES,
    )
