"""Workspace pages of the province: organisations (list, filter, create), their users (invite: a
one-time link shown once), the designation registry (list, create); and the page where an invited
person uses the link to set a password.

Thin, like api/web/registry.py: trace/ decides who may do what (trace.access, trace.users,
trace.designations.registry); a page only reads the form, calls it, and renders or answers 303.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.deps import DbId, SessionDep
from api.web.context import (
    FORM_COOKIE,
    N_,
    Anyone,
    Member,
    Visitor,
    check_form,
    form_secret,
    keep_form_secret,
    render,
    secure_cookies,
)
from api.web.forms import (
    Posted,
    field_errors,
    once_key,
    optional,
    raw,
    refused,
    see_other,
    text,
    ticked,
    values_of,
)
from api.web.words import DESIGNATION_KINDS, ORG_KINDS, WORDS, options, say, t
from trace import admin_units, organisations, users
from trace.access import require_admin
from trace.designations import registry
from trace.designations.models import Designation
from trace.errors import DomainError, Forbidden, NotFound
from trace.organisations import Organisation, OrgKind
from trace.platform.config import get_settings
from trace.web_sessions import csrf_ok, csrf_token

router = APIRouter(include_in_schema=False)

LINK_COOKIE = "hytrace_link"  # a one-time link between the invitation's POST and the page that shows it once
ORG_FIELDS = ("kind", "name", "tax_code", "commune_code", "address", "idem")
USER_FIELDS = ("email", "full_name", "role", "idem")
DESIGNATION_FIELDS = (
    "kind",
    "name_vi",
    "name_en",
    "registration_number",
    "decision_number",
    "decision_date",
    "holder_organisation_id",
    "categories",
    "idem",
)
ROLES = {
    "member": N_("Member"),
    "org_admin": N_("Organisation administrator"),
    "inspector": N_("Inspector"),
    "admin": N_("Province administrator"),
}
INVITE_ROLES = ("member", "org_admin", "inspector")
MEMBER_ACTIONS = {"remove": "removed", "role": "role_changed", "link": "linked"}  # action → the flag shown after it
DONE = ("created", "invited", "removed", "role_changed", "linked")
_EMAIL = N_("Not an email address.")
_ROLE = N_("Choose a role from the list.")
_SURE = N_("Tick the box to confirm the removal: it cannot be undone.")


# --------------------------------------------------------------------------- organisations


@router.get("/app/admin/organisations", response_class=HTMLResponse)
def organisations_page(request: Request, session: SessionDep, who: Member) -> Response:
    """Every organisation, filtered by kind and commune, with a link to its users."""
    try:
        require_admin(who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    kind = request.query_params.get("kind") or ""
    commune = request.query_params.get("commune") or ""
    rows = organisations.list_organisations(
        session=session, kind=OrgKind(kind) if kind in ORG_KINDS else None, commune_code=commune or None, limit=500
    )
    return render(
        request,
        "app/registry/organisations.html",
        who,
        rows=[organisations.to_public(o, who.actor) for o in rows],
        kinds=ORG_KINDS,
        kind_options=options(ORG_KINDS, who.lang),
        communes=admin_units.commune_choices(),
        kind=kind,
        commune=commune,
    )


def _org_form(
    request: Request,
    who: Visitor,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "app/registry/organisation_form.html",
        who,
        status=status,
        v=values,
        errors=errors,
        error=error,
        kind_options=options(ORG_KINDS, who.lang),
        communes=admin_units.commune_choices(),
    )


@router.get("/app/admin/organisations/new", response_class=HTMLResponse)
def new_organisation_page(request: Request, who: Member) -> Response:
    """The form to onboard an organisation."""
    try:
        require_admin(who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    return _org_form(request, who, values={"kind": "cooperative", "idem": once_key()}, errors={})


@router.post("/app/admin/organisations/new", response_class=HTMLResponse)
def new_organisation(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Onboard it (province admin: trace.organisations decides), then on to its users."""
    check_form(who, text(form, "csrf"))
    shown = values_of(form, *ORG_FIELDS)
    values = {
        "kind": shown["kind"],
        "name": shown["name"],
        "tax_code": shown["tax_code"],
        "commune_code": shown["commune_code"] or None,
        "address": shown["address"],
    }
    try:
        data = organisations.OrganisationCreate.model_validate(values)
    except ValidationError as error:
        return _org_form(request, who, values=shown, errors=field_errors(error, who.lang), status=422)
    try:
        org = organisations.create_organisation(
            session=session, actor=who.actor, data=data, idempotency_key=optional(form, "idem")
        )  # a double tap: once
    except DomainError as error:
        if isinstance(error, Forbidden):
            return refused(request, who, error)
        return _org_form(request, who, values=shown, errors={}, error=say(error, who.lang), status=422)
    return see_other(f"/app/admin/organisations/{org.id}/users?created=1")


