"""Server-rendered pages: one Jinja environment per language, with the message catalogue installed."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from api import i18n

TEMPLATES = Path(__file__).parent / "templates"
# The pages' only script (the location button), inline so the first response needs nothing else, and
# allowed by its hash alone: an injected script could not run.
SHARE_SCRIPT = (TEMPLATES / "public" / "share.js").read_text().strip()
_HASH = base64.b64encode(hashlib.sha256(SHARE_SCRIPT.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'sha256-{_HASH}'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@cache
def environment(lang: str) -> Environment:
    """The templates, speaking ``lang`` (autoescaped; a missing variable is an error, not a blank)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["number"] = lambda value: i18n.number(value, lang)
    env.filters["day"] = lambda value: i18n.day(value, lang)
    env.filters["moment"] = lambda value: i18n.moment(value, lang)
    env.globals["lang"] = lang
    env.globals["share_script"] = Markup(SHARE_SCRIPT)
    return env


def here(scope: Any) -> str:
    """The request's path as the client sent it (still percent-encoded), for links back to this page.

    Starlette's ``url.path`` is decoded: written into a link it would carry a raw NUL or space, and a
    lot code's encoded "/" would become a second segment.
    """
    raw = scope.get("raw_path")
    if raw:
        return raw.decode("ascii", "replace")
    return quote(scope.get("path", "/"), safe="/")


def render(name: str, lang: str, **context: Any) -> str:
    """Render a template in a language."""
    return environment(lang).get_template(name).render(**context)
