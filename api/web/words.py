"""The workspace's words for the domain's refusals: one catalogue by error code, one ``say``, one ``t``;
and the names of the domain's kinds that pages of several areas show.

Every refusal a page shows comes from here, so a code has one wording wherever it is met (English here,
Vietnamese in ``api/locale``; ``%(name)s`` takes the error's details, numbers in the page's format, or the
values a page adds). A code raised in ``trace/`` without words here shows the domain's own message;
``tests/api/test_words.py`` fails while any code lacks words, except the few listed there on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from api import i18n
from api.web.context import N_
from trace.errors import DomainError

# A domain refusal, by its code, in words for people (the catalogue translates them).
WORDS: dict[str, str] = {
    "admin_only": N_("Only the province administrator may do this."),
    "all_void": N_("Every code of this run is void: there is nothing to print again."),
    "already_on_hold": N_("This lot is already on hold."),
    "area_mixed": N_("Give the protected area either over former units or over today's communes, not both."),
    "area_not_in_right": N_("Your organisation's right to use %(designation)s does not cover this growing area."),
    "area_outside": N_("This growing area lies outside the protected area of %(designation)s."),
    "area_required": N_("A geographical indication has a protected area: tick its former districts."),
    "area_unknown_former_commune": N_(
        "This growing area's commune lies only partly inside the protected area of %(designation)s: "
        "record the area's former (pre-2025) commune to claim it."
    ),
    "artefact_corrupt": N_(
        "This run's labels file was changed or damaged after it was made, so it is not given out: "
        "print the same codes again and tell the operator."
    ),
    "bad_credentials": N_("Wrong email or password."),
    "bad_idempotency_key": N_("This form is damaged: reload the page and fill it in again."),
    "before_lot_exists": N_("The date is before this lot existed."),
    "cannot_change_own_role": N_("You cannot change your own role."),
    "cannot_remove_self": N_("You cannot remove yourself."),
    "cannot_reset_self": N_("Change your own password on your account page."),
    "categories_required": N_("A designation covers at least one product category."),
    "category_not_covered": N_("%(designation)s does not cover this kind of product."),
    "change_before_last": N_("A change cannot take effect before the right's last change."),
    "dashboard_admin_only": N_("Only the province administrator sees the province's dashboard."),
    "derived_categories_required": N_("An inheritance rule needs the categories a transformation may carry it into."),
    "designation_exists": N_("A designation of this kind with this name is already registered."),
    "designation_inactive": N_("%(designation)s is no longer in force."),
    "email_taken": N_("A user with this email already exists."),
    "event_in_future": N_("The date is in the future."),
    "event_too_old": N_("The date is too long ago."),
    "exceeds_holding": N_("Your organisation holds only %(held)s %(unit)s of lot %(lot)s, not %(asked)s %(unit)s."),
    "exceeds_shipment": N_("Only %(outstanding)s %(unit)s is still in transit on this shipment."),
    "expiry_before_production": N_("The expiry date is before the harvest."),
    "former_commune_mismatch": N_("This former commune did not become part of the chosen commune."),
    "gln_taken": N_("This GLN already belongs to another organisation."),
    "held_by_authority": N_("An authority put this lot on hold: only an authority may release it."),
    "hold_not_allowed": N_("Only a market inspector or the lot's producer may put this lot on hold."),
    "idempotency_in_progress": N_("This form is being recorded: wait a moment, then reload."),
    "idempotency_key_reused": N_("This form was already sent with other values: reload the page and fill it in again."),
    "input_after_harvest": N_("A farming input is dated after the harvest."),
    "invalid_validity": N_("The end of the validity is before its start."),
    "invitation_used": N_("This person has already used the invitation."),
    "last_org_admin": N_("The organisation must keep at least one administrator: appoint another one first."),
    "link_invalid": N_("This link is invalid, used or expired: ask your administrator for a new one."),
    "location_code_taken": N_("This code is already registered."),
    "location_inactive": N_("This place is no longer in use."),
    "location_not_grantees": N_("A chosen growing area is not one of the producer's."),
    "location_required": N_("Choose a place."),
    "lot_cancelled": N_("This lot was cancelled."),
    "lot_code_charset": N_("A lot code may hold letters without accents, digits and signs such as - / . _ only."),
    "lot_code_length": N_("A lot code has 1 to 20 characters."),
    "lot_exists": N_("A lot with this code already exists for this product: choose another code."),
    "lot_on_hold": N_("This lot is on hold: it may not be moved, processed or sold."),
    "lot_recalled": N_("This lot is recalled: it may not be moved, processed or sold."),
    "no_organisation": N_("Your account belongs to no organisation: use an account of an authority."),
    "no_right": N_("Your organisation has no right to use %(designation)s."),
    "not_a_writer": N_("Your account cannot record events for an organisation."),
    "not_an_inspector": N_("Verifying with the checklist is for market inspectors."),
    "not_designation_holder": N_(
        "Only the holder of this designation grants or changes rights to use it and sees how it is used."
    ),
    "not_found": N_("Not found, or not yours to see."),
    "not_holder": N_("Your organisation does not hold this lot now."),
    "not_on_hold": N_("This lot is not on hold."),
    "not_queued": N_("Only a run that has not started yet can be cancelled."),
    "not_ready": N_("The labels are not ready yet."),
    "not_your_location": N_("This place is not one of your organisation's."),
    "not_your_product": N_("Choose one of your organisation's products."),
    "not_your_run": N_("Only the organisation that printed this run may do this."),
    "org_admin_only": N_("Only an administrator of this organisation may do this."),
    "over_capacity": N_(
        "This lot has room for %(left)s more labels (%(limit)s packages, %(used)s labels issued). Give a "
        "reason to print more."
    ),
    "password_too_short": N_("The new password is too short: use at least 10 characters."),
    "password_trivial": N_("The new password is too easy to guess."),
    "period_backwards": N_("The period ends before it starts."),
    "period_not_a_date": N_("Choose both dates of the period."),
    "period_out_of_range": N_("Choose a period between 2000 and 2100."),
    "period_too_long": N_("A period is at most ten years long."),
    "planting_code_required": N_("A growing area needs its planting-area code."),
    "pre_harvest_interval": N_(
        "A farming input was applied too close to the harvest: its pre-harvest interval has not passed yet."
    ),
    "product_not_grantees": N_("A chosen product is not one of the producer's."),
    "product_not_in_right": N_("Your organisation's right to use %(designation)s does not cover this product."),
    "quota_exceeded": N_("The designation's label quota allows only %(left)s more labels this year."),
    "recall_not_allowed": N_("Only a market inspector or the lot's producer may recall this lot."),
    "receive_before_ship": N_("The date is before the shipment was sent."),
    "registrar_only": N_("Only the province administrator or an authority keeps the designation registry."),
    "release_not_allowed": N_("Only a market inspector or the lot's producer may release this lot."),
    "report_not_ready": N_("This report is not ready yet."),
    "required_field": N_("A required field was left empty."),
    "retry": N_("The same form is still being saved: wait a moment, then reload the page."),
    "right_active": N_("This right is in force: it can be suspended or revoked."),
    "right_exists": N_("This decision number already grants a right to this designation."),
    "right_expired": N_("Your organisation's right to use %(designation)s had expired by the harvest day."),
    "right_not_yet_valid": N_("Your organisation's right to use %(designation)s was not yet valid on the harvest day."),
    "right_revoked": N_("The right to use %(designation)s was revoked: a revocation is final."),
    "right_suspended": N_("The right to use %(designation)s is suspended."),
    "role_not_grantable": N_("Your account may not give this role."),
    "run_cancelled": N_("This run was cancelled: its codes are void."),
    "section_not_in_scope": N_("Your report has no such section."),
    "session_ended": N_("Your session has ended: sign in again."),
    "ship_to_self": N_("Choose another organisation: goods moved between your own places are recorded as storage."),
    "shipment_closed": N_("This shipment has already been received in full."),
    "tax_code_taken": N_("An organisation with this tax code is already registered."),
    "too_many_attempts": N_(
        "Too many wrong passwords for this account: sign-in is paused for a few minutes. Try again "
        "later, or ask your organisation's administrator for a new sign-in link."
    ),
    "too_many_for_format": N_("At most %(limit)s labels per run in this format: split the job into several runs."),
    "unknown_commune": N_("Choose today's commune from the list."),
    "unknown_designation": N_("This designation does not exist."),
    "unknown_destination": N_("This buyer does not exist."),
    "unknown_format": N_("Choose a label format from the list."),
    "unknown_former_commune": N_("Choose the former commune from the list."),
    "unknown_former_district": N_("A chosen district is not a former district of Hưng Yên or Thái Bình."),
    "unknown_grantee": N_("Choose an active organisation as the producer."),
    "unknown_holder": N_("Choose an active organisation as the holder."),
    "unknown_lot": N_("This lot does not exist."),
    "unknown_product": N_("Choose one of your organisation's products."),
    "user_removed": N_("This user has been removed."),
    "wrong_location_kind": N_("A harvest is recorded at a growing area or a farm."),
    # packing: a carton's code, and the form as a whole
    "parent_missing": N_("Scan or type the carton's code."),
    "parent_unreadable": N_("A carton's code is an SSCC of 18 digits, or the QR code of a carton label."),
    "sscc_check_digit": N_("This SSCC's last digit (the check digit) does not match: check the digits."),
    "parent_not_ours": N_("This carton label was not issued by this system."),
    "parent_not_a_unit": N_("This code names a product or a lot, not one carton."),
    "parent_unknown": N_("This system never issued this carton code."),
    "parent_void": N_("This carton label was voided."),
    "parent_not_held": N_("This carton label is of a lot your organisation does not hold."),
    "parent_taken": N_("This carton already holds another organisation's goods."),
    "no_codes": N_("Scan or type at least one code, one per line."),
    "too_many_codes": N_("At most %(limit)s codes in one pack: split them between several packs."),
    # packing: one line's code
    "unreadable": N_("Cannot read this code: scan the label's QR code or type the code printed under it."),
    "not_a_unit": N_("This code names a product or a lot, not one package: scan each package's own label."),
    "unknown_unit": N_("This system never issued this code: the label may not be genuine."),
    "already_packed": N_("Already packed in %(parent)s."),
    # a label code that does not check (the inspector's verdict, the code check)
    "not_genuine": N_("This code was not issued by this system: the label may not be genuine."),
    "code_check": N_("The code does not add up: it may be mistyped. Check it against the label and type it again."),
    "dl_not_ours": N_("This QR code is not one of this system's labels."),
    "code_length": N_("This does not look like a label code: it has 9 letters and digits, for example 7KQ-2M9-XDV."),
    "code_characters": N_(
        "This does not look like a label code: it has 9 letters and digits, for example 7KQ-2M9-XDV."
    ),
    # refusals a page can meet that had no words of their own before
    "not_your_organisation": N_("This belongs to another organisation: you may only act for your own."),
    "unknown_action": N_("This action does not exist."),
    "no_matching_shipment": N_("No shipment with this number is addressed to your organisation."),
    "conversion_units": N_("The conversion's units do not match the units of the input and output lots."),
    "unit_mismatch": N_(
        "The lot and its product are counted in units that do not convert: the labels cannot be counted."
    ),
    "not_in_run": N_("Some codes are not from this print run."),
    "report_not_allowed": N_("The recall report is for authorities, the recalling organisation and the producer."),
}


# The domain's kinds, in words for people (the catalogue translates them).
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
RIGHT_STATUSES = {"active": N_("In force"), "suspended": N_("Suspended"), "revoked": N_("Revoked")}


def options(rows: Mapping[str, str], lang: str) -> list[tuple[str, str]]:
    """A choice's options (value, label), the labels translated."""
    return [(value, t(lang, label)) for value, label in rows.items()]


