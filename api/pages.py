"""Server-rendered pages: one Jinja environment per language, with the message catalogue installed."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api import i18n

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment(lang: str) -> Environment:
    """The templates, speaking ``lang`` (autoescaped; a missing variable is an error, not a blank)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, auto_reload=False)
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["number"] = lambda value: i18n.number(value, lang)
    env.filters["day"] = lambda value: i18n.day(value, lang)
    env.filters["moment"] = lambda value: i18n.moment(value, lang)
    env.globals["lang"] = lang
    return env


def render(name: str, lang: str, **context: Any) -> str:
    """Render a template in a language."""
    return environment(lang).get_template(name).render(**context)
