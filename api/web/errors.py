"""How the workspace answers a visitor without a session, and a form it did not make."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from api import i18n, pages
from api.dberrors import Fault
from api.web.context import N_, BadFormToken, SignInRequired, language, sign_in_redirect

NOT_SAVED = N_("Not saved")
# The database faults a person meets (api/dberrors.py), in words, by code.
DATABASE_WORDS: dict[str, str] = {
    "write_conflict": N_(
        "Someone else was changing the same thing at that moment, so nothing was saved. Send the form again."
    ),
    "database_unavailable": N_(
        "The system cannot reach its database just now, so nothing was saved. Try again in a few minutes."
    ),
}


async def _sign_in(_request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    return sign_in_redirect(error.next_path)


async def _bad_form(request: Request, _error: Exception) -> Response:
    lang = language(request)
    text = i18n.translations(lang).gettext(
        N_(
            "This form was not sent from this site's own page, or the page was open too long. "
            "Go back, reload and try again."
        )
    )
    body = pages.render(
        "app/refused.html", lang, me=None, csrf="", path=pages.here(request.scope), home="/", message=text
    )
    return Response(
        body,
        status_code=403,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store", "Content-Security-Policy": pages.CSP},
    )


def database_page(request: Request, fault: Fault) -> Response:
    """The page for a write that met another or a database out of reach: try again, and when."""
    lang = language(request)
    words = i18n.translations(lang)
    body = pages.render(
        "app/refused.html",
        lang,
        me=None,
        csrf="",
        path=pages.here(request.scope),
        home="/",
        heading=words.gettext(NOT_SAVED),
        message=words.gettext(DATABASE_WORDS[fault.code]),
    )
    return Response(
        body,
        status_code=fault.status,
        media_type="text/html; charset=utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": pages.CSP,
            "Retry-After": str(fault.retry_after),
        },
    )


def install(app: FastAPI) -> None:
    """Register the workspace's answers."""
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(BadFormToken, _bad_form)