def t(lang: str, text: str) -> str:
    """One of our texts in the page's language."""
    return i18n.translations(lang).gettext(text)


def has_words(error: DomainError) -> bool:
    """Whether the catalogue words this refusal (else a page shows the domain's message or its own)."""
    return (error.code or "") in WORDS


def say(error: DomainError, lang: str, **extra: str) -> str:
    """A domain refusal in words for people: ours by its code, filled from its details and ``extra``
    (what the page knows, such as the lot's unit); the domain's own message when we have no words."""
    text = WORDS.get(error.code or "")
    if text is None:
        return error.message
    # words that want a detail this refusal does not carry: the domain's message says it all
    return fill(text, lang, {**error.details, **extra}) or error.message


# The details that are amounts, shown in the reader's number format (1.234,5 in Vietnamese). Only these: a
# detail of digits may be an identifier (an SSCC, a lot code) that must be shown as it is.
AMOUNTS = frozenset({"held", "asked", "outstanding", "left", "limit", "used", "quota", "first"})


def fill(text: str, lang: str, values: Mapping[str, Any]) -> str | None:
    """``text`` translated, its ``%(name)s`` filled from ``values`` (amounts in the reader's format); None when
    a value it wants is missing."""
    try:
        return t(lang, text) % {
            name: _shown(value, lang) if name in AMOUNTS else value for name, value in values.items()
        }
    except (KeyError, TypeError, ValueError):
        return None


def _shown(value: Any, lang: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return value
    try:
        return i18n.number(Decimal(str(value)), lang)
    except ArithmeticError:
        return value
