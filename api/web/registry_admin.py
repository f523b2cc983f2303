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
from sqlmodel import select

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
from api.web.forms import field_errors, once_key
from api.web.registry_forms import (
    DESIGNATION_KINDS,
    MESSAGES,
    ORG_KINDS,
    ROLES,
    Posted,
    denied,
    ids,
    options,
    say,
    see_other,
    t,
    text,
    values_of,
)
from trace import admin_units, organisations, users
from trace.access import require_admin
from trace.config import get_settings
from trace.designations import registry
from trace.errors import DomainError, Forbidden, NotFound
from trace.organisations import Organisation, OrgKind
from trace.web_sessions import csrf_ok, csrf_token

router = APIRouter(include_in_schema=False)

LINK_COOKIE = "hytrace_link"  # a one-time link between the invitation's POST and the page that shows it once
ORG_FIELDS = ("kind", "name", "tax_code", "commune_code", "address", "idem")
USER_FIELDS = ("email", "full_name", "role", "idem")
DESIGNATION_FIELDS = ("kind", "name_vi", "name_en", "registration_number", "decision_number", "decision_date",
                      "holder_organisation_id", "categories", "idem")
INVITE_ROLES = ("member", "org_admin", "inspector")
_EMAIL = N_("Not an email address.")


def _communes() -> list[tuple[str, str]]:
    rows = admin_units.communes()
    return sorted(((c.code, c.name) for c in rows),
                  key=lambda pair: admin_units.fold_vietnamese(pair[1].split(" ", 1)[-1]))


# --------------------------------------------------------------------------- organisations


@router.get("/app/admin/organisations", response_class=HTMLResponse)
def organisations_page(request: Request, session: SessionDep, who: Member) -> Response:
    """Every organisation, filtered by kind and commune, with a link to its users."""
    try:
        require_admin(who.actor)
    except Forbidden as error:
        return denied(request, who, error)
    kind = request.query_params.get("kind") or ""
    commune = request.query_params.get("commune") or ""
    rows = organisations.list_organisations(session=session, kind=OrgKind(kind) if kind in ORG_KINDS else None,
                                            commune_code=commune or None, limit=500)
    return render(request, "app/registry/organisations.html", who, rows=[organisations.to_public(o) for o in rows],
                  kinds=ORG_KINDS, kind_options=options(ORG_KINDS, who), communes=_communes(), kind=kind,
                  commune=commune)


def _org_form(request: Request, who: Visitor, *, values: dict[str, Any], errors: dict[str, str],
              error: str | None = None, status: int = 200) -> Response:
    return render(request, "app/registry/organisation_form.html", who, status=status, v=values, errors=errors,
                  error=error, kind_options=options(ORG_KINDS, who), communes=_communes())


@router.get("/app/admin/organisations/new", response_class=HTMLResponse)
def new_organisation_page(request: Request, who: Member) -> Response:
    """The form to onboard an organisation."""
    try:
        require_admin(who.actor)
    except Forbidden as error:
        return denied(request, who, error)
    return _org_form(request, who, values={"kind": "cooperative", "idem": once_key()}, errors={})


@router.post("/app/admin/organisations/new", response_class=HTMLResponse)
def new_organisation(request: Request, session: SessionDep, who: Member, form: Posted) -> Response:
    """Onboard it (province admin: trace.organisations decides), then on to its users."""
    check_form(who, text(form, "csrf"))
    shown = values_of(form, *ORG_FIELDS)
    values = {"kind": shown["kind"], "name": shown["name"], "tax_code": shown["tax_code"],
              "commune_code": shown["commune_code"] or None, "address": shown["address"]}
    try:
        data = organisations.OrganisationCreate.model_validate(values)
    except ValidationError as error:
        return _org_form(request, who, values=shown, errors=field_errors(error, who.lang), status=422)
    try:
        org = organisations.create_organisation(session=session, actor=who.actor, data=data)
    except DomainError as error:
        if isinstance(error, Forbidden):
            return denied(request, who, error)
        again = session.exec(select(Organisation).where(Organisation.tax_code == data.tax_code)).first()
        if error.code == "tax_code_taken" and again and (again.name, again.kind) == (data.name, data.kind):
            # trace.organisations takes no idempotency key; the tax code is unique, so a resent form is harmless.
            return see_other(f"/app/admin/organisations/{again.id}/users")
        return _org_form(request, who, values=shown, errors={}, error=say(error, who), status=422)
    return see_other(f"/app/admin/organisations/{org.id}/users?created=1")


