"""The start pages: the workspace's (the organisation's lots), the public one (check a code typed from a
label, or sign in), and the site's icon.

Thin: each handler reads the query, calls trace/, and renders or redirects.
"""

from __future__ import annotations

from functools import lru_cache
from io import BytesIO
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from PIL import Image, ImageDraw

from api.deps import SessionDep
from api.web.context import N_, Anyone, Member, render
from api.web.words import t
from trace import lots, verification
from trace.errors import DomainError
from trace.products import products_by_id

router = APIRouter(include_in_schema=False)


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
