"""A label's page answered before the middleware stack: the request every consumer's scan makes.

Nearly every request the product gets is a scan of a printed label: ``GET /01/{gtin}/10/{lot}/21/{serial}``
with no query, no credential and no body. Through Starlette's middleware stack, router and Request and
Response objects it cost twice what the page's own work does (issue 17). :class:`Express` sits in front of
everything and answers such a request itself with the resolver's own code (:func:`api.routes.resolver.visited`,
:func:`~api.routes.resolver.page_headers`, :func:`~api.routes.resolver.page_body`), with the headers
:class:`api.security.SecurityHeaders` adds to every other answer, after the public rate limit has let it in.
Each page's headers are made once per ETag and kept with the page.

Anything else goes on down the stack as before: another method or path, a query other than ``?lang=``, an
``Authorization`` header, a code that is not a genuine unit's or lot's (its 404 or 422 page, a product
page), and an error, which the resolver's route raises again so that the stack answers it as it answers
any other. A request the express path let through the rate limit is not counted again there
(:data:`api.ratelimit.ADMITTED`).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from api import i18n
from api.ratelimit import ADMITTED, LimitBuckets
from api.routes import resolver
from api.routes.resolver import FAILED, JSON, Visit
from api.security import ALWAYS, HSTS
from trace.errors import InvalidIdentifier

_ASKED = frozenset((b"accept", b"accept-language", b"if-none-match", b"user-agent", b"sec-ch-ua-mobile"))


def _query_lang(query: bytes) -> tuple[bool, str | None]:
    """Whether the express path takes this query string, and the language it asks for."""
    if not query:
        return True, None
    name, _, value = query.partition(b"=")
    if name != b"lang" or b"&" in value or not value.isalnum():
        return False, None
    return True, value.decode("ascii")


class Express:
    """ASGI: answers a public GET or HEAD of a genuine label's page (HTML or JSON) without the stack behind."""

    def __init__(self, app: ASGIApp, *, limit: LimitBuckets | None) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith("/01/")
            or scope.get(ADMITTED)
        ):
            await self.app(scope, receive, send)
            return
        taken, asked_lang = _query_lang(scope.get("query_string", b""))
        asked: dict[bytes, bytes] = {}
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                taken = False
                break
            if name in _ASKED:
                asked.setdefault(name, value)
        if not taken:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        host = client[0] if client else None
        if self.limit is not None:
            if await self.limit.take(host or "unknown") > 0:
                # Over the limit: the stack's rate limit answers the 429 (it takes no token from an empty bucket).
                await self.app(scope, receive, send)
                return
            scope[ADMITTED] = True
        try:
            answer = await self._answer(scope, host, asked, asked_lang)
        except Exception as error:
            # Raised again by the resolver's route, inside the stack, which answers it as it answers any other
            # error (a 503 for a database away, a 500): nothing is tried a second time.
            scope[FAILED] = error
            answer = None
        if answer is None:
            await self.app(scope, receive, send)
            return
        status, headers, body = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})  # the server sends no body to a HEAD

    async def _answer(
        self, scope: Scope, host: str | None, asked: dict[bytes, bytes], asked_lang: str | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        def header(name: bytes) -> str | None:
            value = asked.get(name)
            return value.decode("latin-1") if value is not None else None

        form = resolver.choose(header(b"accept"))
        if form not in (resolver.HTML, JSON):
            return None
        raw_path = scope.get("raw_path")
        raw = raw_path.decode("ascii", "replace") if raw_path is not None else scope["path"]
        try:
            link = resolver.parse(raw, scope.get("query_string", b"").decode("latin-1"))
        except InvalidIdentifier:
            return None  # the stack answers its 422
        if link.serial is None and link.lot is None:
            return None  # a product page
        public: Any = scope["app"].state.public
        entry = await public.get((link.gtin, link.lot, link.serial), link)
        if entry.facts is None:
            return None  # not genuine: the stack answers its 404
        lang = i18n.negotiate(asked_lang, header(b"accept-language"))
        visit = Visit(
            get=scope["method"] == "GET",
            client=host,
            user_agent=header(b"user-agent"),
            mobile_hint=header(b"sec-ch-ua-mobile"),
            if_none_match=header(b"if-none-match") or "",
        )
        seen, scan, etag, fresh = resolver.visited(public, entry, form, lang, visit)
        https = scope.get("scheme") == "https"
        heads = entry.express.get((etag, https))
        if heads is None:
            heads = entry.express[(etag, https)] = _heads(resolver.page_headers(entry, lang, etag), form, https)
        named, typed, unmodified = heads
        if fresh:
            return 304, unmodified, b""
        body = resolver.page_body(public, entry, form, lang, seen, scan)
        return 200, [*named, (b"content-length", str(len(body)).encode()), *typed], body


def _heads(
    headers: dict[str, str], form: str, https: bool
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """A page's headers as Starlette's Response and then SecurityHeaders would send them: the page's own,
    (its length,) its type and the security headers it lacks; and a 304's."""
    named = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    names = {name for name, _ in named}
    secured = [(name, value) for name, value in ALWAYS if name not in names]
    if https:
        secured.append((b"strict-transport-security", HSTS))
    # Every page names its Content-Security-Policy (api.routes.resolver._headers): none is added.
    return named, [(b"content-type", resolver.media_of(form).encode()), *secured], [*named, *secured]