# --------------------------------------------------------------------------- an organisation's users


def _users_page(request: Request, session: SessionDep, who: Visitor, org: Organisation, *, values: dict[str, Any],
                errors: dict[str, str], error: str | None = None, status: int = 200) -> Response:
    members = users.list_members(session=session, actor=who.actor, organisation_id=org.id)  # type: ignore[arg-type]
    link = request.cookies.get(LINK_COOKIE, "") if status == 200 else ""
    user_id, _, token = link.partition(":")
    invited = next((u for u in members if str(u.id) == user_id), None) if token else None
    response = render(request, "app/registry/users.html", who, status=status, org=org, members=members, roles=ROLES,
                      role_options=[(r, t(who, ROLES[r])) for r in INVITE_ROLES], kinds=ORG_KINDS, v=values,
                      errors=errors, error=error, invited=invited,
                      link=f"{get_settings().public_base_url}/welcome?token={quote(token)}" if invited else None,
                      created=request.query_params.get("created") == "1",
                      again=request.query_params.get("again") == "1")
    if link:
        response.delete_cookie(LINK_COOKIE, path=_users_path(org.id))  # type: ignore[arg-type]  # shown once
    return response


def _users_path(organisation_id: int) -> str:
    return f"/app/admin/organisations/{organisation_id}/users"


