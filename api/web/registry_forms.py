"""What the registry area's pages share: reading a form, the domain's refusals in words for people,
and the page answered when something is not there or not the user's."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from api import i18n
from api.web.context import N_, Visitor
from api.web.forms import number
from api.web.words import t

DESIGNATION_KINDS = {
    "geographical_indication": N_("Geographical indication"),
    "collective_trademark": N_("Collective trademark"),
    "certification_trademark": N_("Certification trademark"),
}
ORG_KINDS = {
    "cooperative": N_("Cooperative"),
    "farm": N_("Farm household"),
    "processor": N_("Processor"),
    "distributor": N_("Distributor"),
    "retailer": N_("Shop"),
    "designation_holder": N_("Designation holder"),
    "authority": N_("Authority"),
}
ROLES = {
    "member": N_("Member"),
    "org_admin": N_("Organisation administrator"),
    "inspector": N_("Inspector"),
    "admin": N_("Province administrator"),
}
STATUSES = {"active": N_("In force"), "suspended": N_("Suspended"), "revoked": N_("Revoked")}
ACTIONS = {"suspend": N_("Suspend"), "reinstate": N_("Reinstate"), "revoke": N_("Revoke")}
NOT_WHOLE = "not a whole number"  # what a form passes on for a count that is not one (the model says so)


async def _form(request: Request) -> FormData:
    return await request.form()


Posted = Annotated[FormData, Depends(_form)]


def text(form: FormData, name: str) -> str:
    """A form field, trimmed; empty when absent."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def or_none(form: FormData, name: str) -> str | None:
    """A form field, or None when left empty."""
    return text(form, name) or None


def ids(form: FormData, name: str) -> list[str]:
    """Every value of a multiple choice (ticked boxes), as sent."""
    return [x for x in form.getlist(name) if isinstance(x, str) and x.strip()]


def whole(typed: str, who: Visitor) -> int | str | None:
    """A count typed the local way ("1.000" in Vietnamese); text the model refuses when it is not one."""
    if not typed:
        return None
    found = number(typed, who.lang)
    if found is None or found != found.to_integral_value():
        return NOT_WHOLE
    return int(found)


def shown_number(value: Decimal | int | None, who: Visitor) -> str:
    """A number as the visitor types it."""
    return i18n.number(value, who.lang) if value is not None else ""


def see_other(url: str) -> Response:
    """The answer after a POST that wrote (or found its form already recorded)."""
    return RedirectResponse(url, status_code=303)


def options(rows: dict[str, str], who: Visitor) -> list[tuple[str, str]]:
    """A choice's options, translated."""
    return [(value, t(who.lang, label)) for value, label in rows.items()]


def values_of(form: FormData, *names: str) -> dict[str, Any]:
    """The typed fields, for showing the form again."""
    return {name: text(form, name) for name in names}
