"""Administrative units of Hưng Yên province (two-tier administration since 1 July 2025).

Two data files ship next to this module (see ``trace/data/SOURCES.md`` for provenance):

* ``data/communes.csv`` – today's 104 communes and wards (xã / phường) of the new
  Hưng Yên province, keyed by their official 5-digit code (Decision 19/2025/QĐ-TTg,
  General Statistics Office).
* ``data/former_communes.csv`` – the 381 commune-level units that existed on
  30 June 2025 in the old Hưng Yên and old Thái Bình provinces, with their old district
  and the code(s) of today's unit(s) they became part of (Resolution 1666/NQ-UBTVQH15).
  Three old communes were split between two new units; their ``current_codes`` hold
  both codes separated by ``|``.

Pure standard library; nothing here touches the web, database or task layers.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "PROVINCE_CODE",
    "PROVINCE_NAME",
    "Commune",
    "FormerCommune",
    "commune",
    "communes",
    "current_for_former",
    "fold_vietnamese",
    "former_commune",
    "former_communes",
    "former_communes_in_district",
    "former_districts",
    "formers_for_current",
    "search_communes",
]

PROVINCE_CODE = "33"
PROVINCE_NAME = "Tỉnh Hưng Yên"

_DATA_DIR = Path(__file__).resolve().parent / "data"
_COMMUNES_CSV = _DATA_DIR / "communes.csv"
_FORMER_CSV = _DATA_DIR / "former_communes.csv"

# Prefixes of district-level names (normalised, i.e. case-folded NFC).
_DISTRICT_PREFIXES = ("thành phố", "thị xã", "huyện")
_TP_ABBREVIATION = re.compile(r"^tp(?:\.\s*|\s+)")  # "TP. Hưng Yên" == "Thành phố Hưng Yên"


def _build_tone_fix() -> dict[str, str]:
    """Old-style tone placement ("hoà", "thuý") -> new style ("hòa", "thúy"), NFC strings."""
    marks = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # huyền, sắc, hỏi, ngã, nặng
    table = {}
    for first, second in (("o", "a"), ("o", "e"), ("u", "y")):
        for f, s in ((first, second), (first.upper(), second), (first.upper(), second.upper())):
            for mark in marks:
                old = unicodedata.normalize("NFC", f + s + mark)
                table[old] = unicodedata.normalize("NFC", f + mark + s)
    return table


_TONE_FIX = _build_tone_fix()
# Only open syllables differ ("hoà" vs "hòa"); in "hoàng" the mark is always on the "a",
# and in "quý" the "u" belongs to the consonant "qu".
_TONE_RE = re.compile(r"(?<![qQ])(?:" + "|".join(map(re.escape, _TONE_FIX)) + r")(?!\w)")


@dataclass(frozen=True)
class Commune:
    """A commune-level unit (xã or phường) of today's Hưng Yên province."""

    code: str
    name: str
    kind: str  # "xa" or "phuong"
    province_code: str
    province_name: str


@dataclass(frozen=True)
class FormerCommune:
    """A commune-level unit as it existed on 30 June 2025, before the 2025 rearrangement."""

    code: str
    name: str
    kind: str  # "xa", "phuong" or "thi_tran"
    district_name: str
    province_name: str  # "Tỉnh Hưng Yên" or "Tỉnh Thái Bình" (the old provinces)
    current_codes: tuple[str, ...]


# --------------------------------------------------------------------------- text helpers


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _normalise(text: str) -> str:
    """NFC, unified tone placement, single spaces, case-folded."""
    text = _TONE_RE.sub(lambda m: _TONE_FIX[m.group(0)], _nfc(text))
    return " ".join(text.split()).casefold()


def fold_vietnamese(text: str) -> str:
    """Case-fold ``text`` and strip Vietnamese diacritics ("Xã Hoàn Long" -> "xa hoan long")."""
    decomposed = unicodedata.normalize("NFD", _nfc(text))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    stripped = stripped.replace("đ", "d").replace("Đ", "D")
    return " ".join(stripped.split()).casefold()


def _normalise_code(code: object) -> str:
    text = str(code).strip()
    return text.zfill(5) if text.isdigit() and len(text) < 5 else text


def _strip_district_prefix(name: str) -> tuple[bool, str]:
    """Return (had_prefix, bare_name) for a normalised district name."""
    for prefix in _DISTRICT_PREFIXES:
        if name.startswith(prefix + " "):
            return True, name[len(prefix) :].strip()
    return False, name


# --------------------------------------------------------------------------- loading


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [{k: _nfc(v.strip()) for k, v in row.items()} for row in csv.DictReader(handle)]


@cache
def _communes() -> tuple[Commune, ...]:
    rows = (
        Commune(
            code=row["code"],
            name=row["name"],
            kind=row["kind"],
            province_code=row["province_code"],
            province_name=row["province_name"],
        )
        for row in _read_csv(_COMMUNES_CSV)
    )
    return tuple(sorted(rows, key=lambda c: c.code))