# --------------------------------------------------------------------------- an organisation's users


def _users_page(
    request: Request,
    session: SessionDep,
    who: Visitor,
    org: Organisation,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    error: str | None = None,
    member_error: str | None = None,
    status: int = 200,
) -> Response:
    members = users.list_members(session=session, actor=who.actor, organisation_id=org.id)  # type: ignore[arg-type]
    link = request.cookies.get(LINK_COOKIE, "") if status == 200 else ""
    user_id, _, token = link.partition(":")
    invited = next((u for u in members if str(u.id) == user_id), None) if token else None
    done = next((flag for flag in DONE if request.query_params.get(flag) == "1"), None)
    response = render(
        request,
        "app/registry/users.html",
        who,
        status=status,
        org=organisations.to_public(org, who.actor),
        members=members,
        roles=ROLES,
        role_options=[(r, t(who.lang, ROLES[r])) for r in INVITE_ROLES],
        kinds=ORG_KINDS,
        v=values,
        errors=errors,
        error=error,
        member_error=member_error,
        invited=invited,
        done=done,
        link=f"{get_settings().public_base_url}/welcome?token={quote(token)}" if invited else None,
    )
    if link:
        response.delete_cookie(LINK_COOKIE, path=_users_path(org.id))  # type: ignore[arg-type]  # shown once
    return response


def _users_path(organisation_id: int) -> str:
    return f"/app/admin/organisations/{organisation_id}/users"


def _show_link(request: Request, response: Response, organisation_id: int, invitation: users.Invitation) -> Response:
    # The link goes to the next page only (shown once there), never into a URL a browser would keep.
    response.set_cookie(
        LINK_COOKIE,
        f"{invitation.user.id}:{invitation.token}",
        max_age=600,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path=_users_path(organisation_id),
    )
    return response


@router.get("/app/admin/organisations/{organisation_id}/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep, who: Member, organisation_id: DbId) -> Response:
    """The organisation's members, and the form to invite one (its administrators and the province admin)."""
    try:
        org = organisations.get_organisation(session=session, organisation_id=organisation_id)
        return _users_page(request, session, who, org, values={"role": "member", "idem": once_key()}, errors={})
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)


@router.post("/app/admin/organisations/{organisation_id}/users", response_class=HTMLResponse)
def invite(request: Request, form: Posted, session: SessionDep, who: Member, organisation_id: DbId) -> Response:
    """Invite a member (trace.users decides who may give which role); the one-time link is shown once next."""
    check_form(who, text(form, "csrf"))
    try:
        org = organisations.get_organisation(session=session, organisation_id=organisation_id)
        users.list_members(session=session, actor=who.actor, organisation_id=organisation_id)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    shown = values_of(form, *USER_FIELDS)
    try:
        data = users.UserCreate.model_validate({k: v for k, v in shown.items() if k != "idem" and v})
    except ValidationError as error:
        errors = field_errors(error, who.lang)
        if "email" in errors and shown["email"]:
            errors["email"] = t(who.lang, _EMAIL)
        return _users_page(request, session, who, org, values=shown, errors=errors, status=422)
    try:
        # Sent again with the same key it invites nobody new; its answer carries a fresh link to the same person.
        invitation = users.invite_member(
            session=session,
            actor=who.actor,
            organisation_id=organisation_id,
            data=data,
            idempotency_key=optional(form, "idem"),
        )
    except DomainError as error:
        if isinstance(error, NotFound) or error.code == "org_admin_only":
            return refused(request, who, error)
        return _users_page(request, session, who, org, values=shown, errors={}, error=say(error, who.lang), status=422)
    return _show_link(request, see_other(f"{_users_path(organisation_id)}?invited=1"), organisation_id, invitation)


