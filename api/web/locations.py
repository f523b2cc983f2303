"""Workspace pages for an organisation's places: its growing areas first (today's commune and the former one
a designation's area is drawn over), then its farms, packing facilities, warehouses and shops.

Thin: each handler reads the form, calls the same trace/ function as the JSON API (the access rules live
there) and renders, or answers 303 after a POST that wrote.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.deps import DbId, SessionDep
from api.web.context import N_, Member, Visitor, check_form, render
from api.web.forms import (
    ACCESS,
    Posted,
    coordinate,
    field_errors,
    once_key,
    optional,
    refused,
    refusing,
    see_other,
    text,
)
from api.web.words import say
from trace import admin_units
from trace import locations as places
from trace.access import require_member_of, require_writer
from trace.errors import DomainError, Forbidden, NotFound

router = APIRouter(include_in_schema=False)

KINDS = {
    "growing_area": N_("Growing area"),
    "farm": N_("Livestock farm"),
    "packing_facility": N_("Packing facility"),
    "warehouse": N_("Warehouse"),
    "shop": N_("Shop"),
}

# Access refused by trace/ (not there, not yours, not a writer): the "denied" page, however deep it was raised.
_refusing = refusing(refused, NotFound, Forbidden)


@router.get("/app/areas", response_class=HTMLResponse)
@_refusing
def areas(request: Request, session: SessionDep, who: Member) -> Response:
    """The organisation's places, growing areas first, with today's and the former commune."""
    org = require_writer(who.actor)
    rows = places.list_locations(session=session, organisation_id=org, limit=500)
    rows.sort(key=lambda x: (x.kind != places.LocationKind.GROWING_AREA, not x.active, x.name))
    return render(
        request,
        "app/farm/areas.html",
        who,
        areas=[places.to_public(x) for x in rows],
        kinds=KINDS,
        saved=request.query_params.get("saved") == "1",
    )


def _area_form(
    request: Request,
    who: Visitor,
    *,
    area: places.Location | None,
    values: dict[str, Any],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "app/farm/area_form.html",
        who,
        status=status,
        area=area,
        v=values,
        errors=errors,
        error=error,
        kinds=KINDS,
        communes=admin_units.commune_choices(),
        formers=admin_units.former_choices(values.get("commune_code")),
    )


def _area_values(form: FormData, who: Visitor, errors: dict[str, str]) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "kind": text(form, "kind"),
        "code": optional(form, "code"),
        "commune_code": text(form, "commune_code"),
        "former_commune_code": optional(form, "former_commune_code"),
        **{name: coordinate(text(form, name), who.lang, errors, name) for name in ("latitude", "longitude")},
    }


def _area_shown(form: FormData, values: dict[str, Any]) -> dict[str, Any]:
    # what to show again: a coordinate as read, or as typed when it is not a number
    return {**values, **{k: text(form, k) or None for k in ("latitude", "longitude") if values.get(k) is None}}


@router.get("/app/areas/new", response_class=HTMLResponse)
@_refusing
def new_area_page(request: Request, who: Member) -> Response:
    """The form for a new growing area (or another place)."""
    require_writer(who.actor)
    return _area_form(request, who, area=None, values={"kind": "growing_area", "idem": once_key()}, errors={})


@router.post("/app/areas/new", response_class=HTMLResponse)
def new_area(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Register the place for the user's organisation once (a resent form finds the first one)."""
    check_form(who, text(form, "csrf"))
    errors: dict[str, str] = {}
    values = _area_values(form, who, errors)
    shown = {**_area_shown(form, values), "idem": text(form, "idem")}
    try:
        data = places.LocationCreate.model_validate(values)
    except ValidationError as error:
        errors = {**field_errors(error, who.lang), **errors}
    if errors:
        return _area_form(request, who, area=None, values=shown, errors=errors, status=422)
    try:
        places.create_location(session=session, actor=who.actor, data=data, idempotency_key=shown["idem"] or None)
    except DomainError as error:
        if error.code in ACCESS:
            return refused(request, who, error)
        return _area_form(request, who, area=None, values=shown, errors={}, error=say(error, who.lang), status=422)
    return see_other("/app/areas?saved=1")


def _own_area(session: SessionDep, who: Visitor, area_id: int) -> places.Location:
    area = places.get_location(session=session, location_id=area_id)
    require_member_of(who.actor, area.organisation_id)
    return area


@router.get("/app/areas/{area_id}/edit", response_class=HTMLResponse)
@_refusing
def edit_area_page(request: Request, session: SessionDep, who: Member, area_id: DbId) -> Response:
    """The form to edit one of the organisation's places."""
    area = _own_area(session, who, area_id)
    return _area_form(request, who, area=area, values=area.model_dump(), errors={})


@router.post("/app/areas/{area_id}/edit", response_class=HTMLResponse)
@_refusing
def edit_area(request: Request, form: Posted, session: SessionDep, who: Member, area_id: DbId) -> Response:
    """Save the place as a new version."""
    check_form(who, text(form, "csrf"))
    area = _own_area(session, who, area_id)
    errors: dict[str, str] = {}
    values = _area_values(form, who, errors)
    values.pop("kind")  # a place does not change kind
    shown = {**_area_shown(form, values), "kind": area.kind.value}
    try:
        data = places.LocationUpdate.model_validate(values)
    except ValidationError as error:
        errors = {**field_errors(error, who.lang), **errors}
    if errors:
        return _area_form(request, who, area=area, values=shown, errors=errors, status=422)
    try:
        places.update_location(session=session, actor=who.actor, location_id=area_id, data=data)
    except DomainError as error:
        if error.code in ACCESS:
            return refused(request, who, error)
        return _area_form(request, who, area=area, values=shown, errors={}, error=say(error, who.lang), status=422)
    return see_other("/app/areas?saved=1")
