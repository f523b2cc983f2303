"""Workspace pages for harvests: record one (a new lot, its farming inputs, the designations it claims) and
see the lot it made.

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
from api.web.context import N_, Member, Visitor, check_form, product_name, render
from api.web.forms import (
    ACCESS,
    Posted,
    field_errors,
    local_now,
    once_key,
    optional,
    quantity,
    refused,
    refusing,
    see_other,
    text,
    ticked,
)
from api.web.words import say
from trace import locations as places
from trace import lot_views, lots, products
from trace.access import require_writer
from trace.designations.registry import list_designations
from trace.errors import DomainError, Forbidden, NotFound
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import HarvestIn

router = APIRouter(include_in_schema=False)

INPUT_ROWS = 3  # farming inputs a harvest form offers
INPUT_FIELDS = ("kind", "name", "dose", "applied_on", "pre_harvest_interval_days")
INPUT_KINDS = {
    "fertiliser": N_("Fertiliser"),
    "pesticide": N_("Pesticide"),
    "feed": N_("Feed"),
    "veterinary": N_("Veterinary medicine"),
    "other": N_("Other"),
}

# Access refused by trace/ (not there, not yours, not a writer): the "denied" page, however deep it was raised.
_refusing = refusing(refused, NotFound, Forbidden)


def _harvest_form(
    request: Request,
    session: SessionDep,
    who: Visitor,
    org: int,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    own = products.list_products(session=session, organisation_id=org, limit=500)
    spots = [
        x
        for x in places.list_locations(session=session, organisation_id=org, limit=500)
        if x.active and x.kind in (places.LocationKind.GROWING_AREA, places.LocationKind.FARM)
    ]
    marks = list_designations(session=session, active=True)
    return render(
        request,
        "app/farm/harvest.html",
        who,
        status=status,
        v=values,
        errors=errors,
        error=error,
        products=[(p.id, f"{product_name(p, who.lang)} ({p.unit})") for p in own],
        areas=[(x.id, f"{x.name} · {x.code}" if x.code else x.name) for x in spots],
        designations=marks,
        input_kinds=INPUT_KINDS,
        rows=range(1, INPUT_ROWS + 1),
    )


@router.get("/app/harvest", response_class=HTMLResponse)
@_refusing
def harvest_page(request: Request, session: SessionDep, who: Member) -> Response:
    """The form to record a harvest: a new lot."""
    org = require_writer(who.actor)
    return _harvest_form(
        request,
        session,
        who,
        org,
        values={"event_time": local_now(), "idem": once_key(), "designation_ids": []},
        errors={},
    )


def _inputs(form: FormData) -> tuple[list[dict[str, Any]], list[int]]:
    """The farming-input rows filled in, and which row of the form each came from."""
    rows, numbers = [], []
    for n in range(1, INPUT_ROWS + 1):
        row = {field: text(form, f"input{n}_{field}") for field in INPUT_FIELDS}
        row = {field: value for field, value in row.items() if value}  # a field left empty is missing
        if row:
            rows.append(row)
            numbers.append(n)
    return rows, numbers


def _harvest_errors(error: ValidationError, who: Visitor, numbers: list[int]) -> dict[str, str]:
    found: dict[str, str] = {}
    for where, words in field_errors(error, who.lang).items():
        parts = where.split(".")
        if parts[0] == "inputs_used" and len(parts) > 2 and parts[1].isdigit():
            where = f"input{numbers[int(parts[1])]}_{parts[2]}"
        found.setdefault(parts[0] if parts[0] == "designation_ids" else where, words)
    return found


@router.post("/app/harvest", response_class=HTMLResponse)
@_refusing
def harvest(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Record the harvest once (a resent form replays), then show the new lot."""
    check_form(who, text(form, "csrf"))
    org = require_writer(who.actor)
    used, numbers = _inputs(form)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "product_id": optional(form, "product_id"),
        "location_id": optional(form, "location_id"),
        "quantity": quantity(text(form, "quantity"), who.lang, errors, "quantity"),
        "event_time": optional(form, "event_time"),
        "lot_code": text(form, "lot_code"),
        "expiry_date": optional(form, "expiry_date"),
        "inputs_used": used,
        "designation_ids": ticked(form, "designation_ids"),
    }
    shown = {
        **values,
        "quantity": text(form, "quantity"),
        "idem": text(form, "idem"),
        **{
            f"input{n}_{field}": text(form, f"input{n}_{field}")
            for n in range(1, INPUT_ROWS + 1)
            for field in INPUT_FIELDS
        },
    }
    try:
        data = HarvestIn.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        errors = {**_harvest_errors(error, who, numbers), **errors}
    except DomainError as error:  # a malformed lot code: the identifier's own check
        errors = {**errors, "lot_code": say(error, who.lang)}
    if errors:
        return _harvest_form(request, session, who, org, values=shown, errors=errors, status=422)
    try:
        result = capture(
            session=session,
            actor=who.actor,
            items=[(EventType.HARVEST, data)],
            idempotency_key=text(form, "idem") or None,
            minimal=True,
        )
    except DomainError as error:
        if error.code in ACCESS:
            return refused(request, who, error)
        return _harvest_form(
            request, session, who, org, values=shown, errors={}, error=say(error, who.lang), status=422
        )
    return see_other(f"/app/farm/lots/{result.lot_ids[0]}")


@router.get("/app/farm/lots/{lot_id}", response_class=HTMLResponse)
@_refusing
def lot_page(request: Request, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """A lot the organisation made or holds: code, quantity, what it holds, designations accepted."""
    lot = lots.visible_lot(session=session, actor=who.actor, lot_id=lot_id)
    product = products.get_product(session=session, product_id=lot.product_id)
    area = places.get_location(session=session, location_id=lot.origin_location_id) if lot.origin_location_id else None
    return render(
        request,
        "app/farm/lot.html",
        who,
        lot=lot_views.to_public(session=session, actor=who.actor, lot=lot),
        product=product,
        area=area,
        done=request.query_params.get("done") == "1",
    )
