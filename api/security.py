"""Security headers on every response: API documents and problems, the rate limiter's 429s, files,
pages, the API docs, streamed answers and the server's own 500.

A header the response already set is kept (the pages set their own stricter policy). What is added:

- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and ``X-Frame-Options: DENY``
  everywhere;
- a Content-Security-Policy: on JSON answers nothing may load (``default-src 'none'``); an HTML page
  without its own gets the pages' policy; the API docs (``/docs``, ``/redoc``) get one that lets them
  work and names no other origin: Swagger UI and ReDoc are served from ``/docs-assets`` (fastapi-offline
  ships their files; FastAPI's own pages load them from a CDN), and the docs' inline scripts run by
  their hashes (the docs pages hold no visitor input, only the app's own settings);
- ``Strict-Transport-Security`` when the request came over https: directly, or through a proxy that
  uvicorn trusts (it rewrites the scheme from ``X-Forwarded-Proto`` only for ``FORWARDED_ALLOW_IPS``).
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import pages

ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
HSTS = b"max-age=31536000"
NOTHING = b"default-src 'none'; frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")
DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's files, served by us (fastapi-offline ships them)
DOCS_CSP = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
_JSON = (b"application/json", b"application/problem+json", b"application/ld+json")


def docs_policy(html: bytes) -> bytes:
    """The docs page's policy: our own files, and each inline script of the page by its hash."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return DOCS_CSP.format(hashes=hashes).encode()


class SecurityHeaders:
    """ASGI middleware adding the headers above to every response (outermost: it sees every answer)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        docs = scope["path"] in DOCS_PATHS
        held: Message | None = None  # a docs page's start, sent once its body (and so its hashes) is known
        parts: list[bytes] = []

        async def secured(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in ALWAYS if name not in names]
                if https and b"strict-transport-security" not in names:
                    headers.append((b"strict-transport-security", HSTS))
                message = {**message, "headers": headers}
                if b"content-security-policy" not in names:
                    media_type = next(
                        (
                            value.split(b";")[0].strip().lower()
                            for name, value in headers
                            if name.lower() == b"content-type"
                        ),
                        b"",
                    )
                    if docs and media_type == b"text/html":
                        held = message
                        return
                    if media_type in _JSON:
                        headers.append((b"content-security-policy", NOTHING))
                    elif media_type == b"text/html":
                        headers.append((b"content-security-policy", pages.CSP.encode()))
            elif message["type"] == "http.response.body" and held is not None:
                parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(parts)
                start, held = held, None
                await send(
                    {
                        **start,
                        "headers": [
                            *start["headers"],
                            (b"content-security-policy", docs_policy(body)),
                        ],
                    }
                )
                message = {"type": "http.response.body", "body": body}
            await send(message)

        await self.app(scope, receive, secured)
