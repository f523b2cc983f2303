"""Workspace pages for shipments: what is on its way to the organisation, and receiving it.

Thin: each handler reads the form, calls the same trace/ function as the JSON API (which decides
who may do what), and answers 303 to the list; a refusal re-renders the form with its reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import Session

from api import i18n
from api.deps import DbId, SessionDep
from api.web.context import Member, Visitor, check_form, product_name, product_names, render
from api.web.forms import Posted, field_errors, once_key, quantity, refused, refusing, see_other, text
from api.web.words import say
from trace import lots
from trace.errors import DomainError, Forbidden, NotFound
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import ReceiveIn
from trace.lots import Lot, Shipment
from trace.organisations import party_names
from trace.products import get_product

router = APIRouter(include_in_schema=False)


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
