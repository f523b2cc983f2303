"""Packing: what a packer scans or types, one code per line, read into the units of a carton or pallet.

A line may be a label's GS1 Digital Link (on one of our hosts, or the same path under id.gs1.org), the
human code printed under the QR, or a GS1 element string (``(01)…(10)…(21)…``, or as a scanner sends it,
with GS separators). Every line is judged before anything is recorded, each refusal naming its line with
a machine code; then the pack is one AggregationEvent ADD through :func:`capture` (idempotent).
The carton is an SSCC (AI 00, GS1 check digit) or a unit's Digital Link (a printed carton label).
Organisations have no GS1 company prefix of their own here, so SSCCs are validated, never made up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from annotated_types import MaxLen
from sqlmodel import Session, col, select

from trace import digital_link, verification
from trace.access import Actor, require_writer
from trace.errors import InvalidIdentifier, RuleViolation
from trace.events.ledger import capture
from trace.events.models import EventType, IdempotencyRecord
from trace.events.schemas import CaptureResult, PackIn, UnitRef
from trace.identifiers import gs1_check_digit, normalize_gtin, validate_lot_code, validate_serial
from trace.lots import Holding, Lot, LotStatus
from trace.platform.config import get_settings
from trace.platform.sqltypes import in_chunks
from trace.units import Unit, UnitStatus, normalize_code

# What one pack may hold: the JSON API's own limit.
MAX_UNITS: int = next(m.max_length for m in PackIn.model_fields["children"].metadata if isinstance(m, MaxLen))
GS1_RESOLVER = "id.gs1.org"  # GS1's own resolver: the same path names the same unit
GS = "\x1d"  # FNC1 as a scanner types it between variable-length fields
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_SYMBOLOGY = re.compile(r"^\][A-Za-z][0-9A-Za-z]")  # ]Q1, ]C1, ]d2 ... a scanner may prefix
_LINES = re.compile(r"\r\n|\r|\n")
_BRACKETED = re.compile(r"\((\d{2,4})\)")
# Element-string AIs with a fixed length (General Specifications, figure 5.10.1-1); the others used on
# unit and carton labels run to a GS or the end.
_FIXED = {"00": 18, "01": 14, "02": 14, "11": 6, "12": 6, "13": 6, "15": 6, "16": 6, "17": 6, "20": 2}
_VARIABLE = {"10", "21", "22", "30", "37"}

# Why a line is refused (the page says each in words).
LINE_CODES = (
    "unreadable",
    "code_mistyped",
    "not_our_link",
    "not_a_unit",
    "unknown_unit",
    "duplicate",
    "void",
    "not_held",
    "already_packed",
    "lot_on_hold",
    "lot_recalled",
    "lot_cancelled",
    "is_parent",
)
# Why the carton's code is refused.
PARENT_CODES = (
    "parent_missing",
    "parent_unreadable",
    "sscc_check_digit",
    "parent_not_ours",
    "parent_not_a_unit",
    "parent_unknown",
    "parent_void",
    "parent_not_held",
    "parent_taken",
)


@dataclass(frozen=True)
class LineProblem:
    """One refused line: its number (from 1, blank lines counted), what was on it, and why."""

    line: int
    text: str
    code: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parent:
    """The carton or pallet: ``id`` is what the pack records (an 18-digit SSCC, or a unit's Digital Link)."""

    id: str
    kind: Literal["sscc", "unit"]
    unit_id: int | None = None


@dataclass
class UnitsRead:
    """The lines read: the units in line order, every refused line, and units per lot."""

    refs: list[UnitRef]
    problems: list[LineProblem]
    lines: int
    lots: dict[int, int]


class PackRefused(RuleViolation):
    """Some lines (or the carton's code) are refused: nothing is recorded."""

    code = "pack_refused"

    def __init__(self, *, problems: list[LineProblem], parent: RuleViolation | None, lines: int) -> None:
        super().__init__(
            f"{len(problems)} of {lines} lines refused" + (f"; carton: {parent.message}" if parent else ""),
            lines=[asdict(p) for p in problems],
            parent=parent.code if parent else None,
        )
        self.problems, self.parent, self.lines = problems, parent, lines


# --- reading one code ---------------------------------------------------------------------------------


def clean(text: str) -> str:
    """A scanned or typed line without surrounding blanks, invisible characters or a symbology prefix."""
    return _SYMBOLOGY.sub("", text.translate(_INVISIBLE).strip()).strip()


def element_string(text: str) -> dict[str, str]:
    """The AIs of a GS1 element string, bracketed ``(01)…(10)…`` or raw with GS separators."""
    if text.startswith("("):
        parts = _BRACKETED.split(text)
        if parts[0] or len(parts) < 3:
            raise InvalidIdentifier(f"{text!r} is not an element string", code="element_string")
        pairs = list(zip(parts[1::2], (v.strip() for v in parts[2::2]), strict=True))
    else:
        pairs, rest = [], text
        while rest:
            ai = rest[:2] if rest[:2] in _FIXED or rest[:2] in _VARIABLE else None
            if ai is None:
                raise InvalidIdentifier(f"AI {rest[:4]!r} is not one a unit label carries", code="element_string")
            if ai in _FIXED:
                value, rest = rest[2 : 2 + _FIXED[ai]], rest[2 + _FIXED[ai] :].lstrip(GS)
            else:
                value, _, rest = rest[2:].partition(GS)
            pairs.append((ai, value))
    found: dict[str, str] = {}
    for ai, value in pairs:
        if ai in found or not value or (ai in _FIXED and len(value) != _FIXED[ai]):
            raise InvalidIdentifier(
                f"AI ({ai}) is repeated, empty or of the wrong length", code="element_string", ai=ai
            )
        found[ai] = value
    return found


def _looks_like_element_string(text: str) -> bool:
    return text.startswith("(") or GS in text or (len(text) >= 16 and text[:2] in ("00", "01") and text[:16].isdigit())


def _hosts(session: Session) -> set[str]:
    return verification.hosts(session) | {GS1_RESOLVER}


def _unit_key(text: str, hosts: set[str]) -> tuple[str, ...]:
    """What a line names: ("code", code) or ("link", gtin, lot, serial); InvalidIdentifier with a line code."""
    if text.lower().startswith(("http://", "https://")):
        try:
            link = digital_link.parse(text, hosts=hosts)
        except InvalidIdentifier as error:
            code = "not_our_link" if error.code == "dl_not_ours" else "unreadable"
            raise InvalidIdentifier(error.message, code=code, cause=error.code) from None
        if link.lot is None or link.serial is None:
            raise InvalidIdentifier("A link to a product or lot, not to one unit", code="not_a_unit")
        return ("link", link.gtin, link.lot, link.serial)
    if _looks_like_element_string(text):
        try:
            ais = element_string(text)
            gtin = normalize_gtin(ais.get("01", ""))
            if "10" not in ais or "21" not in ais:
                raise InvalidIdentifier("An element string without a lot and a serial", code="not_a_unit")
            return ("link", gtin, validate_lot_code(ais["10"]), validate_serial(ais["21"]))
        except InvalidIdentifier as error:
            if error.code == "not_a_unit":
                raise
            raise InvalidIdentifier(error.message, code="unreadable", cause=error.code) from None
    try:
        return ("code", normalize_code(text))
    except InvalidIdentifier as error:
        # A wrong length or alphabet is something else typed; a failed check is a human code mistyped.
        code = "code_mistyped" if error.code == "code_check" else "unreadable"
        raise InvalidIdentifier(error.message, code=code, cause=error.code) from None


def _find_units(session: Session, keys: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], Unit]:
    """The units these keys name, in a few queries however many lines there are."""
    keys = set(keys)
    found: dict[tuple[str, ...], Unit] = {}
    codes = sorted(k[1] for k in keys if k[0] == "code")
    for chunk in in_chunks(codes):
        for unit in session.exec(select(Unit).where(col(Unit.code).in_(chunk))):
            found[("code", unit.code)] = unit
    links = [k for k in keys if k[0] == "link"]
    lot_ids: dict[tuple[str, str], int] = {}
    gtins = sorted({k[1] for k in links})
    for chunk in in_chunks(sorted({k[2] for k in links})):
        rows = session.exec(
            select(Lot.id, Lot.gtin, Lot.lot_code).where(col(Lot.gtin).in_(gtins), col(Lot.lot_code).in_(chunk))
        ).all()
        lot_ids.update({(gtin, code): lot_id for lot_id, gtin, code in rows if lot_id is not None})
    wanted = {(lot_ids[(k[1], k[2])], k[3]): k for k in links if (k[1], k[2]) in lot_ids}
    serials = sorted({serial for _, serial in wanted})
    for chunk in in_chunks(serials):
        for unit in session.exec(
            select(Unit).where(col(Unit.lot_id).in_(set(lot_ids.values())), col(Unit.serial).in_(chunk))
        ):
            key = wanted.get((unit.lot_id, unit.serial))
            if key is not None:
                found[key] = unit
    return found


