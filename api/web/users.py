"""Workspace pages for an organisation's users: its members, inviting one (a one-time link shown once),
removing a member, changing a role, and a new sign-in link. Its administrators and the province's
administrator use them; the page where the invited person sets a password is in :mod:`api.web.auth`.

Thin: trace.users decides who may do what; a page only reads the form, calls it, and renders or answers 303.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.deps import DbId, SessionDep
from api.web.context import N_, Member, Visitor, check_form, render, secure_cookies
from api.web.forms import Posted, field_errors, once_key, optional, refused, see_other, text, values_of
from api.web.words import ORG_KINDS, say, t
from trace import organisations, users
from trace.errors import DomainError, Forbidden, NotFound
from trace.organisations import Organisation
from trace.platform.config import get_settings

router = APIRouter(include_in_schema=False)

LINK_COOKIE = "hytrace_link"  # a one-time link between the invitation's POST and the page that shows it once
USER_FIELDS = ("email", "full_name", "role", "idem")
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
