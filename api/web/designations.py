"""Workspace pages for designations: those an organisation holds, the rights to use each with their quotas,
and who labelled what under it; and the designation registry the province keeps (list, register, correct).
Granting and changing a right is in :mod:`api.web.rights`.

Thin: each handler reads the form, calls the same trace/ function as the JSON API (trace.designations
decides who may do what) and renders, or answers 303 after a POST that wrote.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.deps import DbId, SessionDep
from api.web.context import Member, Visitor, check_form, render
from api.web.forms import Posted, field_errors, once_key, optional, refused, see_other, text, ticked, values_of
from api.web.words import DESIGNATION_KINDS, RIGHT_STATUSES, options, say
from trace import admin_units, organisations
from trace.access import require_writer
from trace.designations import registry, usage
from trace.designations.models import Designation
from trace.errors import DomainError, Forbidden, NotFound
from trace.organisations import OrgKind
from trace.platform.timeutil import today

router = APIRouter(include_in_schema=False)

DESIGNATION_FIELDS = (
    "kind",
    "name_vi",
    "name_en",
    "registration_number",
    "decision_number",
    "decision_date",
    "holder_organisation_id",
    "categories",
    "idem",
)


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


# --------------------------------------------------------------------------- the designation registry


@router.get("/app/admin/designations", response_class=HTMLResponse)
def registry_page(request: Request, session: SessionDep, who: Member) -> Response:
    """The designation registry as the province keeps it."""
    try:
        registry.require_registrar(session=session, actor=who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    rows = [
        registry.to_public(session=session, designation=d)
        for d in registry.list_designations(session=session, limit=500)
    ]
    return render(
        request,
        "app/registry/registry.html",
        who,
        rows=rows,
        kinds=DESIGNATION_KINDS,
        saved=request.query_params.get("saved") == "1",
    )


def _designation_form(
    request: Request,
    session: SessionDep,
    who: Visitor,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
    editing: Designation | None = None,
) -> Response:
    holders = organisations.list_organisations(session=session, limit=500)
    holders.sort(key=lambda o: (o.kind != OrgKind.DESIGNATION_HOLDER, o.name))
    area = [c.name for c in (admin_units.commune(code) for code in editing.area_communes) if c] if editing else []
    return render(
        request,
        "app/registry/designation_form.html",
        who,
        status=status,
        v=values,
        errors=errors,
        error=error,
        kind_options=options(DESIGNATION_KINDS, who.lang),
        holders=[(o.id, organisations.shown_party(o, who.actor).name) for o in holders],
        districts=admin_units.former_districts(),
        editing=editing,
        area=area,
    )


@router.get("/app/admin/designations/new", response_class=HTMLResponse)
def new_designation_page(request: Request, session: SessionDep, who: Member) -> Response:
    """The form to register a designation, its protected area as the former districts it was granted over."""
    try:
        registry.require_registrar(session=session, actor=who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    return _designation_form(
        request,
        session,
        who,
        values={"kind": "geographical_indication", "idem": once_key(), "districts": []},
        errors={},
    )


def _typed_designation(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    # What was typed (to show again) and the values for the model (empty optional fields as None).
    shown: dict[str, Any] = {**values_of(form, *DESIGNATION_FIELDS), "districts": ticked(form, "districts")}
    values = {
        **{k: shown[k] or None for k in DESIGNATION_FIELDS if k not in ("categories", "idem")},
        "categories": [c.strip() for c in shown["categories"].split(",") if c.strip()],
    }
    values["name_vi"] = shown["name_vi"]
    return shown, values


@router.post("/app/admin/designations/new", response_class=HTMLResponse)
def new_designation(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Register it (trace.designations.registry decides who may, and maps the area to today's communes)."""
    check_form(who, text(form, "csrf"))
    shown, values = _typed_designation(form)
    values["area_former_districts"] = shown["districts"]
    try:
        data = registry.DesignationCreate.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        return _designation_form(request, session, who, values=shown, errors=field_errors(error, who.lang), status=422)
    try:
        registry.create_designation(
            session=session, actor=who.actor, data=data, idempotency_key=optional(form, "idem")
        )  # a double tap registers once
    except DomainError as error:
        if isinstance(error, Forbidden):
            return refused(request, who, error)
        return _designation_form(request, session, who, values=shown, errors={}, error=say(error, who.lang), status=422)
    return see_other("/app/admin/designations?saved=1")


def _registrars_designation(session: SessionDep, who: Visitor, designation_id: int) -> Designation:
    registry.require_registrar(session=session, actor=who.actor)
    return registry.get_designation(session=session, designation_id=designation_id)


@router.get("/app/admin/designations/{designation_id}/edit", response_class=HTMLResponse)
def edit_designation_page(request: Request, session: SessionDep, who: Member, designation_id: DbId) -> Response:
    """The form to correct a designation's record: names, numbers, holder, categories, area, in force or not."""
    try:
        found = _registrars_designation(session, who, designation_id)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    values: dict[str, Any] = {
        name: "" if getattr(found, name) is None else str(getattr(found, name))
        for name in DESIGNATION_FIELDS
        if name not in ("categories", "idem")
    }
    values.update(
        kind=found.kind.value,
        categories=", ".join(found.categories),
        districts=list(found.area_former_districts),
        active="1" if found.active else "",
    )
    return _designation_form(request, session, who, values=values, errors={}, editing=found)


@router.post("/app/admin/designations/{designation_id}/edit", response_class=HTMLResponse)
def edit_designation(
    request: Request, form: Posted, session: SessionDep, who: Member, designation_id: DbId
) -> Response:
    """Save the changes (trace.designations.registry: the same rules and refusals as the JSON API's PATCH).

    Saving the same form twice changes nothing more, so it needs no once-only key.
    """
    check_form(who, text(form, "csrf"))
    try:
        found = _registrars_designation(session, who, designation_id)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    shown, values = _typed_designation(form)
    shown["active"] = "1" if text(form, "active") else ""
    values["active"] = bool(shown["active"])
    if set(shown["districts"]) != set(found.area_former_districts):
        values["area_former_districts"] = shown["districts"]  # the area given anew replaces the whole area
    try:
        data = registry.DesignationUpdate.model_validate(values)
    except ValidationError as error:
        return _designation_form(
            request, session, who, values=shown, errors=field_errors(error, who.lang), status=422, editing=found
        )
    try:
        registry.update_designation(session=session, actor=who.actor, designation_id=designation_id, data=data)
    except DomainError as error:
        if isinstance(error, (NotFound, Forbidden)):
            return refused(request, who, error)
        return _designation_form(
            request, session, who, values=shown, errors={}, error=say(error, who.lang), status=422, editing=found
        )
    return see_other("/app/admin/designations?saved=1")
