"""Domain errors → RFC 9457 problem+json, mapped once."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import dberrors, i18n, pages
from api.problems import PROBLEM_CONTENT, Problem, problem
from api.retry import RETRY_HEADER
from api.web.errors import database_page
from trace.errors import (
    Conflict,
    Corrupt,
    DomainError,
    Forbidden,
    NotFound,
    RuleViolation,
    TooManyAttempts,
    Unauthenticated,
)

STATUS: list[tuple[type[DomainError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (RuleViolation, 422),
    (TooManyAttempts, 429),
    (Corrupt, 500),  # our stored data is wrong, not the request: retrying will not help, an operator must
]
# Documented on every operation (create_app passes it as the app's ``responses``), so clients and
# schema-driven fuzzers know each error answer's status and shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body could not be read (e.g. not UTF-8)", "content": PROBLEM_CONTENT},
    401: {"description": "No valid credentials (bearer token or API key)", "content": PROBLEM_CONTENT},
    403: {"description": "Not allowed for your organisation or role", "content": PROBLEM_CONTENT},
    404: {"description": "Unknown, or not visible to you", "content": PROBLEM_CONTENT},
    409: {
        "description": "Conflicts with the current state (duplicate, reused key, ...), or met a concurrent "
        "write (write_conflict: nothing saved, send it again after Retry-After)",
        "content": PROBLEM_CONTENT,
    },
    422: {"description": "Invalid input or a broken business rule (see ``code``)", "content": PROBLEM_CONTENT},
    429: {"description": "Too many requests from your address; see Retry-After", "content": PROBLEM_CONTENT},
    503: {
        "description": "The database cannot be reached (database_unavailable); retry after Retry-After",
        "content": PROBLEM_CONTENT,
    },
}


def status_of(error: DomainError) -> int:
    """The HTTP status of a domain error."""
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 400


_API_PREFIXES = ("/api/", "/epcis", "/.well-known/", "/media/", "/healthz", "/livez", "/readyz")


def _wants_page(request: Request) -> bool:
    """A person's browser (it asks for HTML first) on an address outside the programs' APIs."""
    accept = request.headers.get("accept", "")
    return (
        request.method in ("GET", "HEAD")
        and accept.startswith("text/html")
        and not request.url.path.startswith(_API_PREFIXES)
    )


def _missing_page(request: Request) -> Response:
    """A mistyped or stale address in a browser: a page in the visitor's language, not a JSON document."""
    lang = i18n.negotiate(request.query_params.get("lang"), request.headers.get("accept-language"))
    body = pages.render("public/missing.html", lang, path="", home="/")
    return HTMLResponse(
        body,
        status_code=404,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": pages.CSP,
            "X-Content-Type-Options": "nosniff",
            "Content-Language": lang,
        },
    )


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        # PROBLEM_RESPONSES refer to one shared Problem schema rather than repeating it per operation.
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> JSONResponse:
        return problem(status_of(error), error.message, error.code, request.url.path, **error.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in error.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        return problem(
            422,
            f"{where}: {first['msg']}" if where else str(first["msg"]),
            "validation_error",
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404 and _wants_page(request):
            return _missing_page(request)
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(
            error.status_code, "http_error"
        )
        return problem(error.status_code, str(error.detail), code, request.url.path)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, error: IntegrityError) -> JSONResponse:
        # A race lost against a concurrent writer (unique key): the server runs it again (api/retry.py),
        # and when it still conflicts the client may retry.
        answer = problem(
            409, "The request conflicts with a concurrent change; retry", "concurrent_conflict", request.url.path
        )
        answer.headers[RETRY_HEADER.decode()] = "1"
        return answer

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, error: Exception) -> JSONResponse:
        # A number or date the database (or datetime) cannot hold, e.g. an id beyond INTEGER: PostgreSQL
        # answers DataError (22003, integer out of range), SQLite's driver and datetime OverflowError.
        # Starlette picks a handler by the exception's class order, so DataError comes here, not to
        # the DBAPIError handler below (whose table would leave it a 500).
        return problem(422, "A number or date in the request is out of range", "value_out_of_range", request.url.path)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database(request: Request, error: Exception) -> Response:
        # One table (api/dberrors.py) decides; IntegrityError and DataError keep their own handlers.
        fault = dberrors.fault_of(error)
        if fault is None:
            raise error  # not the client's to act on: a 500, logged with its traceback
        if request.headers.get("accept", "").startswith("text/html") and not request.url.path.startswith(_API_PREFIXES):
            answer = database_page(request, fault)  # a person's browser, a page or a form
        else:
            answer = problem(
                fault.status, fault.detail, fault.code, request.url.path, retryable=True, retry_after=fault.retry_after
            )
        if fault is dberrors.WRITE_CONFLICT:  # rolled back whole: the server runs it again first (api/retry.py)
            answer.headers[RETRY_HEADER.decode()] = "1"
        return answer
