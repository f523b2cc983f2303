"""Is this code genuine? Checks of a printed label's code or Digital Link against the registry.

The public answer names the product, lot and unit state only; who printed what and the code
lists stay private. Inspector checklists (designations, holds) build on this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection, and_, bindparam, select
from sqlmodel import Session, SQLModel, col

from trace import digital_link
from trace.designations.claims import claims_for_lot
from trace.designations.models import ClaimStatus
from trace.errors import NotFound
from trace.lots import Lot, LotStatus
from trace.platform.config import get_settings
from trace.platform.prepared import PreparedRead
from trace.printing.models import PrintRun
from trace.products import Product
from trace.scans.tallies import TALLY
from trace.units import Unit, UnitLevel, UnitStatus, display_code, normalize_code


class CodeCheck(SQLModel):
    """What a scan or a typed code tells anyone."""

    valid: bool
    status: str  # valid | void | lot_<status> for a lot that is on hold, recalled or cancelled
    uri: str
    code: str | None = None  # the human code, as printed
    gtin: str
    lot_code: str
    serial: str | None = None
    level: str | None = None
    product_name: str
    product_name_en: str | None = None
    production_date: date
    expiry_date: date | None = None
    lot_status: LotStatus
    claims: list[ClaimStatus] = []  # designations the lot carries, each judged at harvest and today


def hosts(session: Session) -> set[str]:
    """Hosts our labels name: the public base URL's, the configured aliases, and every base URL a
    print run recorded (codes outlive hostnames)."""
    settings = get_settings()
    printed = session.execute(select(col(PrintRun.base_url)).distinct()).scalars()
    return set(settings.public_hosts) | {urlsplit(url).netloc.lower() for url in printed}


def answer(*, session: Session, lot: Lot, unit: Unit | None) -> CodeCheck:
    """What a check of this lot (or unit of it) tells anyone."""
    product = session.get(Product, lot.product_id)
    assert product is not None
    base = get_settings().public_base_url
    if unit is None:
        uri = digital_link.lot_uri(base_url=base, gtin=lot.gtin, lot=lot.lot_code)
    else:
        uri = digital_link.unit_uri(base_url=base, gtin=lot.gtin, lot=lot.lot_code, serial=unit.serial)
    status = "valid"
    if unit is not None and unit.status == UnitStatus.VOID:
        status = "void"
    elif lot.status in (LotStatus.ON_HOLD, LotStatus.RECALLED, LotStatus.CANCELLED):
        status = f"lot_{lot.status.value}"
    return CodeCheck(
        valid=status == "valid",
        status=status,
        uri=uri,
        code=display_code(unit.code) if unit else None,
        gtin=lot.gtin,
        lot_code=lot.lot_code,
        serial=unit.serial if unit else None,
        level=unit.level.value if unit else None,
        product_name=product.name_vi,
        product_name_en=product.name_en,
        production_date=lot.production_date,
        expiry_date=lot.expiry_date,
        lot_status=lot.status,
        claims=claims_for_lot(session=session, lot=lot),
    )


def not_genuine(what: str) -> NotFound:
    """The answer for a code this system never issued."""
    return NotFound(f"{what} is not a code this system issued: the label may not be genuine", code="not_genuine")


def check_code(*, session: Session, code: str) -> CodeCheck:
    """Look up a human code as typed (dashes, case and O/I/L forgiven; a typo caught by its check)."""
    unit = session.execute(select(Unit).where(Unit.code == normalize_code(code))).scalar_one_or_none()  # type: ignore[arg-type]
    if unit is None:
        raise not_genuine(f"Code {code.strip()}")
    lot = session.get(Lot, unit.lot_id)
    assert lot is not None
    return answer(session=session, lot=lot, unit=unit)


def find(*, session: Session, link: digital_link.DigitalLink) -> tuple[Lot, Unit | None]:
    """The lot (and unit) a parsed Digital Link names, or 404 ``not_genuine``."""
    if link.lot is None:
        raise not_genuine(f"GTIN {link.gtin} without a lot")
    lot = session.execute(select(Lot).where(Lot.gtin == link.gtin, Lot.lot_code == link.lot)).scalar_one_or_none()  # type: ignore[arg-type]
    if lot is None:
        raise not_genuine(f"Lot {link.lot} of GTIN {link.gtin}")
    unit = None
    if link.serial is not None:
        unit = session.execute(
            select(Unit).where(Unit.lot_id == lot.id, Unit.serial == link.serial)  # type: ignore[arg-type]
        ).scalar_one_or_none()
        if unit is None:
            raise not_genuine(f"Serial {link.serial} of lot {link.lot}")
    return lot, unit


_UNITS = Unit.__table__  # type: ignore[attr-defined]
_LOTS = Lot.__table__  # type: ignore[attr-defined]
# One indexed read per scan of a page not cached yet, built once (statement construction was a third of it).
_UNIT_OF_LINK = (
    select(_UNITS, _LOTS.c.id.label("of_lot"))
    .join(_LOTS, _LOTS.c.id == _UNITS.c.lot_id)
    .where(
        _LOTS.c.gtin == bindparam("gtin"), _LOTS.c.lot_code == bindparam("lot"), _UNITS.c.serial == bindparam("serial")
    )
)


def locate(*, session: Session, link: digital_link.DigitalLink) -> tuple[int, Unit]:
    """The lot id and the unit (detached: read, not tracked) a unit's Digital Link names, in one read;
    404 ``not_genuine`` as :func:`find` says it."""
    if link.lot is None or link.serial is None:
        raise not_genuine(f"GTIN {link.gtin} without a lot and a serial")
    row = (
        session.connection()
        .execute(_UNIT_OF_LINK, {"gtin": link.gtin, "lot": link.lot, "serial": link.serial})
        .mappings()
        .first()
    )
    if row is None:
        find(session=session, link=link)  # says which part is unknown
        raise not_genuine(f"Serial {link.serial} of lot {link.lot}")
    unit = Unit(**{name: row[name] for name in _UNITS.c.keys()})
    return row["of_lot"], unit


@dataclass(frozen=True, slots=True)
class UnitRow:
    """What a unit's page shows of the unit's own row, read without the ORM (see :func:`first_look`)."""

    id: int
    lot_id: int
    serial: str
    code: str
    level: UnitLevel
    status: UnitStatus
    created_event_id: str


@dataclass(frozen=True, slots=True)
class TallyRow:
    """The code's kept scan figures (``scan_tally``) as they stood when the unit was read."""

    scans: int
    first_at: datetime
    last_at: datetime
    networks: int
    places: int


