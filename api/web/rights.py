"""Workspace pages for rights to use a designation: its holder grants one to a producer (the decision,
validity, products and growing areas it covers, a yearly label quota), and suspends, reinstates or revokes it.

Thin: each handler reads the form, calls the same trace/ function as the JSON API (trace.designations
decides who may do what) and renders, or answers 303 after a POST that wrote.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api import i18n
from api.deps import DbId, SessionDep
from api.web.context import N_, Member, Visitor, check_form, render
from api.web.forms import Posted, field_errors, once_key, optional, refused, see_other, text, ticked, values_of, whole
from api.web.words import RIGHT_STATUSES, say
from trace import locations, organisations, products
from trace.designations import registry, rights, usage
from trace.designations.models import Designation, RightToUse
from trace.errors import DomainError, Forbidden, NotFound
from trace.platform.timeutil import today

router = APIRouter(include_in_schema=False)

ACTIONS = {"suspend": N_("Suspend"), "reinstate": N_("Reinstate"), "revoke": N_("Revoke")}
GRANT_FIELDS = ("organisation_id", "decision_number", "valid_from", "valid_to", "annual_label_quota", "note", "idem")


# --------------------------------------------------------------------------- granting a right


def _grant_form(
    request: Request,
    session: SessionDep,
    who: Visitor,
    designation: Designation,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    producers = sorted(
        (
            (o, organisations.pick_label(o, who.actor))
            for o in organisations.list_organisations(session=session, limit=500)
        ),
        key=lambda pair: pair[1],
    )
    chosen = next((o for o, _ in producers if str(o.id) == str(values.get("organisation_id") or "")), None)
    covered = set(designation.categories) | set(designation.derived_categories)
    own_products = (
        [
            p
            for p in products.list_products(session=session, organisation_id=chosen.id, limit=500)
            if p.category in covered
        ]
        if chosen
        else []
    )
    areas = (
        [
            x
            for x in locations.list_locations(
                session=session, organisation_id=chosen.id, kind=locations.LocationKind.GROWING_AREA, limit=500
            )
            if x.active
        ]
        if chosen
        else []
    )
    return render(
        request,
        "app/registry/grant.html",
        who,
        status=status,
        designation=designation,
        producers=[(o.id, name) for o, name in producers],
        chosen=chosen,
        chosen_name=organisations.shown_party(chosen, who.actor).name if chosen else "",
        products=own_products,
        areas=areas,
        v=values,
        errors=errors,
        error=error,
    )


@router.get("/app/designations/{designation_id}/rights/new", response_class=HTMLResponse)
def grant_page(request: Request, session: SessionDep, who: Member, designation_id: DbId) -> Response:
    """The form to grant a right: first the producer, then its decision, validity, scope and quota."""
    try:
        designation = registry.get_designation(session=session, designation_id=designation_id)
        usage.may_see(who.actor, designation)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    values = {
        "organisation_id": request.query_params.get("organisation_id", ""),
        "valid_from": today().isoformat(),
        "idem": once_key(),
        "product_ids": [],
        "location_ids": [],
    }
    return _grant_form(request, session, who, designation, values=values, errors={})


@router.post("/app/designations/{designation_id}/rights/new", response_class=HTMLResponse)
def grant(request: Request, form: Posted, session: SessionDep, who: Member, designation_id: DbId) -> Response:
    """Grant the right (trace.designations.rights decides), then back to the designation's rights."""
    check_form(who, text(form, "csrf"))
    try:
        designation = registry.get_designation(session=session, designation_id=designation_id)
        usage.may_see(who.actor, designation)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    shown: dict[str, Any] = {
        **values_of(form, *GRANT_FIELDS),
        "product_ids": ticked(form, "product_ids"),
        "location_ids": ticked(form, "location_ids"),
    }
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "organisation_id": optional(form, "organisation_id"),
        "decision_number": text(form, "decision_number"),
        "valid_from": optional(form, "valid_from"),
        "valid_to": optional(form, "valid_to"),
        "product_ids": shown["product_ids"],
        "location_ids": shown["location_ids"],
        "annual_label_quota": whole(
            shown["annual_label_quota"], who.lang, errors, "annual_label_quota", required=False
        ),
        "note": optional(form, "note"),
    }
    try:
        data = rights.RightCreate.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        errors = {**field_errors(error, who.lang), **errors}
    if errors:
        return _grant_form(request, session, who, designation, values=shown, errors=errors, status=422)
    try:
        rights.grant_right(
            session=session,
            actor=who.actor,
            designation_id=designation_id,
            data=data,
            idempotency_key=optional(form, "idem"),
        )  # a double tap finds its first grant
    except DomainError as error:
        if isinstance(error, (NotFound, Forbidden)):
            return refused(request, who, error)
        return _grant_form(
            request, session, who, designation, values=shown, errors={}, error=say(error, who.lang), status=422
        )
    return see_other(f"/app/designations/{designation_id}?saved=1")


