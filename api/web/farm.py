"""Workspace pages of cooperatives and farms: growing areas, harvests, a harvested lot, shipping, shipments out.

Thin, like api/web/routes.py: each handler reads the form, calls the same trace/ function as the JSON API
(the access rules live there) and renders, or answers 303 after a POST that wrote.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.deps import DbId, SessionDep
from api.web.context import N_, Member, Visitor, check_form, held, product_name, render
from api.web.forms import (
    Posted,
    coordinate,
    field_errors,
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
from trace import admin_units, lot_views, lots, organisations, products
from trace import locations as places
from trace.access import require_member_of, require_writer
from trace.designations.registry import list_designations
from trace.errors import DomainError, Forbidden, NotFound
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import HarvestIn, ShipIn
from trace.lots import Lot, Shipment, ShipmentStatus
from trace.platform.timeutil import local_zone

router = APIRouter(include_in_schema=False)

INPUT_ROWS = 3  # farming inputs a harvest form offers
INPUT_FIELDS = ("kind", "name", "dose", "applied_on", "pre_harvest_interval_days")
ACCESS = {"not_a_writer", "not_your_organisation"}  # refusals of the page itself, not of what was typed

KINDS = {
    "growing_area": N_("Growing area"),
    "farm": N_("Livestock farm"),
    "packing_facility": N_("Packing facility"),
    "warehouse": N_("Warehouse"),
    "shop": N_("Shop"),
}
INPUT_KINDS = {
    "fertiliser": N_("Fertiliser"),
    "pesticide": N_("Pesticide"),
    "feed": N_("Feed"),
    "veterinary": N_("Veterinary medicine"),
    "other": N_("Other"),
}


def _now_local() -> str:
    return datetime.now(local_zone()).strftime("%Y-%m-%dT%H:%M")


def _local(instant: datetime) -> datetime:
    # SQLite hands back naive UTC; pages show the instance's local time.
    return (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).astimezone(local_zone())


def _writer(who: Visitor) -> int:
    return require_writer(who.actor)


# Access refused by trace/ (not there, not yours, not a writer): the "denied" page, however deep it was raised.
_refusing = refusing(refused, NotFound, Forbidden)


# --------------------------------------------------------------------------- growing areas and other places


@router.get("/app/areas", response_class=HTMLResponse)
@_refusing
def areas(request: Request, session: SessionDep, who: Member) -> Response:
    """The organisation's places, growing areas first, with today's and the former commune."""
    org = _writer(who)
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
    _writer(who)
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


# --------------------------------------------------------------------------- harvest


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
    org = _writer(who)
    return _harvest_form(
        request,
        session,
        who,
        org,
        values={"event_time": _now_local(), "idem": once_key(), "designation_ids": []},
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
    org = _writer(who)
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


# --------------------------------------------------------------------------- a lot, shipping it, shipments out


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


def _ship_form(
    request: Request,
    session: SessionDep,
    who: Visitor,
    lot: Lot,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    buyers = [
        (o.id, organisations.pick_label(o, who.actor))
        for o in organisations.list_organisations(session=session, limit=500)
        if o.id != who.actor.organisation_id
    ]
    product = products.get_product(session=session, product_id=lot.product_id)
    return render(
        request,
        "app/farm/ship.html",
        who,
        status=status,
        lot=lot,
        product=product,
        held=held(session, who, lot),
        buyers=buyers,
        v=values,
        errors=errors,
        error=error,
    )


def _shippable(session: SessionDep, who: Visitor, lot_id: int) -> Lot:
    _writer(who)
    return lots.visible_lot(session=session, actor=who.actor, lot_id=lot_id)


@router.get("/app/lots/{lot_id}/ship", response_class=HTMLResponse)
@_refusing
def ship_page(request: Request, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """The form to ship part of a lot the organisation holds."""
    return _ship_form(
        request,
        session,
        who,
        _shippable(session, who, lot_id),
        values={"event_time": _now_local(), "idem": once_key()},
        errors={},
    )


@router.post("/app/lots/{lot_id}/ship", response_class=HTMLResponse)
@_refusing
def ship(request: Request, form: Posted, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """Record the shipment once (a resent form replays), then list the shipments out."""
    check_form(who, text(form, "csrf"))
    lot = _shippable(session, who, lot_id)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "lot_id": lot_id,
        "destination_organisation_id": optional(form, "destination_organisation_id"),
        "quantity": quantity(text(form, "quantity"), who.lang, errors, "quantity"),
        "event_time": optional(form, "event_time"),
    }
    shown = {**values, "quantity": text(form, "quantity"), "idem": text(form, "idem")}
    try:
        data = ShipIn.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        errors = {**field_errors(error, who.lang), **errors}
    if errors:
        return _ship_form(request, session, who, lot, values=shown, errors=errors, status=422)
    try:
        capture(
            session=session,
            actor=who.actor,
            items=[(EventType.SHIP, data)],
            idempotency_key=text(form, "idem") or None,
            minimal=True,
        )
    except DomainError as error:
        if error.code in ACCESS:
            return refused(request, who, error)
        return _ship_form(
            request,
            session,
            who,
            lot,
            values=shown,
            errors={},
            error=say(error, who.lang, unit=lot.unit, lot=lot.lot_code),
            status=422,
        )
    return see_other("/app/shipments?saved=1")


@router.get("/app/shipments", response_class=HTMLResponse)
@_refusing
def shipments(request: Request, session: SessionDep, who: Member) -> Response:
    """Where the organisation's lots went: each shipment out, received or still in transit."""
    _writer(who)
    rows = lots.outgoing_shipments(session=session, actor=who.actor)
    buyers = organisations.party_names(session=session, ids={s.to_organisation_id for s, _ in rows}, reader=who.actor)
    names = products.products_by_id(session=session, ids={lot.product_id for _, lot in rows})
    found = [
        {
            "shipment": s,
            "lot": lot,
            "when": _local(s.shipped_at),
            "buyer": buyers.get(s.to_organisation_id, ""),
            "product": names.get(lot.product_id),
            "state": _state(s),
        }
        for s, lot in rows
    ]
    return render(request, "app/farm/shipments.html", who, rows=found, saved=request.query_params.get("saved") == "1")


def _state(shipment: Shipment) -> str:
    if shipment.status == ShipmentStatus.RECEIVED:
        return "received"
    if shipment.status == ShipmentStatus.CANCELLED:
        return "cancelled"
    return "partly" if shipment.received_quantity > 0 else "in_transit"
