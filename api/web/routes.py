"""Signing in and out, one's own password, the start page, and checking a typed code.

Thin: each handler reads the form, calls trace/, and renders or redirects (303 after a POST, so a
reload never sends a form twice).
"""

from __future__ import annotations

from functools import lru_cache
from io import BytesIO
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from PIL import Image, ImageDraw
from pydantic import ValidationError

from api.deps import SessionDep
from api.web.context import (
    FORM_COOKIE,
    N_,
    SESSION_COOKIE,
    Anyone,
    Member,
    check_form,
    form_secret,
    keep_form_secret,
    render,
    secure_cookies,
)
from api.web.forms import Posted, raw, text
from api.web.words import say, t
from trace import lots, verification
from trace.errors import DomainError, TooManyAttempts, Unauthenticated
from trace.products import products_by_id
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


@router.get("/app", response_class=HTMLResponse)
def start(request: Request, session: SessionDep, who: Member) -> Response:
    """The start page: the organisation's lots (or, for those who read everything, the newest lots)."""
    found = lots.list_lots(session=session, actor=who.actor, limit=50)
    names = products_by_id(session=session, ids={lot.product_id for lot in found})
    return render(request, "app/start.html", who, lots=found, products=names)


@lru_cache(maxsize=1)
def _icon() -> bytes:
    """The site's icon, drawn once: a longan-green disc (every browser asks for /favicon.ico; a 404
    each time fills logs and costs phones a round trip)."""
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((2, 2, 29, 29), fill=(46, 125, 50, 255))
    out = BytesIO()
    image.save(out, format="ICO", sizes=[(32, 32)])
    return out.getvalue()


@router.get("/favicon.ico")
def favicon() -> Response:
    """The icon browsers ask for by themselves."""
    return Response(_icon(), media_type="image/x-icon", headers={"Cache-Control": "public, max-age=604800"})


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, who: Anyone) -> Response:
    """The public start page: check a code typed from a label, or sign in."""
    return render(request, "app/landing.html", who, code="", error=None)


@router.get("/check", response_class=HTMLResponse)
def check(
    request: Request, session: SessionDep, who: Anyone, code: Annotated[str, Query(max_length=40)] = ""
) -> Response:
    """A code typed by hand: its label's page, or an honest answer that it is not ours."""
    if code.strip():
        try:
            found = verification.check_code(session=session, code=code)
        except DomainError:
            return render(
                request,
                "app/landing.html",
                who,
                status=404,
                code=code,
                error=t(who.lang, N_("This code was not issued by this system: the label may not be genuine.")),
            )
        return RedirectResponse(found.uri, status_code=303)
    return RedirectResponse("/", status_code=303)
