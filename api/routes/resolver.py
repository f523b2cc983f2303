"""We are our own GS1 Digital Link resolver: the label URIs ``/01/{gtin}[/10/{lot}[/21/{serial}]]`` on
whatever host the label named.

A browser gets the origin page, ``Accept: application/json`` the same facts as JSON, and
``?linkType=all`` (or ``Accept: application/linkset+json``) an RFC 9264 linkset. The handler is
async and, on a cache hit, touches neither the database nor a worker thread (see api/public.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from api import i18n, pages
from api.problems import PROBLEM_CONTENT, problem
from api.public import Entry, PublicPages, Seen, resolver_description
from trace import digital_link
from trace.errors import InvalidIdentifier
from trace.origin import Origin, ProductOrigin
from trace.platform.config import get_settings
from trace.scans.record import ScanIn

router = APIRouter(tags=["resolver"])

HTML, JSON, LINKSET = "text/html", "application/json", "application/linkset+json"
LD_JSON = "application/ld+json"  # an EPCIS 2.0 document (gs1:epcis)
_OFFERED = (HTML, JSON, LINKSET)


@lru_cache(maxsize=512)
def choose(accept: str | None) -> str:
    """The representation the client prefers among ours (HTML when it does not say); cached, as a few
    browsers' and programs' Accept headers make nearly every scan."""
    best, best_q = HTML, -1.0
    for index, part in enumerate((accept or "*/*").split(",")[:30]):
        kind, _, params = part.strip().partition(";")
        kind = kind.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        matches = (
            [kind]
            if kind in _OFFERED
            else [HTML]
            if kind in ("*/*", "text/*")
            else [JSON]
            if kind in ("application/*", "application/ld+json")
            else []
        )
        for match in matches:
            score = q - index * 1e-6  # the client's own order breaks ties
            if score > best_q:
                best, best_q = match, score
    return best


def _headers(lang: str | None, etag: str | None, anchor: str | None) -> dict[str, str]:
    # no-cache: a browser may keep the page but must ask again each time, so a recall is never hidden;
    # the ETag makes asking cheap.
    headers = {
        "Cache-Control": "no-cache",
        "Vary": "Accept, Accept-Language",
        "Content-Security-Policy": pages.CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if lang:
        headers["Content-Language"] = lang
    if etag:
        headers["ETag"] = etag
    if anchor:
        headers["Link"] = f'<{anchor}?linkType=all>; rel="linkset"; type="{LINKSET}"'
    return headers


def _not_found(request: Request, form: str, lang: str, reason: str, code: str, status: int = 404) -> Response:
    if form == HTML:
        # The language links are relative ("?lang=en"): the refused path is not echoed back into them.
        page = pages.render("public/not_found.html", lang, reason=reason, malformed=status == 422, path="", home="/")
        return Response(
            page, status_code=404, media_type="text/html; charset=utf-8", headers=_headers(lang, None, None)
        )
    title = "Not genuine" if status == 404 else "Invalid identifier"
    return problem(status, reason, code, request.url.path, title=title)


@lru_cache(maxsize=20_000)
def parse(raw: str, query: str) -> digital_link.DigitalLink:
    # The same labels are scanned again and again; a refused path raises again each time (not cached).
    return digital_link.parse_path(raw, query)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _place(request: Request) -> tuple[float, float] | None:
    """A location the visitor chose to share (the page's button adds ``?geo=lat,lon``)."""
    geo = request.query_params.get("geo")
    if not geo:
        return None
    try:
        lat, lon = (float(part) for part in geo.split(",", 1))
    except ValueError:
        return None
    return lat, lon


class OriginPublic(Origin):
    """A label's JSON: the page's facts and the scans before this one."""

    scans: Seen


_PAGE = {"schema": {"type": "string"}}
DOCUMENTED: dict[int | str, dict[str, Any]] = {
    200: {
        "model": OriginPublic | ProductOrigin,
        "description": "The origin page (HTML), its facts (JSON), a linkset, or (``?linkType=gs1:epcis``) the "
        "journey's events as an EPCIS 2.0 document",
        "content": {HTML: _PAGE, LINKSET: {"schema": {"type": "object"}}, LD_JSON: {"schema": {"type": "object"}}},
    },
    304: {"description": "Not modified: the copy the client holds is current"},
    307: {"description": "Redirect to the link type asked for (``?linkType=gs1:pip``)"},
    404: {"description": "Not a code this system issued", "content": {HTML: _PAGE, **PROBLEM_CONTENT}},
    422: {"description": "Not a well-formed GS1 Digital Link", "content": {HTML: _PAGE, **PROBLEM_CONTENT}},
}


@router.head("/01/{rest:path}", response_model=None, include_in_schema=False)
@router.get("/01/{rest:path}", response_model=None, responses=DOCUMENTED)
async def resolve(request: Request, rest: str) -> Response:
    """A printed label's Digital Link, on the public host or any alias (hosts change, labels stay)."""
    query = request.query_params
    lang = i18n.negotiate(query.get("lang"), request.headers.get("accept-language"))
    link_type = query.get("linkType") or query.get("linktype")
    form = LINKSET if link_type == "all" else choose(request.headers.get("accept"))
    # The raw path: a lot with an encoded "/" (%2F) must not split into two segments.
    # (Read from the scope: a default of request.url.path, or request.url.query, built the URL on every scan.)
    raw_path = request.scope.get("raw_path")
    raw = (raw_path if raw_path is not None else request.url.path.encode()).decode("ascii", "replace")
    try:
        link = parse(raw, request.scope.get("query_string", b"").decode("latin-1"))
    except InvalidIdentifier as error:
        return _not_found(request, form, lang, error.message, error.code, status=422)
    public: PublicPages = request.app.state.public
    entry = await public.get((link.gtin, link.lot, link.serial), link)
    if entry.missing is not None:
        return _not_found(request, form, lang, entry.missing, "not_genuine")
    if entry.product is not None:
        return _product(request, entry, form, lang)
    facts = entry.facts
    assert facts is not None
    if form == LINKSET:
        return Response(
            public.linkset(entry), media_type=LINKSET, headers=_headers(None, f'W/"{facts.version}.ls"', None)
        )
    if link_type and link_type.removeprefix("gs1:").removeprefix("https://gs1.org/voc/") == "epcis":
        proofs = query.get("proofs") == "1"
        body = await public.epcis(entry, proofs=proofs)
        tag = f'W/"{facts.version}.epcis{".p" if proofs else ""}"'
        return Response(body, media_type=LD_JSON, headers=_headers(None, tag, facts.uri))
    if link_type and link_type != "all":
        answer = _link_type(entry, link_type)
        if answer is not None:
            return answer
    visit = Visit(
        get=request.method == "GET",
        client=_client(request),
        user_agent=request.headers.get("user-agent"),
        mobile_hint=request.headers.get("sec-ch-ua-mobile"),
        if_none_match=request.headers.get("if-none-match", ""),
        place=_place(request),
    )
    proved = form == JSON and query.get("proofs") == "1"
    seen, scan, etag, fresh = visited(public, entry, form, lang, visit, proved=proved)
    headers = page_headers(entry, lang, etag)
    if fresh:
        return Response(status_code=304, headers=headers)
    if proved:  # with the public log's inclusion proofs of the journey
        return Response(await public.json_with_proofs(entry, seen), media_type=JSON, headers=headers)
    return Response(page_body(public, entry, form, lang, seen, scan), media_type=media_of(form), headers=headers)


@dataclass(frozen=True, slots=True)
class Visit:
    """What a request for a label's page brings that the answer depends on."""

    get: bool  # a GET is a scan; a HEAD is not
    client: str | None
    user_agent: str | None
    mobile_hint: str | None
    if_none_match: str
    place: tuple[float, float] | None = None


def visited(
    public: PublicPages, entry: Entry, form: str, lang: str, visit: Visit, *, proved: bool = False
) -> tuple[Seen, ScanIn | None, str, bool]:
    """A visit of a genuine label's page (HTML or JSON): the scans before it, its own scan (recorded),
    the answer's ETag, and whether the visitor's copy is still fresh (a 304). The answer's headers are
    :func:`page_headers`."""
    facts = entry.facts
    assert facts is not None
    seen = entry.seen()
    etag = f'W/"{facts.version}.{lang}.{"jp" if proved else "j" if form == JSON else "h"}.{int(seen.suspicious)}"'
    # The scan counts whether the visitor's copy was still fresh or not; a HEAD is not a scan.
    scan = None
    if visit.get:
        scan = public.record(
            entry,
            kind="json" if form == JSON else "page",
            client=visit.client,
            user_agent=visit.user_agent,
            mobile_hint=visit.mobile_hint,
            lang=lang,
            place=visit.place,
        )
    return seen, scan, etag, etag in visit.if_none_match


def page_headers(entry: Entry, lang: str, etag: str) -> dict[str, str]:
    """The headers of a genuine label's page with this ETag (a 304's too)."""
    return _headers(lang, etag, entry.facts.uri)  # type: ignore[union-attr]


def page_body(public: PublicPages, entry: Entry, form: str, lang: str, seen: Seen, scan: ScanIn | None) -> bytes:
    """The page (HTML) or its facts (JSON), with the scans before this one."""
    if form == JSON:
        return public.json(entry, seen)
    return public.html(entry, lang, seen, _path_of(entry.facts.uri), scan)  # type: ignore[union-attr]


def media_of(form: str) -> str:
    return JSON if form == JSON else "text/html; charset=utf-8"


@lru_cache(maxsize=20_000)
def _path_of(uri: str) -> str:
    return urlsplit(uri).path


# The scope key api/express.py sets to the error it met: raised here, the stack answers it.
FAILED = "hytrace.express_failed"


async def _served_directly(request: Request) -> Response:
    failed = request.scope.pop(FAILED, None)
    if failed is not None:
        raise failed
    return await resolve(request, request.path_params["rest"])


# The same handler as a plain Starlette route, matched before everything else (api.main puts it
# first): a label is scanned far more often than anything else is called, and FastAPI's per-request
# parameter solving and route matching were a fifth of the page's time. The FastAPI route above stays
# for the OpenAPI document and answers nothing.
direct = Route("/01/{rest:path}", _served_directly, methods=["GET", "HEAD"], include_in_schema=False)


def _link_type(entry: Entry, link_type: str) -> Response | None:
    """One of our link types asked for by name (``?linkType=gs1:pip``); None: the default (the page)."""
    facts = entry.facts
    assert facts is not None
    name = link_type.removeprefix("gs1:").removeprefix("https://gs1.org/voc/")
    if name == "pip":
        base = get_settings().public_base_url
        return RedirectResponse(digital_link.product_uri(base_url=base, gtin=facts.gtin), status_code=307)
    body: dict[str, Any] | None = None
    if name == "certificationInfo":
        body = {
            "anchor": facts.uri,
            "designations": [d.model_dump(mode="json") for d in facts.designations],
            "claims": [c.model_dump(mode="json") for c in facts.claims],
            "certificates": [c.model_dump(mode="json") for c in facts.certificates],
        }
    if body is None:
        return None
    return Response(
        json.dumps(body, ensure_ascii=False).encode(),
        media_type=JSON,
        headers=_headers(None, f'W/"{facts.version}.{name}"', facts.uri),
    )


def _product(request: Request, entry: Entry, form: str, lang: str) -> Response:
    product = entry.product
    assert product is not None
    etag = f'W/"{product.version}.{lang}.{"j" if form == JSON else "h"}"'
    headers = _headers(lang, etag, None)
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if form in (JSON, LINKSET):
        return Response(product.model_dump_json(), media_type=JSON, headers=headers)
    cached = entry.html.get(lang)
    if cached is None:
        page = pages.render("public/product.html", lang, p=product, path=urlsplit(product.uri).path, home="/")
        cached = entry.html[lang] = (page.encode(), b"")
    return Response(cached[0], media_type="text/html; charset=utf-8", headers=headers)


@router.get("/.well-known/gs1resolver", response_model=None)
def well_known() -> JSONResponse:
    """What this resolver answers, per GS1's resolver conventions."""
    return JSONResponse(resolver_description(get_settings().public_base_url))
