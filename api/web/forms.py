"""What every workspace form needs: the form as sent and one set of readers for its fields (text, numbers
typed the Vietnamese way, dates, coordinates, ids), a once-only key (a double tap or a retry records once),
and the domain's refusals shown beside the field they concern or on the one refusal page.

A page reads its form through :data:`Posted` (the form as sent) and these readers, never through FastAPI
``Form(...)`` parameters: a form's fields may repeat (rows, ticked boxes) or be named by row (``input2_kind``),
and a field that cannot be read is said beside it in the page's words, not answered with the API's JSON 422.
A reader of a typed value writes its words into ``errors`` under the field's name and gives None.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, ParamSpec

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from api import i18n
from api.web.context import N_, Visitor, render
from api.web.words import has_words, say, t
from trace.errors import DomainError, Forbidden, NotFound
from trace.platform.timeutil import local_zone, today

P = ParamSpec("P")

# Refusals of who asks, not of what was typed (an account that records for no organisation, a place of
# another's): answered with the refusal page, not beside a field.
ACCESS = frozenset({"not_a_writer", "not_your_organisation"})

# A field's words when it cannot be read (the same words as when a model refuses it).
REQUIRED = N_("Required.")
NOT_A_NUMBER = N_("Not a number.")
NOT_WHOLE = N_("Not a whole number.")
NOT_A_DATE = N_("Not a date.")


async def _posted(request: Request) -> FormData:
    return await request.form()


# The form a page was sent (urlencoded; the photo form has its own reader, api.web.inspections.photo_upload).
Posted = Annotated[FormData, Depends(_posted)]


def once_key() -> str:
    """A fresh key for a form: sent back as ``idem`` and passed to trace/ as the idempotency key."""
    return secrets.token_urlsafe(18)


# --- fields as sent ----------------------------------------------------------------------------------


def text(form: FormData, name: str) -> str:
    """A field, trimmed; empty when absent."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    """A field, trimmed, or None when left empty."""
    return text(form, name) or None


def raw(form: FormData, name: str) -> str:
    """A field exactly as typed (a password: its spaces count); empty when absent."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def every(form: FormData, name: str, count: int) -> list[str]:
    """A field repeated on ``count`` rows (a table's column), each trimmed, empty rows kept in their place."""
    sent = [x.strip() if isinstance(x, str) else "" for x in form.getlist(name)]
    return (sent + [""] * count)[:count]


def ticked(form: FormData, name: str) -> list[str]:
    """Every value of a multiple choice (ticked boxes), as sent."""
    return [x for x in form.getlist(name) if isinstance(x, str) and x.strip()]


def values_of(form: FormData, *names: str) -> dict[str, str]:
    """The typed fields, trimmed, for showing the form again."""
    return {name: text(form, name) for name in names}


# --- typed values: the value, or None and the field's words in ``errors`` ------------------------------


def number(typed: str, lang: str) -> Decimal | None:
    """A number typed the page language's way ("1.234,5" in Vietnamese), or None when it is not one."""
    try:
        found = i18n.parse_number(typed, lang)
    except ValueError:
        return None
    return found if found.is_finite() else None


def quantity(typed: str, lang: str, errors: dict[str, str], field: str, *, required: bool = True) -> Decimal | None:
    """A typed quantity; a word in ``errors`` when it is not a number (or, if ``required``, left empty)."""
    if not typed.strip():
        if required:
            errors[field] = t(lang, REQUIRED)
        return None
    found = number(typed, lang)
    if found is None:
        errors[field] = t(lang, NOT_A_NUMBER)
    return found


def whole(typed: str, lang: str, errors: dict[str, str], field: str, *, required: bool = True) -> int | None:
    """A typed count ("1.000" in Vietnamese); a word in ``errors`` when it is not a whole number."""
    if not typed.strip():
        if required:
            errors[field] = t(lang, REQUIRED)
        return None
    found = number(typed, lang)
    if found is None or found != found.to_integral_value():
        errors[field] = t(lang, NOT_WHOLE)
        return None
    return int(found)


def day(typed: str, lang: str, errors: dict[str, str], field: str) -> date | None:
    """A date from a date field (empty: none); a word in ``errors`` when it is not one."""
    if not typed.strip():
        return None
    try:
        return date.fromisoformat(typed.strip())
    except ValueError:
        errors[field] = t(lang, NOT_A_DATE)
        return None