@router.post("/app/admin/organisations/{organisation_id}/users/{user_id}/{action}", response_class=HTMLResponse)
def manage_member(
    request: Request, form: Posted, session: SessionDep, who: Member, organisation_id: DbId, user_id: DbId, action: str
) -> Response:
    """Remove a member (their sessions end), change their role, or give them a new sign-in link shown once
    (trace.users decides who may). Each is the same whether sent once or twice, so it needs no once-only key;
    a second new link only replaces the first, and the page shows the one that works."""
    check_form(who, text(form, "csrf"))
    try:
        org = organisations.get_organisation(session=session, organisation_id=organisation_id)
        users.list_members(session=session, actor=who.actor, organisation_id=organisation_id)
        if action not in MEMBER_ACTIONS:
            raise NotFound(f"No action {action!r}")
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    target: dict[str, Any] = {
        "session": session,
        "actor": who.actor,
        "organisation_id": organisation_id,
        "user_id": user_id,
    }
    try:
        if action == "remove":
            if not text(form, "sure"):  # removal cannot be undone: the box is ticked on purpose
                return _users_page(
                    request,
                    session,
                    who,
                    org,
                    values={"role": "member", "idem": once_key()},
                    errors={},
                    member_error=t(who.lang, _SURE),
                    status=422,
                )
            users.remove_member(**target)
        elif action == "role":
            try:
                data = users.RoleChange.model_validate({"role": text(form, "role")})
            except ValidationError:
                return _users_page(
                    request,
                    session,
                    who,
                    org,
                    values={"role": "member", "idem": once_key()},
                    errors={},
                    member_error=t(who.lang, _ROLE),
                    status=422,
                )
            users.change_role(**target, data=data)
        else:
            invitation = users.reset_password(**target)
            return _show_link(
                request, see_other(f"{_users_path(organisation_id)}?linked=1"), organisation_id, invitation
            )
    except DomainError as error:
        if isinstance(error, NotFound) or error.code == "org_admin_only":
            return refused(request, who, error)
        return _users_page(
            request,
            session,
            who,
            org,
            values={"role": "member", "idem": once_key()},
            errors={},
            member_error=say(error, who.lang),
            status=422,
        )
    return see_other(f"{_users_path(organisation_id)}?{MEMBER_ACTIONS[action]}=1")


@router.get("/welcome", response_class=HTMLResponse)
def welcome_page(request: Request, who: Anyone) -> Response:
    """Where an invited person (or one whose password was reset) sets a password through the one-time link."""
    return _welcome(request, who, request.query_params.get("token", "")[:200], None, 200)


def _welcome(
    request: Request, who: Visitor, token: str, error: str | None, status: int, errors: dict[str, str] | None = None
) -> Response:
    secret = form_secret(request)
    response = render(
        request,
        "app/registry/welcome.html",
        who,
        status=status,
        token=token,
        error=error,
        errors=errors or {},
        form_token=csrf_token(secret),
    )
    keep_form_secret(request, response, secret)
    return response


@router.post("/welcome", response_class=HTMLResponse)
def welcome(request: Request, form: Posted, session: SessionDep, who: Anyone) -> Response:
    """Set the password once (trace.users checks the link), then sign in."""
    token = text(form, "token")[:200]
    if not csrf_ok(request.cookies.get(FORM_COOKIE), text(form, "csrf")):
        return _welcome(
            request, who, token, t(who.lang, N_("The form had expired: reload the page and try again.")), 403
        )
    try:
        data = users.PasswordSet.model_validate({"token": token, "password": raw(form, "password")})
    except ValidationError as error:
        errors = field_errors(error, who.lang)
        if "token" in errors:
            return _welcome(request, who, token, t(who.lang, WORDS["link_invalid"]), 422)
        return _welcome(
            request,
            who,
            token,
            None,
            422,
            errors={"password": t(who.lang, N_("Too short: use at least 10 characters."))}
            if "password" in errors
            else errors,
        )
    try:
        users.use_link(session=session, data=data)
    except DomainError as error:
        return _welcome(request, who, token, say(error, who.lang), 422)
    return see_other("/login")


# --------------------------------------------------------------------------- the designation registry


