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
from api.web.context import denied as page_denied
from api.web.forms import number, refusal
from trace.errors import DomainError

# Domain refusals these forms meet, by code, in words for people (the catalogue translates them).
MESSAGES: dict[str, str] = {
    "not_designation_holder": N_(
        "Only the holder of this designation grants or changes rights to use it and sees how it is used."
    ),
    "designation_inactive": N_("This designation is no longer in force."),
    "unknown_grantee": N_("Choose an active organisation as the producer."),
    "invalid_validity": N_("The end of the validity is before its start."),
    "product_not_grantees": N_("A chosen product is not one of the producer's."),
    "category_not_covered": N_("A chosen product is of a kind this designation does not cover."),
    "location_not_grantees": N_("A chosen growing area is not one of the producer's."),
    "area_outside": N_("A chosen growing area lies outside the protected area."),
    "area_unknown_former_commune": N_(
        "A chosen growing area's commune lies only partly inside the protected area: "
        "the producer must record the area's former (pre-2025) commune first."
    ),
    "right_exists": N_("This decision number already grants a right to this designation."),
    "right_revoked": N_("This right was revoked: a revocation is final."),
    "right_suspended": N_("This right is suspended: reinstate it or revoke it."),
    "right_active": N_("This right is in force: it can be suspended or revoked."),
    "change_before_last": N_("A change cannot take effect before the right's last change."),
    "tax_code_taken": N_("An organisation with this tax code is already registered."),
    "gln_taken": N_("This GLN already belongs to another organisation."),
    "unknown_commune": N_("Choose today's commune from the list."),
    "email_taken": N_("A user with this email already exists."),
    "role_not_grantable": N_("Your account may not give this role."),
    "admin_only": N_("Only the province administrator may do this."),
    "org_admin_only": N_("Only an administrator of this organisation may do this."),
    "registrar_only": N_("Only the province administrator or an authority keeps the designation registry."),
    "unknown_holder": N_("Choose an active organisation as the holder."),
    "categories_required": N_("A designation covers at least one product category."),
    "derived_categories_required": N_("An inheritance rule needs the categories a transformation may carry it into."),
    "area_required": N_("A geographical indication has a protected area: tick its former districts."),
    "designation_exists": N_("A designation of this kind with this name is already registered."),
    "unknown_former_district": N_("A chosen district is not a former district of Hưng Yên or Thái Bình."),
    "unknown_former_commune": N_("A former commune code is unknown."),
    "area_mixed": N_("Give the protected area either over former units or over today's communes, not both."),
    "link_invalid": N_("This link is invalid, used or expired: ask your administrator for a new one."),
    "required_field": N_("A required field was left empty."),
    "idempotency_key_reused": N_("This form was already sent with other values: reload the page and fill it in again."),
    "bad_idempotency_key": N_("This form is damaged: reload the page and fill it in again."),
    "retry": N_("The same form is still being saved: wait a moment, then reload the page."),
    "invitation_used": N_("This person has already used the invitation."),
    "cannot_remove_self": N_("You cannot remove yourself."),
    "cannot_change_own_role": N_("You cannot change your own role."),
    "cannot_reset_self": N_("Change your own password on your account page."),
    "last_org_admin": N_("The organisation must keep at least one administrator: appoint another one first."),
    "user_removed": N_("This user has been removed."),
}
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


def t(who: Visitor, text: str) -> str:
    """A text of ours in the visitor's language."""
    return i18n.translations(who.lang).gettext(text)


def say(error: DomainError, who: Visitor) -> str:
    """A refusal in words for people: ours when we have words for its code, else the shared ones."""
    text = MESSAGES.get(error.code or "")
    return t(who, text) if text else refusal(error, who.lang)


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


def denied(request: Request, who: Visitor, error: DomainError) -> Response:
    """Something that is not there, or not the user's: a small page, 404 or 403."""
    return page_denied(request, who, error, say(error, who))


def see_other(url: str) -> Response:
    """The answer after a POST that wrote (or found its form already recorded)."""
    return RedirectResponse(url, status_code=303)


def options(rows: dict[str, str], who: Visitor) -> list[tuple[str, str]]:
    """A choice's options, translated."""
    return [(value, t(who, label)) for value, label in rows.items()]


def values_of(form: FormData, *names: str) -> dict[str, Any]:
    """The typed fields, for showing the form again."""
    return {name: text(form, name) for name in names}
