"""What every workspace form needs: a once-only key (a double tap or a retry records once), numbers
typed the Vietnamese way, and the domain's refusals shown beside the field they concern."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import ParamSpec

from fastapi import Request, Response
from pydantic import ValidationError

from api import i18n
from api.web.context import N_, Visitor, render
from api.web.words import has_words, say, t
from trace.errors import DomainError, Forbidden, NotFound

P = ParamSpec("P")


def once_key() -> str:
    """A fresh key for a form: sent back as ``idem`` and passed to trace/ as the idempotency key."""
    return secrets.token_urlsafe(18)


def number(text: str, lang: str) -> Decimal | None:
    """A typed quantity, or None when it is not a number (the form then says so)."""
    try:
        return i18n.parse_number(text, lang)
    except ValueError:
        return None


# Pydantic's error types, in words for people (the catalogue translates them).
_FIELD_ERRORS = {
    "missing": N_("Required."),
    "greater_than": N_("Must be more than zero."),
    "decimal_max_places": N_("At most three decimals."),
    "string_too_short": N_("Too short."),
    "string_too_long": N_("Too long."),
    "date_from_datetime_parsing": N_("Not a date."),
    "date_parsing": N_("Not a date."),
    "int_parsing": N_("Not a whole number."),
    "decimal_parsing": N_("Not a number."),
}


def field_errors(error: ValidationError, lang: str) -> dict[str, str]:
    """A validation error as {field: message} for the form to show next to each field."""
    words = i18n.translations(lang).gettext
    found: dict[str, str] = {}
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "form"
        text = _FIELD_ERRORS.get(item["type"])
        found.setdefault(where, words(text) if text else item["msg"])
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
        text = t(lang, N_("This page does not exist, or it belongs to another organisation."))
    elif isinstance(error, Forbidden):
        status, heading = 403, N_("Not allowed")
        text = say(error, lang) if has_words(error) else t(lang, N_("Your organisation may not do this."))
    else:
        status, heading, text = 409, N_("Not available"), say(error, lang)
    return render(request, "app/refused.html", who, status=status, heading=t(lang, heading), message=text, back="/app")


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