# --- the carton ---------------------------------------------------------------------------------------


def _sscc(digits: str) -> Parent:
    if gs1_check_digit(digits[:17]) != digits[17]:
        raise InvalidIdentifier(
            f"SSCC {digits} has check digit {digits[17]}; expected {gs1_check_digit(digits[:17])}",
            code="sscc_check_digit",
            expected=gs1_check_digit(digits[:17]),
        )
    return Parent(id=digits, kind="sscc")


def read_parent(*, session: Session, text: str) -> Parent:
    """The carton's code as scanned or typed: an SSCC (bare, ``(00)…``, ``00…`` or a ``/00/`` Digital Link),
    or a unit's label (Digital Link or human code); refused with a ``parent_*`` or ``sscc_check_digit`` code."""
    line = clean(text)
    compact = "".join(line.split())
    if not compact:
        raise RuleViolation("The carton's code is missing", code="parent_missing")
    if compact.isdigit() and (len(compact) == 18 or (len(compact) == 20 and compact.startswith("00"))):
        return _sscc(compact[-18:])
    hosts = _hosts(session)
    if line.lower().startswith(("http://", "https://")):
        parts = urlsplit(line)
        segments = parts.path.split("/")
        if "00" in segments:
            # An SSCC's Digital Link, https://host/00/{SSCC}: on a host we do not answer for it is someone else's.
            if parts.netloc.lower() not in hosts and (parts.hostname or "") not in hosts:
                raise RuleViolation("A link on another system's host", code="parent_not_ours")
            sscc = (segments[segments.index("00") + 1 :] or [""])[0]
            if not (sscc.isdigit() and len(sscc) == 18):
                raise RuleViolation("An SSCC has 18 digits", code="parent_unreadable")
            return _sscc(sscc)
    if _looks_like_element_string(compact):
        try:
            ais = element_string(compact)
        except InvalidIdentifier:
            raise RuleViolation(f"{line!r} is not a carton's code", code="parent_unreadable") from None
        if "00" in ais and ais["00"].isdigit():
            return _sscc(ais["00"])
    try:
        key = _unit_key(line, hosts)
    except InvalidIdentifier as error:
        code = {"not_our_link": "parent_not_ours", "not_a_unit": "parent_not_a_unit"}.get(
            error.code, "parent_unreadable"
        )
        raise RuleViolation(error.message, code=code) from None
    unit = _find_units(session, [key]).get(key)
    if unit is None:
        raise RuleViolation("The carton's code is not one this system issued", code="parent_unknown")
    lot = session.get(Lot, unit.lot_id)
    assert lot is not None
    uri = digital_link.unit_uri(
        base_url=get_settings().public_base_url, gtin=lot.gtin, lot=lot.lot_code, serial=unit.serial
    )
    return Parent(id=uri, kind="unit", unit_id=unit.id)


