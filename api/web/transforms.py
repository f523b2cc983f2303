"""Workspace pages for transforming: input lots the organisation holds, with quantities, into one new
output lot (drying, packing into bags), and the lot it made.

Thin: each handler reads the form, calls the same trace/ function as the JSON API (which decides
who may do what), and answers 303 to the result page; a refusal re-renders the form with its reason.
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
from api.web.forms import Posted, day, every, field_errors, once_key, quantity, refused, refusing, see_other, text
from api.web.words import say, t
from trace import lots
from trace.errors import DomainError, InvalidIdentifier, NotFound
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import TransformIn, TransformInput, TransformOutput
from trace.products import list_products

router = APIRouter(include_in_schema=False)

ROWS = 5  # input lots a transformation form offers


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