@router.get("/app/admin/designations", response_class=HTMLResponse)
def registry_page(request: Request, session: SessionDep, who: Member) -> Response:
    """The designation registry as the province keeps it."""
    try:
        registry.require_registrar(session=session, actor=who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    rows = [
        registry.to_public(session=session, designation=d)
        for d in registry.list_designations(session=session, limit=500)
    ]
    return render(
        request,
        "app/registry/registry.html",
        who,
        rows=rows,
        kinds=DESIGNATION_KINDS,
        saved=request.query_params.get("saved") == "1",
    )


def _designation_form(
    request: Request,
    session: SessionDep,
    who: Visitor,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    error: str | None = None,
    status: int = 200,
    editing: Designation | None = None,
) -> Response:
    holders = organisations.list_organisations(session=session, limit=500)
    holders.sort(key=lambda o: (o.kind != OrgKind.DESIGNATION_HOLDER, o.name))
    area = [c.name for c in (admin_units.commune(code) for code in editing.area_communes) if c] if editing else []
    return render(
        request,
        "app/registry/designation_form.html",
        who,
        status=status,
        v=values,
        errors=errors,
        error=error,
        kind_options=options(DESIGNATION_KINDS, who.lang),
        holders=[(o.id, organisations.shown_party(o, who.actor).name) for o in holders],
        districts=admin_units.former_districts(),
        editing=editing,
        area=area,
    )


@router.get("/app/admin/designations/new", response_class=HTMLResponse)
def new_designation_page(request: Request, session: SessionDep, who: Member) -> Response:
    """The form to register a designation, its protected area as the former districts it was granted over."""
    try:
        registry.require_registrar(session=session, actor=who.actor)
    except Forbidden as error:
        return refused(request, who, error)
    return _designation_form(
        request,
        session,
        who,
        values={"kind": "geographical_indication", "idem": once_key(), "districts": []},
        errors={},
    )


def _typed_designation(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    # What was typed (to show again) and the values for the model (empty optional fields as None).
    shown: dict[str, Any] = {**values_of(form, *DESIGNATION_FIELDS), "districts": ticked(form, "districts")}
    values = {
        **{k: shown[k] or None for k in DESIGNATION_FIELDS if k not in ("categories", "idem")},
        "categories": [c.strip() for c in shown["categories"].split(",") if c.strip()],
    }
    values["name_vi"] = shown["name_vi"]
    return shown, values


@router.post("/app/admin/designations/new", response_class=HTMLResponse)
def new_designation(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Register it (trace.designations.registry decides who may, and maps the area to today's communes)."""
    check_form(who, text(form, "csrf"))
    shown, values = _typed_designation(form)
    values["area_former_districts"] = shown["districts"]
    try:
        data = registry.DesignationCreate.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        return _designation_form(request, session, who, values=shown, errors=field_errors(error, who.lang), status=422)
    try:
        registry.create_designation(
            session=session, actor=who.actor, data=data, idempotency_key=optional(form, "idem")
        )  # a double tap registers once
    except DomainError as error:
        if isinstance(error, Forbidden):
            return refused(request, who, error)
        return _designation_form(request, session, who, values=shown, errors={}, error=say(error, who.lang), status=422)
    return see_other("/app/admin/designations?saved=1")


def _registrars_designation(session: SessionDep, who: Visitor, designation_id: int) -> Designation:
    registry.require_registrar(session=session, actor=who.actor)
    return registry.get_designation(session=session, designation_id=designation_id)


@router.get("/app/admin/designations/{designation_id}/edit", response_class=HTMLResponse)
def edit_designation_page(request: Request, session: SessionDep, who: Member, designation_id: DbId) -> Response:
    """The form to correct a designation's record: names, numbers, holder, categories, area, in force or not."""
    try:
        found = _registrars_designation(session, who, designation_id)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    values: dict[str, Any] = {
        name: "" if getattr(found, name) is None else str(getattr(found, name))
        for name in DESIGNATION_FIELDS
        if name not in ("categories", "idem")
    }
    values.update(
        kind=found.kind.value,
        categories=", ".join(found.categories),
        districts=list(found.area_former_districts),
        active="1" if found.active else "",
    )
    return _designation_form(request, session, who, values=values, errors={}, editing=found)


@router.post("/app/admin/designations/{designation_id}/edit", response_class=HTMLResponse)
def edit_designation(
    request: Request, form: Posted, session: SessionDep, who: Member, designation_id: DbId
) -> Response:
    """Save the changes (trace.designations.registry: the same rules and refusals as the JSON API's PATCH).

    Saving the same form twice changes nothing more, so it needs no once-only key.
    """
    check_form(who, text(form, "csrf"))
    try:
        found = _registrars_designation(session, who, designation_id)
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    shown, values = _typed_designation(form)
    shown["active"] = "1" if text(form, "active") else ""
    values["active"] = bool(shown["active"])
    if set(shown["districts"]) != set(found.area_former_districts):
        values["area_former_districts"] = shown["districts"]  # the area given anew replaces the whole area
    try:
        data = registry.DesignationUpdate.model_validate(values)
    except ValidationError as error:
        return _designation_form(
            request, session, who, values=shown, errors=field_errors(error, who.lang), status=422, editing=found
        )
    try:
        registry.update_designation(session=session, actor=who.actor, designation_id=designation_id, data=data)
    except DomainError as error:
        if isinstance(error, (NotFound, Forbidden)):
            return refused(request, who, error)
        return _designation_form(
            request, session, who, values=shown, errors={}, error=say(error, who.lang), status=422, editing=found
        )
    return see_other("/app/admin/designations?saved=1")