def _parent_problem(session: Session, org: int, parent: Parent) -> RuleViolation | None:
    """What about the carton refuses packing into it now: a void label, another's label or carton."""
    if parent.unit_id is not None:
        unit = session.get(Unit, parent.unit_id)
        assert unit is not None
        if unit.status != UnitStatus.ACTIVE:
            return RuleViolation("The carton's label was voided", code="parent_void")
        if not _held(session, org, [unit.lot_id]):
            return RuleViolation(
                "The carton's label is of a lot your organisation does not hold", code="parent_not_held"
            )
    inside = set(session.exec(select(Unit.lot_id).where(Unit.parent_id == parent.id).distinct()).all())
    if inside - _held(session, org, inside):
        return RuleViolation(
            "This carton already holds units of a lot your organisation does not hold", code="parent_taken"
        )
    return None


# --- the lines ----------------------------------------------------------------------------------------


def _held(session: Session, org: int, lot_ids: Iterable[int]) -> set[int]:
    held: set[int] = set()
    for chunk in in_chunks(sorted(set(lot_ids))):
        held.update(
            session.exec(
                select(Holding.lot_id).where(
                    Holding.organisation_id == org, col(Holding.lot_id).in_(chunk), Holding.quantity > 0
                )
            ).all()
        )
    return held


def _identify(session: Session, text: str) -> tuple[list[tuple[int, str, Unit]], list[LineProblem], int]:
    """Each non-blank line's unit, or why it names none (what never changes: form, existence, repeats)."""
    hosts = _hosts(session)
    keyed: list[tuple[int, str, tuple[str, ...]]] = []
    problems: list[LineProblem] = []
    count = 0
    # Not str.splitlines: it also splits at GS (0x1D), the separator inside a scanned element string.
    for number, raw in enumerate(_LINES.split(text), start=1):
        line = clean(raw)
        if not line:
            continue
        count += 1
        try:
            keyed.append((number, line, _unit_key(line, hosts)))
        except InvalidIdentifier as error:
            cause = error.details.get("cause")
            problems.append(LineProblem(number, line[:120], error.code, {"cause": str(cause)} if cause else {}))
    units = _find_units(session, (key for _, _, key in keyed))
    found: list[tuple[int, str, Unit]] = []
    first: dict[int, int] = {}
    for number, line, key in keyed:
        unit = units.get(key)
        if unit is None:
            problems.append(LineProblem(number, line[:120], "unknown_unit"))
        elif unit.id in first:
            problems.append(LineProblem(number, line[:120], "duplicate", {"first": str(first[unit.id])}))  # type: ignore[index]
        else:
            first[unit.id] = number  # type: ignore[index]
            found.append((number, line, unit))
    return found, problems, count


