"""Workspace pages for shipments: shipping part of a lot the organisation holds to another, the shipments
it sent (received or still in transit), what is on its way to it, and receiving that.

Thin: each handler reads the form, calls the same trace/ function as the JSON API (which decides
who may do what), and answers 303 to a list; a refusal re-renders the form with its reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api import i18n
from api.deps import DbId, SessionDep
from api.web.context import Member, Visitor, check_form, held, product_name, product_names, render
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
)
from api.web.words import say
from trace import lots, organisations, products
from trace.access import require_writer
from trace.errors import DomainError, Forbidden, NotFound
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import ReceiveIn, ShipIn
from trace.lots import Lot, Shipment, ShipmentStatus
from trace.organisations import party_names
from trace.platform.timeutil import local_zone
from trace.products import get_product

router = APIRouter(include_in_schema=False)

# Access refused by trace/ (not there, not yours, not a writer): the "denied" page, however deep it was raised.
_refusing = refusing(refused, NotFound, Forbidden)


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
    require_writer(who.actor)
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
        values={"event_time": local_now(), "idem": once_key()},
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
    require_writer(who.actor)
    rows = lots.outgoing_shipments(session=session, actor=who.actor)
    buyers = party_names(session=session, ids={s.to_organisation_id for s, _ in rows}, reader=who.actor)
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


def _local(instant: datetime) -> datetime:
    # SQLite hands back naive UTC; pages show the instance's local time.
    return (instant if instant.tzinfo else instant.replace(tzinfo=UTC)).astimezone(local_zone())
