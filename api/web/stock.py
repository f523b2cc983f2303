"""Workspace pages for what an organisation does with a lot it holds, short of shipping it: store it in
one of its warehouses or shops, or sell (part of) it over the counter.

One module for both: the two forms are one form (a quantity or a place, and a day) recorded by one
handler, as trace/ records STORE and SELL through the same capture.
Thin: each handler reads the form, calls the same trace/ function as the JSON API (which decides
who may do what), and comes back to the form saying so; a refusal re-renders it with its reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import DbId, SessionDep
from api.web.context import N_, Member, Visitor, check_form, held, product_name, render
from api.web.forms import Posted, day, event_time, field_errors, once_key, quantity, refused, refusing, see_other, text
from api.web.words import say, t
from trace import lots
from trace.errors import DomainError, Forbidden, NotFound
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import SellIn, StoreIn
from trace.locations import list_locations
from trace.lots import Lot
from trace.platform.timeutil import today
from trace.products import get_product

router = APIRouter(include_in_schema=False)


def _move_page(
    request: Request,
    session: Session,
    who: Visitor,
    lot: Lot,
    kind: str,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    idem: str | None = None,
    done: bool = False,
) -> Response:
    org = who.actor.organisation_id
    places = (
        [(p.id, p.name) for p in list_locations(session=session, organisation_id=org, limit=200) if p.active]
        if org
        else []
    )
    return render(
        request,
        f"app/handling/{kind}.html",
        who,
        status=status,
        lot=lot,
        held=held(session, who, lot),
        product=product_name(get_product(session=session, product_id=lot.product_id), who.lang),
        places=places,
        typed=typed or {"quantity": "", "location_id": "", "day": ""},
        errors=errors or {},
        error=error,
        idem=idem or once_key(),
        done=done,
        today=today().isoformat(),
    )


def _move_form(request: Request, session: Session, who: Visitor, lot_id: int, kind: str, done: bool) -> Response:
    lot = lots.visible_lot(session=session, actor=who.actor, lot_id=lot_id)
    return _move_page(request, session, who, lot, kind, done=done)


@router.get("/app/lots/{lot_id}/store")
@refusing(refused)
def store_form(request: Request, session: SessionDep, who: Member, lot_id: DbId, done: int = 0) -> Response:
    """Put a lot the organisation holds in one of its warehouses or shops."""
    return _move_form(request, session, who, lot_id, "store", bool(done))


@router.get("/app/lots/{lot_id}/sell")
@refusing(refused)
def sell_form(request: Request, session: SessionDep, who: Member, lot_id: DbId, done: int = 0) -> Response:
    """Record a retail sale of (part of) a lot the organisation holds."""
    return _move_form(request, session, who, lot_id, "sell", bool(done))


def _record(
    request: Request, session: Session, who: Visitor, lot_id: int, kind: str, idem: str, typed: dict[str, str]
) -> Response:
    try:
        lot = lots.visible_lot(session=session, actor=who.actor, lot_id=lot_id)
    except NotFound as error:
        return refused(request, who, error)
    errors: dict[str, str] = {}
    when = event_time(day(typed["day"], who.lang, errors, "day"))
    data: StoreIn | SellIn | None = None
    try:
        if kind == "sell":
            amount = quantity(typed["quantity"], who.lang, errors, "quantity")
            data = SellIn(lot_id=lot_id, quantity=amount, event_time=when) if not errors else None  # type: ignore[arg-type]
        elif not typed["location_id"]:
            errors["location_id"] = t(who.lang, N_("Choose a place."))
        elif not errors:
            data = StoreIn(lot_id=lot_id, location_id=typed["location_id"], event_time=when)  # type: ignore[arg-type]
    except ValidationError as error:
        errors = field_errors(error, who.lang)
    if data is None:
        return _move_page(request, session, who, lot, kind, status=422, typed=typed, errors=errors, idem=idem)
    event = EventType.SELL if kind == "sell" else EventType.STORE
    try:
        capture(session=session, actor=who.actor, items=[(event, data)], idempotency_key=idem or None)
    except DomainError as error:
        if isinstance(error, NotFound | Forbidden) and error.code != "not_holder":
            return refused(request, who, error)
        return _move_page(
            request,
            session,
            who,
            lot,
            kind,
            status=422,
            typed=typed,
            error=say(error, who.lang, unit=lot.unit, lot=lot.lot_code),
            idem=idem,
        )
    return see_other(f"/app/lots/{lot_id}/{kind}?done=1")


@router.post("/app/lots/{lot_id}/store")
def store(request: Request, form: Posted, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """Record the storage once and come back to the form, saying so."""
    check_form(who, text(form, "csrf"))
    typed = {"quantity": "", "location_id": text(form, "location_id"), "day": text(form, "day")}
    return _record(request, session, who, lot_id, "store", text(form, "idem"), typed)


@router.post("/app/lots/{lot_id}/sell")
def sell(request: Request, form: Posted, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """Record the sale once and come back to the form, saying so."""
    check_form(who, text(form, "csrf"))
    typed = {"quantity": text(form, "quantity"), "location_id": "", "day": text(form, "day")}
    return _record(request, session, who, lot_id, "sell", text(form, "idem"), typed)
