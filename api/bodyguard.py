"""One guard on every request body: a size limit per kind of route, and a limit on JSON nesting.

- Too large: 413 from ``Content-Length`` before a byte is read, and as soon as a streamed (chunked)
  body passes the limit, before the application sees any of it. The limits, by kind of route: the
  EPCIS capture (``HYTRACE_EPCIS_MAX_BODY_BYTES``), image uploads (the 8 MB image and its form's
  framing: the routes refuse an image past 8 MB in their own words first), the JSON API
  (``HYTRACE_JSON_MAX_BODY_BYTES``) and the workspace's forms.
- Too deep: a JSON body whose arrays and objects nest past ``HYTRACE_JSON_MAX_DEPTH`` gets 422
  ``json_too_deep`` before anything parses it (``json.loads`` recurses: a 100,000-deep body raised
  ``RecursionError``, a 500). The scan below does not recurse.

The body is read here, whole (it is at most the limit), and handed on in one piece: every route that
takes a body reads it whole anyway. A request without a body (no ``Content-Length``, not chunked)
passes untouched, so the public pages' GETs pay nothing.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from typing import Literal

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import i18n, pages
from api.problems import problem
from trace import product_images
from trace.platform.config import get_settings

Kind = Literal["epcis", "upload", "api", "form"]

UPLOAD_MAX_BYTES = product_images.MAX_BYTES + 1024 * 1024  # an 8 MB image with room for its form's framing
# The workspace's urlencoded forms: the longest field (20,000 characters of rules) percent-encoded
# Vietnamese is ~180 KB.
FORM_MAX_BYTES = 1024 * 1024
_UPLOADS = re.compile(r"/api/v1/products/[^/]+/image|/app/verify/photo")
_API_PREFIXES = ("/api/", "/epcis", "/.well-known/", "/media/", "/healthz", "/livez", "/readyz")

# An escaped character: inside a string, all JSON allows there (outside, a syntax error).
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')  # a string once its escapes are gone
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_SIGN = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes


def kind_of(path: str) -> Kind:
    """The kind of route a path is, for its body limit."""
    if path == "/epcis/capture":
        return "epcis"
    if _UPLOADS.fullmatch(path):
        return "upload"
    return "api" if path.startswith(_API_PREFIXES) else "form"


def limit_of(kind: Kind) -> int:
    """The largest body a kind of route takes, in bytes (settings read per request: tests change them)."""
    settings = get_settings()
    return {
        "epcis": settings.epcis_max_body_bytes,
        "upload": UPLOAD_MAX_BYTES,
        "api": settings.json_max_body_bytes,
        "form": FORM_MAX_BYTES,
    }[kind]


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, without recursing (strings are skipped).

    Up to the first syntax error it reads the text as a JSON parser does, so it never counts less than
    a parser would recurse: escapes go first (a ``\\"`` is no quote), then all but quotes and brackets
    (what is left is short), then whole strings; each bracket left adds or takes one level.
    """
    text = _ESCAPE.sub(b"", body) if b"\\" in body else body
    brackets = _STRING.sub(b"", text.translate(None, _NOT_STRUCTURE))
    # An unclosed quote is left: it counts for nothing (a parser stops there).
    return max(accumulate(array("b", brackets.translate(_SIGN, b'"'))), default=0)


def _parsed_as_json(media_type: str, kind: Kind) -> bool:
    """A body something will parse as JSON: the capture parses whatever it is sent, the rest what says JSON."""
    return kind == "epcis" or not media_type or media_type == "application/json" or media_type.endswith("+json")


def _too_large(scope: Scope, kind: Kind, limit: int) -> Response:
    if kind != "form":
        return problem(
            413,
            f"Nội dung quá lớn — the body is larger than the {limit} bytes this address takes",
            "payload_too_large",
            scope["path"],
            max_bytes=limit,
        )
    # A person's form (a photo too large, say): a page in their language.
    from api.web.context import N_, language

    request = Request(scope)
    lang = language(request)
    text = i18n.translations(lang).gettext(
        N_("What you sent is too large for this form. Go back and send a smaller photo or a shorter text.")
    )
    body = pages.render("app/refused.html", lang, me=None, csrf="", path=pages.here(scope), home="/", message=text)
    return HTMLResponse(
        body,
        status_code=413,
        headers={"Cache-Control": "no-store", "Content-Security-Policy": pages.CSP},
    )


class BodyGuard:
    """ASGI middleware: refuses a body too large for its route (413) or JSON nested too deep (422)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is None and "chunked" not in headers.get("transfer-encoding", "").lower():
            await self.app(scope, receive, send)
            return
        kind = kind_of(scope["path"])
        limit = limit_of(kind)
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _too_large(scope, kind, limit)(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(scope, kind, limit)(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        deepest = get_settings().json_max_depth
        # Fewer brackets than the limit cannot nest past it: most bodies need no scan.
        if _parsed_as_json(media_type, kind) and body.count(b"[") + body.count(b"{") > deepest:
            depth = json_depth(body)
            if depth > deepest:
                await problem(
                    422,
                    f"JSON lồng quá sâu — arrays and objects nest {depth} levels; at most {deepest}",
                    "json_too_deep",
                    scope["path"],
                    max_depth=deepest,
                )(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read once more, in one message; then the client's own messages (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
