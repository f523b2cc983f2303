"""Web addresses people give us to show others (a product's image, a designation's logo, a certificate's
document): ``https:`` only (``http:`` too in development), with a host, nothing a browser would run.

``WebUrl`` checks what comes in; ``ShownUrl`` is for what goes out, and shows a stored address only if it is
a web address (one written straight into the database is never handed on as ``javascript:…``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from trace.platform.config import get_settings

MAX_LENGTH = 500  # the width of the columns that keep them
# A host name (IDN letters allowed) or, from inside [ ], an IPv6 address.
_HOST = re.compile(r"[\w.-]+|[0-9a-f:.]+")


def url_problem(value: str, *, http: bool = False) -> str | None:
    """Why ``value`` is not a web address we hand on (``http:`` allowed if ``http``), or None when it is."""
    if len(value) > MAX_LENGTH:
        return f"at most {MAX_LENGTH} characters"
    # Browsers drop leading spaces and control characters, and read a backslash as a slash: "\tjavascript:"
    # or "https:\\evil" would mean something other than what a check reading it plainly sees.
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") or ch == "\\" for ch in value):
        return "no spaces, control characters or backslashes"
    scheme, colon, rest = value.partition(":")
    if not colon or scheme.lower() not in (("https", "http") if http else ("https",)):
        return "an https:// address" if not http else "an https:// or http:// address"
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # a port that is not a number raises
    except ValueError:
        return "not a valid web address"
    if not rest.startswith("//") or not host or not _HOST.fullmatch(host):
        return "an address with a host name"
    # https://trusted.example@elsewhere.example goes to elsewhere.example
    if parts.username is not None or parts.password is not None:
        return "no user name or password in the address"
    return None


def _http_allowed() -> bool:
    # Read when a value is checked, not at import: tests and processes change the settings.
    return get_settings().environment == "development"


def _checked(value: str) -> str:
    http = _http_allowed()
    problem = url_problem(value, http=http)
    if problem is not None:
        raise PydanticCustomError(
            "web_url",
            "Must be {expected}: {problem}",
            {"expected": "https://…" + (" or http://…" if http else ""), "problem": problem},
        )
    return value


def _shown(value: Any) -> Any:
    # Stored before this check existed, or written straight into the database: not a web address, not shown.
    if isinstance(value, str) and url_problem(value, http=True) is not None:
        return None
    return value


WebUrl = Annotated[str, AfterValidator(_checked)]
ShownUrl = Annotated[str | None, BeforeValidator(_shown)]
