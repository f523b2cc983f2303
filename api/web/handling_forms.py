"""What the handling pages share: refusals in words, the lot a page may show, typed quantities and dates."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal

from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.web.context import N_, Visitor
from api.web.forms import field_errors, number
from api.web.words import t
from trace import lots
from trace.lots import Lot
from trace.platform.timeutil import today
from trace.products import Product, products_by_id


def held(session: Session, who: Visitor, lot: Lot) -> Decimal:
    """What the organisation holds of a lot now."""
    org = who.actor.organisation_id
    return lots.held_by(session=session, lot_id=lot.id, organisation_id=org) if org else Decimal(0)  # type: ignore[arg-type]


def product_name(product: Product | None, lang: str) -> str:
    """A product's name in the page's language."""
    if product is None:
        return ""
    return product.name_en if lang == "en" and product.name_en else product.name_vi


def product_names(session: Session, ids: Iterable[int | None], lang: str) -> dict[int, str]:
    """Products' names by id in the page's language."""
    return {i: product_name(p, lang) for i, p in products_by_id(session=session, ids=ids).items()}


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
