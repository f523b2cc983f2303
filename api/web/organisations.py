"""Workspace pages of the province's administrator for organisations: every organisation (filtered by kind and
commune), and onboarding one.

Thin: trace.organisations decides who may do what; a page only reads the form, calls it, and renders or
answers 303 (on to the new organisation's users).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep
from api.web.context import Member, Visitor, check_form, render
from api.web.forms import Posted, field_errors, once_key, optional, refused, see_other, text, values_of
from api.web.words import ORG_KINDS, options, say
from trace import admin_units, organisations
from trace.access import require_admin
from trace.errors import DomainError, Forbidden
from trace.organisations import OrgKind

router = APIRouter(include_in_schema=False)

ORG_FIELDS = ("kind", "name", "tax_code", "commune_code", "address", "idem")


@router.get("/app/admin/organisations", response_class=HTMLResponse)
def organisations_page(request: Request, session: SessionDep, who: Member) -> Response:
    """Every organisation, filtered by kind and commune, with a link to its users."""
    try:
        require_admin(who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    kind = request.query_params.get("kind") or ""
    commune = request.query_params.get("commune") or ""
    rows = organisations.list_organisations(
        session=session, kind=OrgKind(kind) if kind in ORG_KINDS else None, commune_code=commune or None, limit=500
    )
    return render(
        request,
        "app/registry/organisations.html",
        who,
        rows=[organisations.to_public(o, who.actor) for o in rows],
        kinds=ORG_KINDS,
        kind_options=options(ORG_KINDS, who.lang),
        communes=admin_units.commune_choices(),
        kind=kind,
        commune=commune,
    )


def _org_form(
    request: Request,
    who: Visitor,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "app/registry/organisation_form.html",
        who,
        status=status,
        v=values,
        errors=errors,
        error=error,
        kind_options=options(ORG_KINDS, who.lang),
        communes=admin_units.commune_choices(),
    )


@router.get("/app/admin/organisations/new", response_class=HTMLResponse)
def new_organisation_page(request: Request, who: Member) -> Response:
    """The form to onboard an organisation."""
    try:
        require_admin(who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    return _org_form(request, who, values={"kind": "cooperative", "idem": once_key()}, errors={})


@router.post("/app/admin/organisations/new", response_class=HTMLResponse)
def new_organisation(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Onboard it (province admin: trace.organisations decides), then on to its users."""
    check_form(who, text(form, "csrf"))
    shown = values_of(form, *ORG_FIELDS)
    values = {
        "kind": shown["kind"],
        "name": shown["name"],
        "tax_code": shown["tax_code"],
        "commune_code": shown["commune_code"] or None,
        "address": shown["address"],
    }
    try:
        data = organisations.OrganisationCreate.model_validate(values)
    except ValidationError as error:
        return _org_form(request, who, values=shown, errors=field_errors(error, who.lang), status=422)
    try:
        org = organisations.create_organisation(
            session=session, actor=who.actor, data=data, idempotency_key=optional(form, "idem")
        )  # a double tap: once
    except DomainError as error:
        if isinstance(error, Forbidden):
            return refused(request, who, error)
        return _org_form(request, who, values=shown, errors={}, error=say(error, who.lang), status=422)
    return see_other(f"/app/admin/organisations/{org.id}/users?created=1")
