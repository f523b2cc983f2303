"""Vietnamese first, English beside it: message catalogues (gettext, through Babel) and local formats.

Texts are written in English in the templates and translated in ``api/locale/vi/LC_MESSAGES/messages.po``;
the catalogue is compiled in memory when first used, so no generated ``.mo`` file lives in the tree.
Numbers and dates follow each language's customs (1.234,5 kg and 27/11/2026 in Vietnamese).
"""

from __future__ import annotations

import gettext
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LANGUAGES = ("vi", "en")
DEFAULT = "vi"
LOCALES = Path(__file__).parent / "locale"
_DATE = {"vi": "%d/%m/%Y", "en": "%d %b %Y"}


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of a language (English is the source language: texts stand as written)."""
    path = LOCALES / lang / "LC_MESSAGES" / "messages.po"  # the one catalogue `make messages` keeps
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=lang)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def negotiate(asked: str | None, accept_language: str | None) -> str:
    """The page language: ``?lang=`` first, then the browser's Accept-Language, else Vietnamese."""
    if asked in LANGUAGES:
        return asked  # type: ignore[return-value]
    best, best_q = DEFAULT, 0.0
    for index, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        base = tag.strip().lower().split("-")[0]
        if base not in LANGUAGES:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        q -= index * 1e-6  # on a tie the browser's own order decides
        if q > best_q:
            best, best_q = base, q
    return best


def number(value: Decimal | float | int | None, lang: str) -> str:
    """1.234,5 in Vietnamese, 1,234.5 in English; trailing zeros dropped."""
    if value is None:
        return ""
    if type(value) is int:  # counts, on every scan: Babel's general path is costlier than the page
        grouped = f"{value:,}"
        return grouped.replace(",", ".") if lang == "vi" else grouped
    if isinstance(value, Decimal):
        value = value.normalize()
    return format_decimal(value, locale=lang, format="#,##0.###")


def day(value: date | datetime | None, lang: str) -> str:
    """27/11/2026 in Vietnamese, 27 Nov 2026 in English."""
    if value is None:
        return ""
    return value.strftime(_DATE.get(lang, _DATE[DEFAULT]))


def moment(value: datetime | None, lang: str) -> str:
    """A local time with its day: 14:05 27/11/2026."""
    if value is None:
        return ""
    # Equal instants in other zones are equal datetimes: the zone is part of the key.
    return _moment(value, value.tzinfo, lang)


@lru_cache(maxsize=8192)
def _moment(value: datetime, _zone: object, lang: str) -> str:
    # Cached: a page tells its code's first scan on every scan (two strftime calls a tenth of its time).
    return f"{value.strftime('%H:%M')} {day(value, lang)}"


def parse_number(text: str, lang: str) -> Decimal:
    """A number as people type it: "1.234,5" or "1234,5" in Vietnamese, "1,234.5" in English.
    Raises ValueError when it is not one."""
    from babel.numbers import NumberFormatError, parse_decimal

    cleaned = (text or "").strip().replace(" ", "")
    if not cleaned:
        raise ValueError("empty")
    try:
        # strict: "1.5" is refused in Vietnamese (a misplaced thousands dot) rather than read as 15
        return parse_decimal(cleaned, locale=lang, strict=True)
    except NumberFormatError as error:
        raise ValueError(str(error)) from None
