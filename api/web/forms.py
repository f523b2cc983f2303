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
from api.web.context import N_, Visitor
from trace.errors import DomainError, NotFound

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


def refusing(
    show: Callable[[Request, Visitor, DomainError], Response],
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