@router.get("/app/admin/organisations/{organisation_id}/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep, who: Member, organisation_id: DbId) -> Response:
    """The organisation's members, and the form to invite one (its administrators and the province admin)."""
    try:
        org = organisations.get_organisation(session=session, organisation_id=organisation_id)
        return _users_page(request, session, who, org, values={"role": "member", "idem": once_key()}, errors={})
    except (NotFound, Forbidden) as error:
        return denied(request, who, error)


@router.post("/app/admin/organisations/{organisation_id}/users", response_class=HTMLResponse)
def invite(request: Request, session: SessionDep, who: Member, organisation_id: DbId, form: Posted) -> Response:
    """Invite a member (trace.users decides who may give which role); the one-time link is shown once next."""
    check_form(who, text(form, "csrf"))
    try:
        org = organisations.get_organisation(session=session, organisation_id=organisation_id)
        users.list_members(session=session, actor=who.actor, organisation_id=organisation_id)
    except (NotFound, Forbidden) as error:
        return denied(request, who, error)
    shown = values_of(form, *USER_FIELDS)
    try:
        data = users.UserCreate.model_validate({k: v for k, v in shown.items() if k != "idem" and v})
    except ValidationError as error:
        errors = field_errors(error, who.lang)
        if "email" in errors and shown["email"]:
            errors["email"] = t(who, _EMAIL)
        return _users_page(request, session, who, org, values=shown, errors=errors, status=422)
    try:
        invitation = users.invite_member(session=session, actor=who.actor, organisation_id=organisation_id, data=data)
    except DomainError as error:
        if isinstance(error, NotFound) or error.code == "org_admin_only":
            return denied(request, who, error)
        if error.code == "email_taken" and _already_invited(session, organisation_id, data):
            return see_other(f"{_users_path(organisation_id)}?again=1")
        return _users_page(request, session, who, org, values=shown, errors={}, error=say(error, who), status=422)
    response = see_other(f"{_users_path(organisation_id)}?invited=1")
    response.set_cookie(LINK_COOKIE, f"{invitation.user.id}:{invitation.token}", max_age=600, httponly=True,
                        samesite="strict", secure=secure_cookies(request), path=_users_path(organisation_id))
    return response


def _already_invited(session: SessionDep, organisation_id: int, data: users.UserCreate) -> bool:
    # trace.users takes no idempotency key; an email is unique, so a resent form creates nobody. Its link went
    # to the first answer: the page says so, and a new link is a password reset away.
    found = session.exec(select(users.User).where(users.User.email == data.email.strip().lower())).first()
    return (found is not None and found.organisation_id == organisation_id and found.full_name == data.full_name
            and found.password_hash is None)


@router.get("/welcome", response_class=HTMLResponse)
def welcome_page(request: Request, who: Anyone) -> Response:
    """Where an invited person (or one whose password was reset) sets a password through the one-time link."""
    return _welcome(request, who, request.query_params.get("token", "")[:200], None, 200)


def _welcome(request: Request, who: Visitor, token: str, error: str | None, status: int,
             errors: dict[str, str] | None = None) -> Response:
    secret = form_secret(request)
    response = render(request, "app/registry/welcome.html", who, status=status, token=token, error=error,
                      errors=errors or {}, form_token=csrf_token(secret))
    keep_form_secret(request, response, secret)
    return response


@router.post("/welcome", response_class=HTMLResponse)
def welcome(request: Request, session: SessionDep, who: Anyone, form: Posted) -> Response:
    """Set the password once (trace.users checks the link), then sign in."""
    token = text(form, "token")[:200]
    if not csrf_ok(request.cookies.get(FORM_COOKIE), text(form, "csrf")):
        return _welcome(request, who, token, t(who, N_("The form had expired: reload the page and try again.")), 403)
    try:
        data = users.PasswordSet.model_validate({"token": token, "password": form.get("password") or ""})
    except ValidationError as error:
        errors = field_errors(error, who.lang)
        if "token" in errors:
            return _welcome(request, who, token, t(who, MESSAGES["link_invalid"]), 422)
        return _welcome(request, who, token, None, 422, errors={"password": t(who, N_(
            "Too short: use at least 10 characters."))} if "password" in errors else errors)
    try:
        users.use_link(session=session, data=data)
    except DomainError as error:
        return _welcome(request, who, token, say(error, who), 422)
    return see_other("/login")


# --------------------------------------------------------------------------- the designation registry


@router.get("/app/admin/designations", response_class=HTMLResponse)
def registry_page(request: Request, session: SessionDep, who: Member) -> Response:
    """The designation registry as the province keeps it."""
    try:
        registry.require_registrar(session=session, actor=who.actor)
    except Forbidden as error:
        return denied(request, who, error)
    rows = [registry.to_public(session=session, designation=d)
            for d in registry.list_designations(session=session, limit=500)]
    return render(request, "app/registry/registry.html", who, rows=rows, kinds=DESIGNATION_KINDS,
                  saved=request.query_params.get("saved") == "1")


def _designation_form(request: Request, session: SessionDep, who: Visitor, *, values: dict[str, Any],
                      errors: dict[str, str], error: str | None = None, status: int = 200) -> Response:
    holders = organisations.list_organisations(session=session, limit=500)
    holders.sort(key=lambda o: (o.kind != OrgKind.DESIGNATION_HOLDER, o.name))
    return render(request, "app/registry/designation_form.html", who, status=status, v=values, errors=errors,
                  error=error, kind_options=options(DESIGNATION_KINDS, who), holders=[(o.id, o.name) for o in holders],
                  districts=admin_units.former_districts())


@router.get("/app/admin/designations/new", response_class=HTMLResponse)
def new_designation_page(request: Request, session: SessionDep, who: Member) -> Response:
    """The form to register a designation, its protected area as the former districts it was granted over."""
    try:
        registry.require_registrar(session=session, actor=who.actor)
    except Forbidden as error:
        return denied(request, who, error)
    return _designation_form(request, session, who, values={"kind": "geographical_indication", "idem": once_key(),
                                                            "districts": []}, errors={})


@router.post("/app/admin/designations/new", response_class=HTMLResponse)
def new_designation(request: Request, session: SessionDep, who: Member, form: Posted) -> Response:
    """Register it (trace.designations.registry decides who may, and maps the area to today's communes)."""
    check_form(who, text(form, "csrf"))
    shown = {**values_of(form, *DESIGNATION_FIELDS), "districts": ids(form, "districts")}
    values = {**{k: shown[k] or None for k in DESIGNATION_FIELDS if k not in ("categories", "idem")},
              "categories": [c.strip() for c in shown["categories"].split(",") if c.strip()],
              "area_former_districts": shown["districts"]}
    values["name_vi"] = shown["name_vi"]
    try:
        data = registry.DesignationCreate.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        return _designation_form(request, session, who, values=shown, errors=field_errors(error, who.lang), status=422)
    try:
        registry.create_designation(session=session, actor=who.actor, data=data)
    except DomainError as error:
        if isinstance(error, Forbidden):
            return denied(request, who, error)
        if error.code == "designation_exists" and _same_designation(session, data):
            return see_other("/app/admin/designations?saved=1")  # a double tap: registered once
        return _designation_form(request, session, who, values=shown, errors={}, error=say(error, who), status=422)
    return see_other("/app/admin/designations?saved=1")


def _same_designation(session: SessionDep, data: registry.DesignationCreate) -> bool:
    # trace.designations.registry takes no idempotency key; kind and name are unique, so a resent form is harmless.
    return any(d.kind == data.kind and d.name_vi == data.name_vi and d.holder_organisation_id == data.holder_organisation_id
               for d in registry.list_designations(session=session, kind=data.kind, limit=500))