def _judge(session: Session, org: int, found: list[tuple[int, str, Unit]], parent: Parent | None) -> list[LineProblem]:
    """What about each unit refuses packing it now: void, not held, already packed, its lot stopped."""
    lots = {
        lot.id: lot
        for chunk in in_chunks(sorted({u.lot_id for _, _, u in found}))
        for lot in session.exec(select(Lot).where(col(Lot.id).in_(chunk)))
    }
    held = _held(session, org, lots)  # type: ignore[arg-type]
    problems = []
    for number, line, unit in found:
        lot, code, details = lots[unit.lot_id], None, {}
        if parent is not None and unit.id == parent.unit_id:
            code = "is_parent"
        elif unit.lot_id not in held:
            code = "not_held"  # nothing more is said of another organisation's goods
        elif unit.status != UnitStatus.ACTIVE:
            code = "void"
        elif unit.parent_id is not None:
            code, details = "already_packed", {"parent": unit.parent_id}
        elif lot.status in (LotStatus.ON_HOLD, LotStatus.RECALLED, LotStatus.CANCELLED):
            code = f"lot_{lot.status.value}"
        if code:
            problems.append(LineProblem(number, line[:120], code, details))
    return problems


def _read(session: Session, org: int, text: str, parent: Parent | None) -> UnitsRead:
    found, problems, count = _identify(session, text)
    refused = _judge(session, org, found, parent)
    problems += refused
    bad = {p.line for p in refused}
    good = [unit for number, _, unit in found if number not in bad]
    lots: dict[int, int] = {}
    for unit in good:
        lots[unit.lot_id] = lots.get(unit.lot_id, 0) + 1
    return UnitsRead(
        refs=[UnitRef(lot_id=u.lot_id, serial=u.serial) for u in good],
        problems=sorted(problems, key=lambda p: p.line),
        lines=count,
        lots=lots,
    )


def read_units(*, session: Session, actor: Actor, text: str, parent: Parent | None = None) -> UnitsRead:
    """The units a packer's lines name (one code per line; blank lines skipped), each refused line with its code."""
    return _read(session, require_writer(actor), text, parent)


# --- packing ------------------------------------------------------------------------------------------


def pack(
    *,
    session: Session,
    actor: Actor,
    parent: str,
    codes: str,
    event_time: datetime | None = None,
    location_id: int | None = None,
    idempotency_key: str | None = None,
) -> CaptureResult:
    """Pack the units of ``codes`` into the carton ``parent`` as one event, or refuse every bad line at once
    (:class:`PackRefused`, nothing recorded). A form sent again with its key gets the first answer."""
    org = require_writer(actor)
    carton: Parent | None = None
    refused: RuleViolation | None = None
    try:
        carton = read_parent(session=session, text=parent)
    except RuleViolation as error:
        refused = error
    found, problems, count = _identify(session, codes)
    if count > MAX_UNITS:
        raise RuleViolation(f"At most {MAX_UNITS} codes in one pack", code="too_many_codes", limit=MAX_UNITS)
    if count == 0:
        raise RuleViolation("No codes to pack", code="no_codes")

    def record() -> CaptureResult:
        assert carton is not None
        data = PackIn(
            parent_id=carton.id,
            event_time=event_time,
            location_id=location_id,
            children=[UnitRef(lot_id=u.lot_id, serial=u.serial) for _, _, u in found],
        )
        return capture(session=session, actor=actor, items=[(EventType.PACK, data)], idempotency_key=idempotency_key)

    if (
        carton is not None
        and not problems
        and idempotency_key
        and session.get(IdempotencyRecord, (org, idempotency_key))
    ):
        return record()  # sent again: the same answer (the units are packed now, by that first sending)
    problems += _judge(session, org, found, carton)
    if carton is not None and refused is None:
        refused = _parent_problem(session, org, carton)
    if problems or refused is not None:
        raise PackRefused(problems=sorted(problems, key=lambda p: p.line), parent=refused, lines=count)
    return record()


def contents(payload: dict[str, Any]) -> dict[int, int]:
    """Units per lot in a pack event's payload."""
    lots: dict[int, int] = {}
    for child in payload.get("children", []):
        lots[child["lot_id"]] = lots.get(child["lot_id"], 0) + 1
    return lots
