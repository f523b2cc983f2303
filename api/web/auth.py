"""Signing in and out, one's own password, and setting it through a one-time link (an invitation, or a new
sign-in link an administrator made).

Thin: each handler reads the form, calls trace/, and renders or redirects (303 after a POST, so a
reload never sends a form twice).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep
from api.web.context import (
    FORM_COOKIE,
    N_,
    SESSION_COOKIE,
    Anyone,
    Member,
    Visitor,
    check_form,
    form_secret,
    keep_form_secret,
    render,
    secure_cookies,
)
from api.web.forms import Posted, field_errors, raw, see_other, text
from api.web.words import WORDS, say, t
from trace import users
from trace.errors import DomainError, TooManyAttempts, Unauthenticated
from trace.users import PasswordChange, authenticate, change_password
from trace.web_sessions import csrf_ok, csrf_token, end_session, open_session

router = APIRouter(include_in_schema=False)

NEXT_MAX = 300  # the longest page a sign-in goes back to


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an open redirect to somebody else's.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/app"


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, who: Anyone, next: Annotated[str | None, Query(max_length=NEXT_MAX)] = None
) -> Response:
    """The sign-in form."""
    if who.user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_form(request, who, next, None, "", 200)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: Posted, session: SessionDep, who: Anyone) -> Response:
    """Check the password; on success a new session (a fresh cookie: no fixation) and back to the page asked for."""
    email, password, next = text(form, "email"), raw(form, "password"), text(form, "next")[:NEXT_MAX] or "/app"
    if not csrf_ok(request.cookies.get(FORM_COOKIE), text(form, "csrf")):
        return _login_form(
            request, who, next, t(who.lang, N_("The form had expired: please sign in again.")), email, 403
        )
    try:
        user = authenticate(session=session, email=email, password=password)
    except (Unauthenticated, TooManyAttempts) as error:  # the form's answer commits the count of wrong passwords
        return _login_form(
            request, who, next, say(error, who.lang), email, 429 if isinstance(error, TooManyAttempts) else 401
        )
    token = open_session(session=session, user=user)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure_cookies(request), path="/")
    response.delete_cookie(FORM_COOKIE)
    return response


def _login_form(
    request: Request, who: Anyone, next_path: str | None, error: str | None, email: str, status: int
) -> Response:
    secret = form_secret(request)
    response = render(
        request,
        "app/login.html",
        who,
        status=status,
        next=_safe_next(next_path),
        error=error,
        email=email,
        form_token=csrf_token(secret),
    )
    keep_form_secret(request, response, secret)
    return response


@router.post("/logout")
def logout(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """End this session for good and forget the cookie."""
    check_form(who, text(form, "csrf"))
    end_session(session=session, token=who.token)  # type: ignore[arg-type]
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, who: Member) -> Response:
    """The form to change one's own password."""
    return render(request, "app/password.html", who, error=None, done=request.query_params.get("done") == "1")


@router.post("/account/password", response_class=HTMLResponse)
def password(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Change it; every other session of the user ends, this one goes on with a new cookie."""
    check_form(who, text(form, "csrf"))
    assert who.user is not None
    try:
        data = PasswordChange(current_password=raw(form, "current_password"), new_password=raw(form, "new_password"))
    except ValidationError as error:
        short = any(e["type"] == "string_too_short" for e in error.errors())
        why = (
            N_("The new password is too short: use at least 10 characters.")
            if short
            else N_("The new password is too easy to guess.")
        )
        return render(request, "app/password.html", who, status=422, error=t(who.lang, why), done=False)
    try:
        user = change_password(session=session, user_id=who.user.id, data=data)  # type: ignore[arg-type]
    except DomainError as error:
        why = (
            t(who.lang, N_("The current password is not right."))
            if error.code == "bad_credentials"
            else say(error, who.lang)
        )
        return render(request, "app/password.html", who, status=422, error=why, done=False)
    end_session(session=session, token=who.token)  # type: ignore[arg-type]
    response = RedirectResponse("/account/password?done=1", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        open_session(session=session, user=user),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )
    return response


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