# --------------------------------------------------------------------------- a right: suspend, reinstate, revoke


def _right_page(
    request: Request,
    session: SessionDep,
    who: Visitor,
    right: RightToUse,
    designation: Designation,
    *,
    errors: dict[str, dict[str, str]] | None = None,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    public = rights.to_public(
        session=session, right=right, actor=who.actor, holder_id=designation.holder_organisation_id
    )
    actions = rights.allowed_changes(right.status)
    used = usage.designation_usage(
        session=session,
        actor=who.actor,
        designation_id=designation.id,  # type: ignore[arg-type]
        year=today().year,
    )
    held = next((r for r in used.rights if r.right_id == right.id), None)
    return render(
        request,
        "app/registry/right.html",
        who,
        status=status,
        right=public,
        designation=designation,
        actions=actions,
        action_names=ACTIONS,
        statuses=RIGHT_STATUSES,
        errors=errors or {},
        error=error,
        typed=typed or {},
        idem=once_key(),
        used=held.quota_use[0] if held and held.quota_use else None,
        quota=i18n.number(public.annual_label_quota, who.lang),
        year=today().year,
        saved=request.query_params.get("saved") == "1",
    )


def _right_of(session: SessionDep, who: Visitor, right_id: int) -> tuple[RightToUse, Designation]:
    right = rights.get_right(session=session, right_id=right_id)
    designation = registry.get_designation(session=session, designation_id=right.designation_id)
    usage.may_see(who.actor, designation)
    return right, designation


@router.get("/app/rights/{right_id}", response_class=HTMLResponse)
def right_page(request: Request, session: SessionDep, who: Member, right_id: DbId) -> Response:
    """One right to use: its terms, status and quota use, with the changes its status allows."""
    try:
        right, designation = _right_of(session, who, right_id)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    return _right_page(request, session, who, right, designation)


@router.post("/app/rights/{right_id}/{action}", response_class=HTMLResponse)
def change(request: Request, form: Posted, session: SessionDep, who: Member, right_id: DbId, action: str) -> Response:
    """Suspend, reinstate or revoke the right with a reason (trace.designations.rights decides)."""
    check_form(who, text(form, "csrf"))
    try:
        if action not in rights.TRANSITIONS:
            raise NotFound(f"No action {action!r}")
        right = rights.get_right(session=session, right_id=right_id)
        designation = registry.get_designation(session=session, designation_id=right.designation_id)
    except NotFound as error:
        return refused(request, who, error)
    reason = text(form, "reason")
    try:
        data = rights.RightChange.model_validate({"reason": reason})
    except ValidationError as error:
        try:
            usage.may_see(who.actor, designation)
        except Forbidden as denial:
            return refused(request, who, denial)
        return _right_page(
            request,
            session,
            who,
            right,
            designation,
            errors={action: field_errors(error, who.lang)},
            typed={action: reason},
            status=422,
        )
    try:
        rights.change_right(
            session=session,
            actor=who.actor,
            right_id=right_id,
            action=action,
            data=data,
            idempotency_key=optional(form, "idem"),
        )  # a double tap finds its first change
    except DomainError as error:
        if isinstance(error, (NotFound, Forbidden)):
            return refused(request, who, error)
        return _right_page(
            request, session, who, right, designation, error=say(error, who.lang), typed={action: reason}, status=422
        )
    return see_other(f"/app/rights/{right_id}?saved=1")
