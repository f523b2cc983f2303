"""RFC 9457 problem documents: every one the API sends is built by :func:`problem`.

Exception handlers (api/errors.py), routes and ASGI middleware (the rate limiter, the body guard)
all answer through it. It imports nothing of ours, so middleware can use it without pulling in
routes or pages.
"""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://hytrace.vn/problems/"  # + the code: each code's type URI
TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    503: "Service unavailable",
}
# The OpenAPI ``content`` of a problem answer; api/errors.py registers the Problem schema it names.
PROBLEM_CONTENT: dict[str, Any] = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


class Problem(BaseModel):
    """An RFC 9457 problem document; members such as ``errors`` or ``index`` may follow."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


def problem(
    status: int,
    detail: str,
    code: str,
    instance: str | None = None,
    *,
    title: str | None = None,
    **extra: Any,
) -> JSONResponse:
    """An RFC 9457 problem document, ``extra`` its further members, as a response (an ASGI app too)."""
    body = {
        "type": TYPE_BASE + code,
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    if instance:
        body["instance"] = instance
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status in (409, 429, 503) and isinstance(extra.get("retry_after"), int):
        # A retryable answer says when, as a member and as the header clients and proxies read.
        headers = {"Retry-After": str(extra["retry_after"])}
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)
