"""Page texts come from the catalogue, every one translated; numbers and dates in each language's customs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from api import i18n, pages

ROOT = Path(__file__).resolve().parents[2]


def _extracted() -> set[str]:
    method_map = [("api/templates/**.html", "jinja2"), ("api/**.py", "python")]
    options = {"api/templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map, options):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_page_text_has_a_vietnamese_translation() -> None:
    texts = _extracted()
    assert len(texts) > 50  # the extraction really read the templates
    # one catalogue, the one `make messages` updates: a text translated in a side file would be lost there
    assert [p.name for p in (i18n.LOCALES / "vi" / "LC_MESSAGES").glob("*.po")] == ["messages.po"]
    with (i18n.LOCALES / "vi" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        translated = {m.id for m in read_po(source, locale="vi") if m.id and m.string and not m.fuzzy}  # type: ignore[misc]
    untranslated = sorted(t for t in texts if t not in translated)
    assert untranslated == []
    assert i18n.translations("vi").gettext("Sign out") == "Đăng xuất"  # and the compiled catalogue is used


def test_a_translated_text_renders_in_vietnamese_and_stays_english_in_english() -> None:
    vi = pages.render("public/not_found.html", "vi", reason=None, malformed=False, path="/01/x", home="/")
    en = pages.render("public/not_found.html", "en", reason=None, malformed=False, path="/01/x", home="/")
    assert "Không tìm thấy mã" in vi and '<html lang="vi">' in vi
    assert "Code not found" in en and "Không tìm thấy" not in en


@pytest.mark.parametrize(
    ("value", "lang", "text"),
    [
        (Decimal("1234.500"), "vi", "1.234,5"),
        (Decimal("1234.500"), "en", "1,234.5"),
        (Decimal("70"), "vi", "70"),
        (0.25, "vi", "0,25"),
        (None, "vi", ""),
        (1234567, "vi", "1.234.567"),
        (1234567, "en", "1,234,567"),
        (-1200, "vi", "-1.200"),
        (Decimal("1234567"), "vi", "1.234.567"),
    ],
)
def test_numbers(value: Decimal | float | None, lang: str, text: str) -> None:
    assert i18n.number(value, lang) == text


@pytest.mark.parametrize(
    ("text", "lang", "value"),
    [
        ("1.234,5", "vi", Decimal("1234.5")),
        ("1234,5", "vi", Decimal("1234.5")),
        (" 12 ", "vi", Decimal(12)),
        ("1,234.5", "en", Decimal("1234.5")),
        ("1.5", "en", Decimal("1.5")),
        ("1.5", "vi", None),
        ("abc", "vi", None),
        ("", "vi", None),  # a misplaced thousands dot is refused, not read as 15
    ],
)
def test_numbers_as_people_type_them(text: str, lang: str, value: Decimal | None) -> None:
    if value is None:
        with pytest.raises(ValueError):
            i18n.parse_number(text, lang)
    else:
        assert i18n.parse_number(text, lang) == value


def test_dates_and_times() -> None:
    assert i18n.day(date(2026, 11, 27), "vi") == "27/11/2026"
    assert i18n.day(date(2026, 11, 27), "en") == "27 Nov 2026"
    assert i18n.moment(datetime(2026, 11, 27, 14, 5), "vi") == "14:05 27/11/2026"


@pytest.mark.parametrize(
    ("asked", "header", "lang"),
    [
        ("en", "vi", "en"),
        ("xx", "en-US,en;q=0.9", "en"),
        (None, None, "vi"),
        (None, "fr, en;q=0.3, vi;q=0.7", "vi"),
        (None, "en;q=bad, vi", "vi"),
        (None, "de", "vi"),
        (None, "EN", "en"),
    ],
)
def test_the_language_is_asked_for_then_negotiated_then_vietnamese(
    asked: str | None, header: str | None, lang: str
) -> None:
    assert i18n.negotiate(asked, header) == lang


def test_a_moment_is_told_in_its_own_zone_even_when_the_same_instant_was_told_in_another() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from api import i18n

    at = datetime(2026, 12, 4, 20, 5, tzinfo=UTC)
    local = at.astimezone(timezone(timedelta(hours=7)))
    assert at == local  # one instant
    assert i18n.moment(at, "vi") == "20:05 04/12/2026"
    assert i18n.moment(local, "vi") == "03:05 05/12/2026"