# A unit's page not cached yet: the unit and its scan figures in one indexed read, one snapshot.
_FIRST_LOOK = PreparedRead(
    select(
        _UNITS.c.id,
        _UNITS.c.lot_id,
        _UNITS.c.serial,
        _UNITS.c.code,
        _UNITS.c.level,
        _UNITS.c.status,
        _UNITS.c.created_event_id,
        TALLY.c.scans,
        TALLY.c.first_at,
        TALLY.c.last_at,
        TALLY.c.networks,
        TALLY.c.places,
    )
    .select_from(
        _UNITS.join(_LOTS, _LOTS.c.id == _UNITS.c.lot_id).outerjoin(
            TALLY, and_(TALLY.c.scope == "unit", TALLY.c.code_id == _UNITS.c.id)
        )
    )
    .where(
        _LOTS.c.gtin == bindparam("gtin"), _LOTS.c.lot_code == bindparam("lot"), _UNITS.c.serial == bindparam("serial")
    )
)


def first_look(*, connection: Connection, link: digital_link.DigitalLink) -> tuple[UnitRow, TallyRow | None] | None:
    """The unit a unit's Digital Link names and its scan figures (None: no tally row, never scanned and
    written), in one statement on ``connection`` (a read that needs no transaction of its own); None when
    no such unit exists (:func:`find` then says which part is unknown)."""
    if link.lot is None or link.serial is None:
        raise not_genuine(f"GTIN {link.gtin} without a lot and a serial")
    row = _FIRST_LOOK.first(connection, {"gtin": link.gtin, "lot": link.lot, "serial": link.serial})
    if row is None:
        return None
    unit = UnitRow(row[0], row[1], row[2], row[3], UnitLevel(row[4]), UnitStatus(row[5]), row[6])
    tally = None if row[7] is None else TallyRow(int(row[7]), row[8], row[9], int(row[10]), int(row[11]))
    return unit, tally


def check_link(*, session: Session, link: digital_link.DigitalLink) -> CodeCheck:
    """Look up a parsed Digital Link of a lot or a unit."""
    lot, unit = find(session=session, link=link)
    return answer(session=session, lot=lot, unit=unit)


def check_uri(*, session: Session, uri: str) -> CodeCheck:
    """Look up a scanned URI: on one of our hosts, then as :func:`check_link`."""
    return check_link(session=session, link=digital_link.parse(uri, hosts=hosts(session)))
