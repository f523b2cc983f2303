"""What the handling pages share: refusals in words, the lot a page may show, typed quantities and dates."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api import i18n
from api.web.context import N_, Visitor, render
from api.web.forms import field_errors, number
from trace import lots
from trace.errors import DomainError, Forbidden, NotFound
from trace.lots import Lot
from trace.platform.timeutil import today
from trace.products import Product

# Domain refusals these forms meet, by code, in words for people (the catalogue translates them);
# %(name)s takes the error's details (numbers in the page's format).
WORDS: dict[str, str] = {
    "exceeds_shipment": N_("Only %(outstanding)s %(unit)s is still in transit on this shipment."),
    "shipment_closed": N_("This shipment has already been received in full."),
    "receive_before_ship": N_("The date is before the shipment was sent."),
    "exceeds_holding": N_("Your organisation holds only %(held)s %(unit)s of lot %(lot)s, not %(asked)s %(unit)s."),
    "not_holder": N_("Your organisation does not hold this lot now."),
    "lot_on_hold": N_("This lot is on hold: it may not be moved, processed or sold."),
    "lot_recalled": N_("This lot is recalled: it may not be moved, processed or sold."),
    "lot_cancelled": N_("This lot was cancelled."),
    "lot_exists": N_("A lot with this code already exists for this product: choose another code."),
    "event_in_future": N_("The date is in the future."),
    "before_lot_exists": N_("The date is before this lot existed."),
    "location_required": N_("Choose a place."),
    "not_your_location": N_("This place is not one of your organisation's."),
    "location_inactive": N_("This place is no longer in use."),
    "not_a_writer": N_("Your account cannot record events for an organisation."),
    "idempotency_key_reused": N_("This form was already sent with other values: reload the page and try again."),
    "unknown_product": N_("Choose one of your organisation's products."),
    "not_your_product": N_("Choose one of your organisation's products."),
    "lot_code_length": N_("A lot code has 1 to 20 characters."),
    "lot_code_charset": N_("A lot code may hold letters without accents, digits and signs such as - / . _ only."),
    "over_capacity": N_(
        "This lot has room for %(left)s more labels (%(limit)s packages, %(used)s labels issued). "
        "Give a reason to print more."
    ),
    "quota_exceeded": N_("The designation's label quota allows only %(left)s more labels this year."),
    "too_many_for_format": N_("At most %(limit)s labels per run in this format: split the job into several runs."),
    "unknown_format": N_("Choose a label format from the list."),
    "not_queued": N_("Only a run that has not started yet can be cancelled."),
    "run_cancelled": N_("This run was cancelled: its codes are void."),
    "all_void": N_("Every code of this run is void: there is nothing to print again."),
    "not_ready": N_("The labels are not ready yet."),
    "not_your_run": N_("Only the organisation that printed this run may do this."),
}


def t(lang: str, text: str) -> str:
    """A text in the page's language."""
    return i18n.translations(lang).gettext(text)


def words(error: DomainError, lang: str, **extra: str) -> str:
    """A domain refusal in words for people: ours by its code, else the domain's own message."""
    text = WORDS.get(error.code or "")
    if text is None:
        return error.message
    values: dict[str, Any] = dict(extra)
    for name, value in error.details.items():
        try:
            values[name] = i18n.number(Decimal(str(value)), lang)
        except ArithmeticError:
            values[name] = value
    try:
        return t(lang, text) % values
    except (KeyError, TypeError, ValueError):
        return t(lang, text).split(" %(")[0]


def refused(request: Request, who: Visitor, error: DomainError) -> Response:
    """The page for what one may not see or do: not found, forbidden, or not possible now."""
    if isinstance(error, NotFound):
        status, text = 404, t(who.lang, N_("Not found, or not yours to see."))
    elif isinstance(error, Forbidden):
        status, text = (
            403,
            words(error, who.lang) if error.code in WORDS else t(who.lang, N_("Your organisation may not do this.")),
        )
    else:
        status, text = 409, words(error, who.lang)
    return render(request, "app/handling/refused.html", who, status=status, message=text)


def held(session: Session, who: Visitor, lot: Lot) -> Decimal:
    """What the organisation holds of a lot now."""
    org = who.actor.organisation_id
    return lots.held_by(session=session, lot_id=lot.id, organisation_id=org) if org else Decimal(0)  # type: ignore[arg-type]


def product_name(product: Product | None, lang: str) -> str:
    """A product's name in the page's language."""
    if product is None:
        return ""
    return product.name_en if lang == "en" and product.name_en else product.name_vi


def quantity(text: str, lang: str, errors: dict[str, str], field: str) -> Decimal | None:
    """A typed quantity; a word in ``errors`` when it is not a number."""
    if not text.strip():
        errors[field] = t(lang, N_("Required."))
        return None
    found = number(text, lang)
    if found is None:
        errors[field] = t(lang, N_("Not a number."))
    return found


def day(text: str, lang: str, errors: dict[str, str], field: str) -> date | None:
    """A date from a date field (empty: none)."""
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        errors[field] = t(lang, N_("Not a date."))
        return None


def event_time(when: date | None) -> datetime | None:
    """An event on a chosen day: now when it is today, else the end of that day where it happened
    (a naive time is read as Vietnam's; a future day is refused by the domain)."""
    if when is None or when == today():
        return None
    return datetime.combine(when, time(23, 59))


def errors_of(error: ValidationError, lang: str, names: dict[str, str] | None = None) -> dict[str, str]:
    """Validation errors keyed by the form's own field names."""
    found: dict[str, str] = {}
    for where, text in field_errors(error, lang).items():
        found.setdefault((names or {}).get(where, where), text)
    return found


def redirect(url: str) -> Response:
    """The answer to a form that recorded something: see the result (a reload sends nothing again)."""
    return RedirectResponse(url, status_code=303)
