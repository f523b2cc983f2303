"""Workspace pages of processors, packers, distributors and shops: receive, transform, store, sell.

Thin: each handler reads the form, calls the same trace/ function as the JSON API (which decides
who may do what), and answers 303 to a result page; a refusal re-renders the form with its reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session

from api import i18n
from api.deps import DbId, SessionDep
from api.web.context import N_, Member, Visitor, check_form, held, product_name, product_names, render
from api.web.forms import (
    Posted,
    day,
    event_time,
    every,
    field_errors,
    once_key,
    quantity,
    refused,
    refusing,
    see_other,
    text,
)
from api.web.words import say, t
from trace import lots
from trace.errors import DomainError, Forbidden, InvalidIdentifier, NotFound
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import (
    ReceiveIn,
    SellIn,
    StoreIn,
    TransformIn,
    TransformInput,
    TransformOutput,
)
from trace.locations import list_locations
from trace.lots import Lot, Shipment
from trace.organisations import party_names
from trace.platform.timeutil import today
from trace.products import get_product, list_products

router = APIRouter(include_in_schema=False)

ROWS = 5  # input lots a transformation form offers

# --- incoming shipments ------------------------------------------------------------------------


@router.get("/app/incoming")
def incoming(request: Request, session: SessionDep, who: Member, received: int | None = None) -> Response:
    """Open shipments addressed to the organisation, each with a button to receive it."""
    rows = lots.incoming_shipments(session=session, actor=who.actor)
    names = product_names(session, {lot.product_id for _, lot in rows}, who.lang)
    senders = party_names(session=session, ids={s.from_organisation_id for s, _ in rows}, reader=who.actor)
    done = None
    if received is not None:
        try:
            done = lots.get_lot(
                session=session, lot_id=lots.get_incoming(session=session, actor=who.actor, shipment_id=received).lot_id
            )
        except NotFound:
            pass  # a stale or forged link: nothing to say
    return render(
        request,
        "app/handling/incoming.html",
        who,
        done=done,
        shipments=[
            {
                "shipment": s,
                "lot": lot,
                "product": names.get(lot.product_id, ""),
                "sender": senders.get(s.from_organisation_id, ""),
                "outstanding": s.quantity - s.received_quantity,
            }
            for s, lot in rows
        ],
    )


def _addressed(session: Session, who: Visitor, shipment_id: int) -> tuple[Shipment, Lot]:
    shipment = lots.get_incoming(session=session, actor=who.actor, shipment_id=shipment_id)
    return shipment, lots.get_lot(session=session, lot_id=shipment.lot_id)


def _receive_page(
    request: Request,
    session: Session,
    who: Visitor,
    shipment: Shipment,
    lot: Lot,
    *,
    status: int = 200,
    typed: str | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    idem: str | None = None,
) -> Response:
    outstanding = shipment.quantity - shipment.received_quantity
    sender = party_names(session=session, ids=[shipment.from_organisation_id], reader=who.actor)
    return render(
        request,
        "app/handling/receive.html",
        who,
        status=status,
        shipment=shipment,
        lot=lot,
        product=product_name(get_product(session=session, product_id=lot.product_id), who.lang),
        sender=sender.get(shipment.from_organisation_id, ""),
        outstanding=outstanding,
        typed=i18n.number(outstanding, who.lang) if typed is None else typed,
        errors=errors or {},
        error=error,
        idem=idem or once_key(),
    )


@router.get("/app/incoming/{shipment_id}/receive")
@refusing(refused)
def receive_form(request: Request, session: SessionDep, who: Member, shipment_id: DbId) -> Response:
    """How much of a shipment arrived (everything still in transit, unless the receiver says less)."""
    return _receive_page(request, session, who, *_addressed(session, who, shipment_id))


@router.post("/app/incoming/{shipment_id}/receive")
@refusing(refused)
def receive(request: Request, form: Posted, session: SessionDep, who: Member, shipment_id: DbId) -> Response:
    """Record the receipt (once, however often the form is sent) and go back to the list."""
    check_form(who, text(form, "csrf"))
    idem, quantity_text = text(form, "idem"), text(form, "quantity")
    shipment, lot = _addressed(session, who, shipment_id)
    errors: dict[str, str] = {}
    amount = quantity(quantity_text, who.lang, errors, "quantity")
    data = None
    try:
        data = ReceiveIn(shipment_id=shipment_id, quantity=amount) if not errors else None
    except ValidationError as error:
        errors = field_errors(error, who.lang)
    if data is None:
        return _receive_page(
            request, session, who, shipment, lot, status=422, typed=quantity_text, errors=errors, idem=idem
        )
    try:
        capture(session=session, actor=who.actor, items=[(EventType.RECEIVE, data)], idempotency_key=idem or None)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    except DomainError as error:
        return _receive_page(
            request,
            session,
            who,
            shipment,
            lot,
            status=422,
            typed=quantity_text,
            error=say(error, who.lang, unit=lot.unit),
            idem=idem,
        )
    return see_other(f"/app/incoming?received={shipment_id}")


# --- transforming ------------------------------------------------------------------------------


def _transform_page(
    request: Request,
    session: Session,
    who: Visitor,
    *,
    status: int = 200,
    typed: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    idem: str | None = None,
) -> Response:
    actor = who.actor
    mine = lots.list_lots(session=session, actor=actor, held_only=True, limit=200) if actor.organisation_id else []
    names = product_names(session, {lot.product_id for lot in mine}, who.lang)
    options = [
        (
            lot.id,
            f"{lot.lot_code} · {names.get(lot.product_id, '')} · "
            f"{i18n.number(held(session, who, lot), who.lang)} {lot.unit}",
        )
        for lot in mine
    ]
    products = (
        list_products(session=session, organisation_id=actor.organisation_id, limit=200)
        if actor.organisation_id
        else []
    )
    blank = {
        "lot": [""] * ROWS,
        "qty": [""] * ROWS,
        "product_id": "",
        "lot_code": "",
        "quantity": "",
        "expiry_date": "",
    }
    return render(
        request,
        "app/handling/transform.html",
        who,
        status=status,
        lot_options=options,
        product_options=[(p.id, f"{product_name(p, who.lang)} ({p.unit})") for p in products],
        typed=typed or blank,
        rows=ROWS,
        errors=errors or {},
        error=error,
        idem=idem or once_key(),
    )


@router.get("/app/transform")
def transform_form(request: Request, session: SessionDep, who: Member) -> Response:
    """Input lots the organisation holds (with quantities) into one new output lot."""
    return _transform_page(request, session, who)


@router.post("/app/transform")
def transform(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Record the transformation once and show the new lot."""
    check_form(who, text(form, "csrf"))
    lang, idem = who.lang, text(form, "idem")
    lot_ids, amounts = every(form, "lot", ROWS), every(form, "qty", ROWS)
    product_id, lot_code = text(form, "product_id"), text(form, "lot_code")
    quantity_text, expiry_date = text(form, "quantity"), text(form, "expiry_date")
    typed = {
        "lot": lot_ids,
        "qty": amounts,
        "product_id": product_id,
        "lot_code": lot_code,
        "quantity": quantity_text,
        "expiry_date": expiry_date,
    }
    errors: dict[str, str] = {}
    inputs: list[dict[str, Any]] = []
    for index, (chosen, amount) in enumerate(zip(lot_ids, amounts, strict=True), start=1):
        if not chosen:
            if amount:
                errors[f"lot-{index}"] = t(lang, N_("Choose a lot."))
            continue
        if chosen in {str(i["lot_id"]) for i in inputs}:
            errors[f"lot-{index}"] = t(lang, N_("This lot is already chosen above."))
            continue
        inputs.append({"lot_id": chosen, "quantity": quantity(amount, lang, errors, f"qty-{index}"), "row": index})
    if not inputs and "lot-1" not in errors:
        errors["lot-1"] = t(lang, N_("Choose at least one input lot."))
    output_quantity = quantity(quantity_text, lang, errors, "quantity")
    expiry = day(expiry_date, lang, errors, "expiry_date")
    if not product_id:
        errors["product_id"] = t(lang, N_("Required."))
    data = None
    if not errors:
        names = {
            f"inputs.{n}.{part}": f"{'lot' if part == 'lot_id' else 'qty'}-{item['row']}"
            for n, item in enumerate(inputs)
            for part in ("lot_id", "quantity")
        }
        names.update({f"outputs.0.{part}": part for part in ("product_id", "lot_code", "quantity", "expiry_date")})
        try:
            data = TransformIn(
                inputs=[TransformInput(lot_id=i["lot_id"], quantity=i["quantity"]) for i in inputs],
                outputs=[
                    TransformOutput(
                        product_id=product_id,  # type: ignore[arg-type]
                        lot_code=lot_code,
                        quantity=output_quantity,  # type: ignore[arg-type]
                        expiry_date=expiry,
                    )
                ],
            )
        except ValidationError as error:
            errors = field_errors(error, lang, names)
        except InvalidIdentifier as error:
            errors = {"lot_code": say(error, lang)}
    if data is None:
        return _transform_page(request, session, who, status=422, typed=typed, errors=errors, idem=idem)
    try:
        result = capture(
            session=session, actor=who.actor, items=[(EventType.TRANSFORM, data)], idempotency_key=idem or None
        )
    except NotFound as error:
        return refused(request, who, error)
    except DomainError as error:
        return _transform_page(
            request,
            session,
            who,
            status=422,
            typed=typed,
            error=say(error, lang, **_short_input(session, who, data)),
            idem=idem,
        )
    return see_other(f"/app/transform/{result.lot_ids[0]}")


def _short_input(session: Session, who: Visitor, data: TransformIn) -> dict[str, str]:
    # Only to name, in the refusal, the input lot the organisation holds too little of.
    found_lots = lots.lots_by_id(session=session, ids=[item.lot_id for item in data.inputs])
    for item in data.inputs:
        found = found_lots.get(item.lot_id)
        if found is not None and held(session, who, found) < item.quantity:
            return {"lot": found.lot_code, "unit": found.unit}
    return {}


@router.get("/app/transform/{lot_id}")
@refusing(refused)
def transformed(request: Request, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """A lot made by a transformation: what went in, and what to do next."""
    made = lots.visible_lot(session=session, actor=who.actor, lot_id=lot_id)
    edges = lots.inputs_of(session=session, lot_id=lot_id)
    names = product_names(session, {x.product_id for x in [made, *edges]}, who.lang)
    return render(
        request,
        "app/handling/transformed.html",
        who,
        lot=made,
        product=names.get(made.product_id, ""),
        inputs=[(x, names.get(x.product_id, "")) for x in edges],
        held=held(session, who, made),
    )


# --- storing and selling -----------------------------------------------------------------------


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