def coordinate(typed: str, lang: str, errors: dict[str, str], field: str) -> float | None:
    """A latitude or longitude (empty: none). Pasted from a map with a dot or typed with a comma, never with
    thousands separators; a word in ``errors`` when it is not a number."""
    cleaned = typed.strip().replace(",", ".")
    if not cleaned:
        return None
    try:
        found = Decimal(cleaned)
    except (InvalidOperation, ValueError):
        found = None
    if found is None or not found.is_finite():
        errors[field] = t(lang, NOT_A_NUMBER)
        return None
    return float(found)


def choice(
    typed: str, lang: str, errors: dict[str, str], field: str, word: str, *, required: bool = True
) -> int | None:
    """The id of what was chosen from a list (a place, a product); ``word`` in ``errors`` when none was chosen
    (if ``required``) or the choice is not an id."""
    if not typed.strip():
        if required:
            errors[field] = t(lang, word)
        return None
    if not typed.strip().isdigit():
        errors[field] = t(lang, word)
        return None
    return int(typed.strip())


def local_now() -> str:
    """Now where the goods are, as a date-and-time field shows it: the default of a form's "when"."""
    return datetime.now(local_zone()).strftime("%Y-%m-%dT%H:%M")


def event_time(when: date | None) -> datetime | None:
    """An event on a chosen day: now when it is today, else the end of that day where it happened
    (a naive time is read as Vietnam's; a future day is refused by the domain)."""
    if when is None or when == today():
        return None
    return datetime.combine(when, time(23, 59))


def see_other(url: str) -> Response:
    """The answer to a form that recorded something: see the result (a reload sends nothing again)."""
    return RedirectResponse(url, status_code=303)


# Pydantic's error types, in words for people (the catalogue translates them).
_FIELD_ERRORS = {
    "missing": REQUIRED,
    "greater_than": N_("Must be more than zero."),
    "decimal_max_places": N_("At most three decimals."),
    "string_too_short": N_("Too short."),
    "string_too_long": N_("Too long."),
    "date_from_datetime_parsing": NOT_A_DATE,
    "date_parsing": NOT_A_DATE,
    "int_parsing": NOT_WHOLE,
    "decimal_parsing": NOT_A_NUMBER,
}


def field_errors(error: ValidationError, lang: str, names: dict[str, str] | None = None) -> dict[str, str]:
    """A validation error as {field: message} for the form to show next to each field; ``names`` maps the
    model's places (``inputs.0.quantity``) to the form's own field names (``qty-1``)."""
    found: dict[str, str] = {}
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "form"
        words = _FIELD_ERRORS.get(item["type"])
        found.setdefault((names or {}).get(where, where), t(lang, words) if words else item["msg"])
    return found


def missing(error: DomainError) -> bool:
    """Whether a refusal means "nothing here for you": not found, or a lot id that names no lot."""
    return isinstance(error, NotFound) or error.code == "unknown_lot"


def refused(request: Request, who: Visitor, error: DomainError) -> Response:
    """The one page for what trace/ refuses outright: not there (404, the same words whether it does not exist or
    is another organisation's), not the user's to do (403), or not possible now (409), with the refusal's words."""
    lang = who.lang
    if missing(error):
        status, heading = 404, N_("Not found")
        message = t(lang, N_("This page does not exist, or it belongs to another organisation."))
    elif isinstance(error, Forbidden):
        status, heading = 403, N_("Not allowed")
        message = say(error, lang) if has_words(error) else t(lang, N_("Your organisation may not do this."))
    else:
        status, heading, message = 409, N_("Not available"), say(error, lang)
    return render(
        request, "app/refused.html", who, status=status, heading=t(lang, heading), message=message, back="/app"
    )


def refusing(
    show: Callable[[Request, Visitor, DomainError], Response] = refused,
    *refusals: type[DomainError],
) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
    """Make a page handler answer with ``show``'s page when trace/ refuses what it asks (NotFound unless told),
    so the handler reads straight through; it must take ``request`` and ``who``."""
    caught = refusals or (NotFound,)

    def wrap(handler: Callable[P, Response]) -> Callable[P, Response]:
        @functools.wraps(handler)
        def page(*args: P.args, **kwargs: P.kwargs) -> Response:
            try:
                return handler(*args, **kwargs)
            except caught as error:
                return show(kwargs["request"], kwargs["who"], error)  # type: ignore[arg-type]

        return page

    return wrap
