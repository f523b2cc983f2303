"""Units: single labelled packages (or cartons) of a lot, identified by GTIN + lot + a random serial.

Each unit also has a short human code, unique across the instance, printed under the QR so an
inspector can type it alone: 8 random Crockford base32 characters (40 bits) and a check character
(a weighted sum over GF(32), see :func:`check_char`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ARRAY, Index, String, UniqueConstraint, bindparam, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col

from trace.errors import Conflict, InvalidIdentifier
from trace.platform.sqltypes import enum_type, in_chunks
from trace.platform.timeutil import utcnow
from trace.reports import tallies

# Crockford's base32: no I, L, O, U, so a code read aloud or typed is unambiguous.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {ch: i for i, ch in enumerate(CROCKFORD)}
# Crockford's decoding rules: the letters people type for the digits they see.
_TYPED = str.maketrans({"O": "0", "I": "1", "L": "1"})
CODE_BODY = 8  # 40 random bits
CODE_LENGTH = CODE_BODY + 1


class UnitStatus(StrEnum):
    ACTIVE = "active"
    VOID = "void"


class UnitLevel(StrEnum):
    UNIT = "unit"  # a consumer package
    CARTON = "carton"  # a case of packages


class Unit(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("lot_id", "serial"),
        # The dashboard's label counts (active package codes by time and lot) from the index alone ...
        Index(
            "ix_unit_active_created",
            "created_at",
            "lot_id",
            sqlite_where=text("level = 'unit' AND status = 'active'"),
            postgresql_where=text("level = 'unit' AND status = 'active'"),
        ),
        # ... and the few voided codes a quota gives back, without reading every code of the runs.
        Index(
            "ix_unit_void_print_run",
            "print_run_id",
            sqlite_where=text("status = 'void'"),
            postgresql_where=text("status = 'void'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int = Field(foreign_key="lot.id", index=True)
    serial: str = Field(max_length=20)
    code: str = Field(max_length=CODE_LENGTH, unique=True, index=True, description="Human code, unique in the instance")
    level: UnitLevel = Field(default=UnitLevel.UNIT, sa_type=enum_type(UnitLevel, 10))
    print_run_id: int | None = Field(default=None, foreign_key="print_run.id", index=True)
    parent_id: str | None = Field(default=None, max_length=120, index=True)  # carton/pallet
    status: UnitStatus = Field(default=UnitStatus.ACTIVE, sa_type=enum_type(UnitStatus))
    created_event_id: str = Field(max_length=36, index=True)
    created_at: datetime = Field(default_factory=utcnow)


def new_serial(bits: int = 50) -> str:
    """A random serial of ``bits`` bits in Crockford base32 (10 characters for 50 bits)."""
    return _random_base32((bits + 4) // 5)


def _random_base32(length: int) -> str:
    value = secrets.randbits(5 * length)
    chars = []
    for _ in range(length):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(chars)


def _gf32_tables() -> tuple[list[int], list[int]]:
    exp, log, value = [0] * 62, [0] * 32, 1
    for i in range(31):  # GF(32) from the primitive polynomial x^5 + x^2 + 1
        exp[i] = exp[i + 31] = value
        log[value] = i
        value <<= 1
        if value & 32:
            value ^= 0b100101
    return exp, log


_EXP, _LOG = _gf32_tables()


def _times_alpha_power(value: int, power: int) -> int:
    return 0 if value == 0 else _EXP[(_LOG[value] + power) % 31]


def check_char(body: str) -> str:
    """The check character c making sum(alpha^i * v_i) = 0 over GF(32) for the code body + c.

    Weights alpha^i are distinct and non-zero, so every single wrong character is caught, and so
    is every swap of two neighbours or of characters two apart, the check character included
    (Luhn mod 32 misses 0<->Z swaps; Crockford's mod 37 adds * ~ $ = U, awkward to type)."""
    total = 0
    for i, ch in enumerate(body):
        total ^= _times_alpha_power(_VALUE[ch], i)
    return CROCKFORD[_times_alpha_power(total, -len(body))]


def new_code() -> str:
    """A fresh human code (not yet checked for uniqueness)."""
    body = _random_base32(CODE_BODY)
    return body + check_char(body)


def display_code(code: str) -> str:
    """A code as printed: three groups of three (``7KQ-2M9-XDV``)."""
    return "-".join(code[i : i + 3] for i in range(0, len(code), 3))


def normalize_code(typed: str) -> str:
    """The stored form of a code as a person typed it: case, spaces, dashes and O/I/L forgiven;
    a wrong length, a character outside the alphabet or a failed check is refused with the reason."""
    text = "".join(typed.split()).replace("-", "").upper().translate(_TYPED)
    if len(text) != CODE_LENGTH:
        raise InvalidIdentifier(
            f"A label code has {CODE_LENGTH} characters (not counting dashes); got {len(text)}", code="code_length"
        )
    bad = sorted({ch for ch in text if ch not in _VALUE})
    if bad:
        raise InvalidIdentifier(f"A label code has no {', '.join(bad)}", code="code_characters")
    if check_char(text[:-1]) != text[-1]:
        raise InvalidIdentifier(
            "This label code's check character does not match: a character is mistyped", code="code_check"
        )
    return text


def _taken(session: Session, column: Any, values: Iterable[str], lot_id: int | None = None) -> set[str]:
    values = list(values)
    found: set[str] = set()
    for chunk in in_chunks(values):
        query = select(column).where(column.in_(chunk))
        if lot_id is not None:
            query = query.where(Unit.lot_id == lot_id)  # type: ignore[arg-type]
        found.update(session.execute(query).scalars())
    return found


def _unique(count: int, make: Callable[[], str], avoid: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        for value in {make() for _ in range(count - len(out))} - avoid:
            avoid.add(value)
            out.append(value)
    return out


def _insert_ignoring_taken() -> Any:
    """SQLite: INSERT OR IGNORE … RETURNING, executed with one parameter set per row."""
    table = Unit.__table__  # type: ignore[attr-defined]
    return sqlite_insert(table).on_conflict_do_nothing().returning(table.c.serial, table.c.code)


def _insert_arrays(session: Session, pairs: list[tuple[str, str]], row: dict[str, Any]) -> list[tuple[str, str]]:
    """PostgreSQL: the rows as two arrays (serials, codes) and ``row``'s one value of each other column, in one
    statement. As many rows of VALUES, psycopg spent ~10 of the 14 s of 100,000 codes parsing them."""
    table = Unit.__table__  # type: ignore[attr-defined]
    pairs_in = (
        func.unnest(
            bindparam("serials", [s for s, _ in pairs], type_=ARRAY(String)),
            bindparam("codes", [c for _, c in pairs], type_=ARRAY(String)),
        )
        .table_valued("serial", "code")
        .render_derived()
    )
    values = [pairs_in.c.serial, pairs_in.c.code, *(literal(v, table.c[k].type) for k, v in row.items())]
    statement = (
        postgresql_insert(table)
        .from_select(["serial", "code", *row], select(*values).select_from(pairs_in))
        .on_conflict_do_nothing()
        .returning(table.c.serial, table.c.code)
    )
    return [(found[0], found[1]) for found in session.execute(statement)]


def register_units(
    *,
    session: Session,
    lot_id: int,
    count: int,
    event_id: str,
    level: UnitLevel = UnitLevel.UNIT,
    print_run_id: int | None = None,
    serials: list[str] | None = None,
) -> list[tuple[str, str]]:
    """Insert ``count`` units of a lot with new serials (unique in the lot) and codes (unique in
    the instance); returns the (serial, code) pairs written. ``serials``: those (the caller checked
    they are new in the lot) instead of random ones. The caller holds the lot's row lock (a commission
    does), so two registrations of one lot never wait on each other's rows.

    The unique constraints decide, not a look-up first: each row that would repeat a serial of the
    lot or a code of the instance is skipped by the insert and made again. A look-up of 100,000
    serials in a lot of 500,000 read the whole lot on PostgreSQL (issue 17), and it raced with a
    concurrent run on the same lot."""
    given = list(serials) if serials is not None else None
    seen_serials: set[str] = set()
    seen_codes: set[str] = set()
    wanted = given if given is not None else _unique(count, new_serial, seen_serials)
    # Every column but the serial and the code is the same for all the rows of one registration.
    registered = utcnow()
    same = {
        "lot_id": lot_id,
        "level": level.value,
        "print_run_id": print_run_id,
        "parent_id": None,
        "status": UnitStatus.ACTIVE.value,
        "created_event_id": event_id,
        "created_at": registered,
    }
    postgres = session.get_bind().dialect.name == "postgresql"
    made: list[tuple[str, str]] = []
    while wanted:
        pairs = list(zip(wanted, _unique(len(wanted), new_code, seen_codes), strict=True))
        if postgres:
            written = _insert_arrays(session, pairs, same)
        else:
            rows = [{**same, "serial": s, "code": c} for s, c in pairs]
            written = [(row[0], row[1]) for row in session.execute(_insert_ignoring_taken(), rows)]
        made.extend(written)
        missing = set(wanted) - {serial for serial, _ in written}
        if not missing:
            break
        if given is not None:
            # A serial the caller named was taken meanwhile (a concurrent capture): that is the caller's conflict.
            taken = _taken(session, Unit.serial, missing, lot_id)
            if taken:
                raise Conflict(f"The lot already has unit(s) {', '.join(sorted(taken)[:10])}", code="unit_exists")
            wanted = [s for s in given if s in missing]  # only their codes were taken: new codes, same serials
        else:
            wanted = _unique(len(missing), new_serial, seen_serials)
    if level == UnitLevel.UNIT:  # the dashboard's label counts (cartons are not labels of their own)
        tallies.add_codes(connection=session.connection(), codes=[(lot_id, registered, len(made))])
    return made


def serials_digest(serials: Iterable[str]) -> str:
    """SHA-256 of a set of serials (sorted, one per line): what a commission event commits to.

    A commission of 100,000 codes would otherwise copy 1.4 MB of serials into its event; the unit
    table holds them, and the digest in the event (under the chain's hash) proves the set unchanged."""
    return hashlib.sha256("\n".join(sorted(serials)).encode()).hexdigest()


def serials_of(*, session: Session, event_ids: Iterable[str]) -> dict[str, list[str]]:
    """The serials each commission event registered, in the order it registered them."""
    out: dict[str, list[str]] = {}
    for chunk in in_chunks(sorted(set(event_ids))):
        found = session.execute(
            select(Unit.created_event_id, Unit.serial)  # type: ignore[call-overload]
            .where(col(Unit.created_event_id).in_(chunk))
            .order_by(Unit.id)
        )
        for event_id, serial in found:
            out.setdefault(event_id, []).append(serial)
    return out


def has_loose_units(*, session: Session, lot_id: int) -> bool:
    """Whether a lot has labelled packages (active units) in no carton or pallet yet: something to pack."""
    loose = select(Unit.id).where(  # type: ignore[call-overload]
        Unit.lot_id == lot_id,
        Unit.status == UnitStatus.ACTIVE,
        Unit.parent_id.is_(None),  # type: ignore[union-attr]
    )
    return session.execute(loose.limit(1)).first() is not None
