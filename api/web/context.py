"""What every workspace page needs: who is signed in (a session cookie), the page language, the form
token, how to render, and what a page says of a lot or a product in the visitor's terms (what their
organisation holds, a product's name in their language). Access rules are not here: pages call the same
trace/ functions as the API.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from api import i18n, pages
from api.deps import SessionDep
from trace.access import Actor
from trace.auth import actor_for_user
from trace.errors import Unauthenticated
from trace.lots import Lot, held_by
from trace.organisations import get_organisation
from trace.platform.config import get_settings
from trace.products import Product, products_by_id
from trace.users import User
from trace.web_sessions import csrf_ok, csrf_token, resolve

SESSION_COOKIE = "hytrace_session"
FORM_COOKIE = "hytrace_form"  # a sign-in form's own secret, before there is a session
LANG_COOKIE = "hytrace_lang"


class SignInRequired(Exception):
    """Raised by pages that need a signed-in user; answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class BadFormToken(Exception):
    """A form without this session's token: forged from another site, or a page left open too long."""


def secure_cookies(request: Request) -> bool:
    """Secure cookies whenever the site is served over HTTPS (directly or behind a proxy)."""
    return request.url.scheme == "https" or get_settings().public_base_url.startswith("https://")


def language(request: Request) -> str:
    """``?lang=`` (remembered in a cookie), else the cookie, else the browser's languages, else Vietnamese."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return i18n.negotiate(asked, request.headers.get("accept-language"))


@dataclass
class Visitor:
    """The person behind a request: signed in or not."""

    lang: str
    user: User | None = None
    token: str | None = None
    org_kind: str | None = None  # the user's organisation's kind, for the menu

    @property
    def role(self) -> str | None:
        """The user's role, for the menu."""
        return self.user.role.value if self.user else None

    @property
    def actor(self) -> Actor:
        """The signed-in user's actor (pages that need one depend on :func:`signed_in`)."""
        assert self.user is not None
        return actor_for_user(self.user)

    @property
    def csrf(self) -> str:
        """This session's form token."""
        return csrf_token(self.token or "")


def visitor(request: Request, session: SessionDep) -> Visitor:
    """Whoever is asking, signed in or not."""
    lang, token = language(request), request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            user = resolve(session=session, token=token)
        except Unauthenticated:
            pass
        else:
            org = (
                get_organisation(session=session, organisation_id=user.organisation_id)
                if user.organisation_id
                else None
            )
            return Visitor(lang=lang, user=user, token=token, org_kind=org.kind.value if org else None)
    return Visitor(lang=lang)


def signed_in(request: Request, found: Annotated[Visitor, Depends(visitor)]) -> Visitor:
    """A signed-in user, or a redirect to the sign-in page that comes back here."""
    if found.user is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return found


Anyone = Annotated[Visitor, Depends(visitor)]
Member = Annotated[Visitor, Depends(signed_in)]


def check_form(visitor: Visitor, sent: str | None) -> None:
    """Refuse a form not made by this session's own page."""
    if not csrf_ok(visitor.token, sent):
        raise BadFormToken


def render(request: Request, name: str, visitor: Visitor, status: int = 200, **context: Any) -> HTMLResponse:
    """A workspace page."""
    body = pages.render(
        name,
        visitor.lang,
        me=visitor.user,
        who=visitor,
        csrf=visitor.csrf if visitor.token else "",
        path=pages.here(request.scope),
        home="/app" if visitor.user else "/",
        query_prefix=_other_params(request),
        **context,
    )
    response = HTMLResponse(
        body,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": pages.CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY",
        },
    )
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            visitor.lang,
            max_age=365 * 86400,
            samesite="lax",
            secure=secure_cookies(request),
            httponly=True,
        )
    return response


def _other_params(request: Request) -> str:
    """The query without ``lang``, ready to have ``lang=`` appended (switching language keeps the rest)."""
    kept = [(key, value) for key, value in request.query_params.multi_items() if key != "lang"]
    return urlencode(kept) + "&" if kept else ""


def form_secret(request: Request) -> str:
    """The sign-in form's own secret (kept in a cookie by :func:`keep_form_secret`); its token goes in the form."""
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)


def keep_form_secret(request: Request, response: Response, secret: str) -> None:
    """Send the sign-in form's secret as a cookie only this site's own pages can use."""
    response.set_cookie(
        FORM_COOKIE, secret, max_age=3600, httponly=True, samesite="strict", secure=secure_cookies(request)
    )


def sign_in_redirect(next_path: str) -> RedirectResponse:
    """Where a page that needs a user sends a visitor without one."""
    return RedirectResponse(f"/login?next={quote(next_path, safe='')}", status_code=303)


def held(session: Session, who: Visitor, lot: Lot) -> Decimal:
    """What the visitor's organisation holds of a lot now (nothing, for an account of no organisation)."""
    org = who.actor.organisation_id
    return held_by(session=session, lot_id=lot.id, organisation_id=org) if org else Decimal(0)  # type: ignore[arg-type]


def product_name(product: Product | None, lang: str) -> str:
    """A product's name in the page's language."""
    if product is None:
        return ""
    return product.name_en if lang == "en" and product.name_en else product.name_vi


def product_names(session: Session, ids: Iterable[int | None], lang: str) -> dict[int, str]:
    """Products' names by id in the page's language."""
    return {i: product_name(p, lang) for i, p in products_by_id(session=session, ids=ids).items()}


def N_(text: str) -> str:  # noqa: N802 - gettext's marker: extracted for translation, translated later
    return text