@cache
def _communes_by_code() -> dict[str, Commune]:
    return {c.code: c for c in _communes()}


@cache
def _former() -> tuple[FormerCommune, ...]:
    rows = (
        FormerCommune(
            code=row["code"],
            name=row["name"],
            kind=row["kind"],
            district_name=row["district_name"],
            province_name=row["province_name"],
            current_codes=tuple(c.strip() for c in row["current_codes"].split("|") if c.strip()),
        )
        for row in _read_csv(_FORMER_CSV)
    )
    return tuple(sorted(rows, key=lambda f: f.code))


@cache
def _former_by_code() -> dict[str, FormerCommune]:
    return {f.code: f for f in _former()}


@cache
def _formers_by_current() -> dict[str, tuple[FormerCommune, ...]]:
    index: dict[str, list[FormerCommune]] = {}
    for former in _former():
        for code in former.current_codes:
            index.setdefault(code, []).append(former)
    return {code: tuple(items) for code, items in index.items()}


# --------------------------------------------------------------------------- public API


def communes() -> list[Commune]:
    """Today's 104 communes and wards of Hưng Yên, sorted by code."""
    return list(_communes())


def commune(code: str) -> Commune | None:
    """Today's unit with this 5-digit code, or ``None``."""
    return _communes_by_code().get(_normalise_code(code))


def former_communes() -> list[FormerCommune]:
    """All pre-July-2025 communes of old Hưng Yên and old Thái Bình, sorted by code."""
    return list(_former())


def former_commune(code: str) -> FormerCommune | None:
    """The pre-2025 unit with this old 5-digit code, or ``None``."""
    return _former_by_code().get(_normalise_code(code))


def current_for_former(code: str) -> list[Commune]:
    """Today's unit(s) the old commune ``code`` became (part of); ``[]`` if unknown."""
    former = former_commune(code)
    if former is None:
        return []
    by_code = _communes_by_code()
    return [by_code[c] for c in former.current_codes if c in by_code]


def formers_for_current(code: str) -> list[FormerCommune]:
    """Old communes (whole or in part) that make up today's unit ``code``, sorted by code."""
    return list(_formers_by_current().get(_normalise_code(code), ()))


def commune_choices() -> list[tuple[str, str]]:
    """Today's communes as (code, name) for a list to choose from, in the order people look for them: by the
    name after its kind ("Xã", "Phường"), accents folded."""
    pairs = ((c.code, c.name) for c in _communes())
    return sorted(pairs, key=lambda pair: fold_vietnamese(pair[1].split(" ", 1)[-1]))


def former_choices(code: str | None) -> list[tuple[str, list[tuple[str, str]]]]:
    """Former communes as (code, name) for a list to choose from, grouped by old district and province: those
    that became (part of) today's commune ``code``, else all of them."""
    found = formers_for_current(code) if code and commune(code) else []
    groups: dict[str, list[tuple[str, str]]] = {}
    for old in found or _former():
        groups.setdefault(f"{old.district_name}, {old.province_name}", []).append((old.code, old.name))
    return sorted(groups.items())


def former_districts() -> list[str]:
    """Names of the old districts (e.g. "Huyện Khoái Châu"), sorted."""
    return sorted({f.district_name for f in _former()})


def former_communes_in_district(district_name: str) -> list[FormerCommune]:
    """Old communes of an old district, e.g. ``"Huyện Khoái Châu"`` or just ``"Khoái Châu"``.

    With a prefix ("Huyện", "Thành phố"/"TP.", "Thị xã") the full name must match; without
    one, the bare name is compared. Comparison is on NFC text, ignoring case and spacing.
    """
    wanted = _TP_ABBREVIATION.sub("thành phố ", _normalise(district_name))
    if not wanted:
        return []
    has_prefix, wanted_bare = _strip_district_prefix(wanted)
    result = []
    for former in _former():
        name = _normalise(former.district_name)
        if (name == wanted) if has_prefix else (_strip_district_prefix(name)[1] == wanted_bare):
            result.append(former)
    return result


def search_communes(text: str) -> list[Commune]:
    """Today's units whose name contains ``text`` (case-insensitive), sorted by code.

    A query typed without diacritics ("hoan long") matches names with them
    ("Xã Hoàn Long"); a query with diacritics must match them (old/new tone placement,
    e.g. "Hoà"/"Hòa", is treated as equal).
    """
    query = _normalise(text)
    if not query:
        return []
    folded_query = fold_vietnamese(query)
    if folded_query == query:  # no diacritics typed: compare without them
        return [c for c in _communes() if folded_query in fold_vietnamese(c.name)]
    return [c for c in _communes() if query in _normalise(c.name)]
