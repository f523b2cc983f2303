"""Recording scans and reading their pattern: a scan built from a request's hints (no personal data),
bulk writes that ignore scans already written, and the counts that flag a copied code."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, literal, select, update
from sqlmodel import Session, SQLModel, col

from trace.platform.config import get_settings
from trace.platform.prepared import PreparedRead
from trace.platform.timeutil import to_utc, utcnow
from trace.scans import tallies
from trace.scans.models import KINDS, Scan
from trace.scans.tallies import SOURCES_KEPT


class _Uids:
    """Scan uids: UUIDv7 (RFC 9562) as 32 hex digits, their random bits drawn from the OS 4 KiB at a time.

    A scan's uid is the visitor's handle to add a place to it later, so it must not be guessable: 74 bits
    of it come from ``os.urandom``, one system call for 400 scans (one a scan was ~13 µs of the cached page's
    ~150). The first 48 bits are the time in milliseconds: a round of scans goes to the end of the uid's
    unique index instead of to as many of its pages as it has scans, which made committing a round cost
    ~26 µs a scan on SQLite (~9 now). A forked process (uvicorn's and Celery's workers) draws afresh."""

    POOL = 4000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._at = b"", 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._at = b"", 0

    def __call__(self) -> str:
        with self._lock:
            at = self._at
            if at + 10 > len(self._pool):
                self._pool, at = os.urandom(self.POOL), 0
            self._at = at + 10
            random = int.from_bytes(self._pool[at : at + 10], "big")  # 80 bits, 74 used
        millis = time.time_ns() // 1_000_000
        # unix_ts_ms (48) | ver 7 (4) | rand_a (12) | variant 0b10 (2) | rand_b (62)
        value = millis << 80 | 0x7 << 76 | (random >> 68) << 64 | 0b10 << 62 | random & (1 << 62) - 1
        return f"{value:032x}"


new_uid = _Uids()


@dataclass(frozen=True, slots=True)
class ScanIn:
    """A scan not yet written: the columns of :class:`Scan` without its id."""

    uid: str
    lot_id: int
    unit_id: int | None
    scanned_at: datetime
    network: str
    place: str | None
    agent: str
    lang: str | None
    kind: str


FIELDS = tuple(ScanIn.__slots__)  # type: ignore[attr-defined]


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    # Derived, not the secret itself: the hashes reveal nothing about the key that signs tokens.
    return hashlib.sha256(b"hytrace-scan:" + secret.encode()).digest()


@lru_cache(maxsize=16384)
def _network(client_ip: str | None, secret: str) -> str:
    # Cached: the same visitors come back, and parsing plus HMAC is most of a scan's cost.
    prefix = b"unknown"
    try:
        address = ipaddress.ip_address((client_ip or "").strip())
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        # A /24 or a /48 is a household, an office or a mobile carrier's pool: it tells scans of a
        # copied code (many networks) from one family's phones (one network), and no more.
        prefix = b"4:" + address.packed[:3] if address.version == 4 else b"6:" + address.packed[:6]
    return hmac.digest(_key(secret), prefix, "sha256").hex()[:16]


def network_of(client_ip: str | None) -> str:
    """16 hex characters of an HMAC of the client's /24 (IPv4) or /48 (IPv6); ``unknown`` when unparsable."""
    return _network(client_ip, get_settings().secret_key)


def coarse_place(lat: float, lon: float) -> str | None:
    """``"21.0,106.1"``: a location rounded to 0.1° (about 11 km); None when out of range or not finite."""
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    # + 0.0 turns a rounded -0.0 into 0.0, so one cell has one name.
    return f"{round(lat, 1) + 0.0:.1f},{round(lon, 1) + 0.0:.1f}"


_BOTS = (
    "bot",
    "crawl",
    "spider",
    "slurp",
    "facebookexternalhit",
    "curl/",
    "wget/",
    "python-",
    "go-http-client",
    "java/",
    "libwww",
    "httpclient",
    "scrapy",
)
_MOBILE = ("mobi", "android", "iphone", "ipad", "ipod", "windows phone", "opera mini", "kaios")
_DESKTOP = ("windows nt", "macintosh", "x11", "cros", "linux x86_64")


@lru_cache(maxsize=4096)
def agent_of(user_agent: str | None, mobile_hint: str | None = None) -> str:
    """``mobile``, ``desktop``, ``bot`` or ``other`` from the User-Agent and Sec-CH-UA-Mobile (``?1``/``?0``)."""
    ua = (user_agent or "").lower()
    if any(word in ua for word in _BOTS):
        return "bot"
    hint = (mobile_hint or "").strip()
    if hint == "?1":
        return "mobile"
    if hint == "?0":
        return "desktop"
    if any(word in ua for word in _MOBILE):
        return "mobile"
    if any(word in ua for word in _DESKTOP):
        return "desktop"
    return "other"


def _lang(lang: str | None) -> str | None:
    text = (lang or "").strip().lower()[:5].rstrip("-")
    return text if text.isascii() and text.replace("-", "").isalpha() else None


def new_scan(
    *,
    lot_id: int,
    unit_id: int | None,
    client_ip: str | None,
    user_agent: str | None,
    mobile_hint: str | None = None,
    lang: str | None,
    kind: str,
    place: tuple[float, float] | None = None,
    at: datetime | None = None,
) -> ScanIn:
    """A scan of a lot's or unit's page, from the request's hints; runs on every page view, so cheap."""
    if kind not in KINDS:
        raise ValueError(f"scan kind must be one of {KINDS}, not {kind!r}")
    return ScanIn(
        uid=new_uid(),
        lot_id=lot_id,
        unit_id=unit_id,
        scanned_at=utcnow() if at is None else to_utc(at)[0],
        network=_network(client_ip, get_settings().secret_key),
        place=coarse_place(*place) if place is not None else None,
        agent=agent_of(user_agent, mobile_hint),
        lang=_lang(lang),
        kind=kind,
    )


def write(*, session: Session, scans: Sequence[ScanIn]) -> int:
    """Insert scans in bulk, skipping any whose uid is already written, and add those inserted to the
    figures (:mod:`trace.scans.tallies`) in the same transaction; the number inserted. Flushes only."""
    if not scans:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    statement, processors = _insert(dialect)
    # In uid order: two writers of overlapping batches then wait on each other's uids in one order, never in a circle.
    ordered = sorted(scans, key=lambda scan: scan.uid)
    # Through the driver, with the values converted exactly as SQLAlchemy's column types would:
    # through the ORM (RETURNING each id) a round of 1,500 scans took 60-330 ms of the GIL under load,
    # time the pages were waiting for. Column by column, converting only the columns that need it.
    columns = [[getattr(scan, name) for scan in ordered] for name in FIELDS]
    for index, convert in enumerate(processors):
        if convert is not None:
            columns[index] = [convert(value) for value in columns[index]]
    if dialect.name == "postgresql":
        # One INSERT ... SELECT FROM unnest() of one binary array per column (executemany spent ~9 us
        # of Python a row, text arrays ~7).
        inserted = connection.exec_driver_sql(statement, tuple(columns)).all()
    else:
        # SQLite: one JSON array of rows through json_each() (executemany cannot return the rows it inserted).
        rows = json.dumps(list(zip(*columns, strict=True)), separators=(",", ":"))
        inserted = connection.exec_driver_sql(statement, (rows,)).all()
    # Only the rows this insert added count: a uid already written (or twice in the batch) is counted once.
    by_uid: dict[str, ScanIn] = {}
    for scan in ordered:
        by_uid.setdefault(scan.uid, scan)
    tallies.add(connection=connection, written=[(int(scan_id), by_uid[uid]) for scan_id, uid in inserted])
    return len(inserted)


# Array types for PostgreSQL's unnest(); timestamptz as the driver sends an aware datetime anyway.
_PG_ARRAYS = {
    "uid": "varchar",
    "lot_id": "integer",
    "unit_id": "integer",
    "scanned_at": "timestamptz",
    "network": "varchar",
    "place": "varchar",
    "agent": "varchar",
    "lang": "varchar",
    "kind": "varchar",
}


@lru_cache(maxsize=4)
def _insert_for(name: str, paramstyle: str) -> str:
    columns = ", ".join(FIELDS)
    if name == "postgresql":
        arrays = ", ".join(f"%b::{_PG_ARRAYS[field]}[]" for field in FIELDS)
        return (
            f"INSERT INTO scan ({columns}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT (uid) DO NOTHING RETURNING id, uid"
        )
    mark = "?" if paramstyle == "qmark" else "%s"
    values = ", ".join(f"json_extract(value, '$[{index}]')" for index in range(len(FIELDS)))
    return f"INSERT OR IGNORE INTO scan ({columns}) SELECT {values} FROM json_each({mark}) RETURNING id, uid"


def _insert(dialect: Any) -> tuple[str, list[Any]]:
    table = Scan.__table__  # type: ignore[attr-defined]
    # The dialect's implementation: the type's own conversion and then the dialect's (on SQLite, a
    # datetime becomes the text SQLAlchemy stores everywhere else, so the figures compare alike).
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in FIELDS]
    return _insert_for(dialect.name, dialect.paramstyle), processors


PLACE_WINDOW = timedelta(hours=1)  # a visitor may add where they are this long after the scan


def set_place(*, session: Session, uid: str, place: str) -> bool:
    """Record where a visitor chose to say they were, once, on their own recent scan (found by the
    scan's random uid, which only that visitor's page holds); it counts if that scan is its network's
    first of the code."""
    found = session.execute(
        update(Scan)
        .where(col(Scan.uid) == uid, col(Scan.place).is_(None), col(Scan.scanned_at) >= utcnow() - PLACE_WINDOW)
        .values(place=place)
        .returning(col(Scan.id))
    ).scalar_one_or_none()
    if found is None:
        return False
    scan_id = int(found)
    # Is it a first sighting? A scan already written never becomes one later (sightings only move to
    # earlier scans), so a miss here needs no lock.
    sighting = tallies.SIGHTING
    firsts = [
        (scope, int(code_id))
        for scope, code_id in session.execute(
            select(sighting.c.scope, sighting.c.code_id).where(sighting.c.scan_id == scan_id)
        )
    ]
    if firsts:
        connection = session.connection()
        # Under the codes' tally locks, as the writers of their sightings: the recount sees them all.
        tallies.lock(connection=connection, codes=firsts)
        session.execute(
            update(sighting).where(sighting.c.scan_id == scan_id, sighting.c.place.is_(None)).values(place=place)
        )
        tallies.recount(connection=connection, codes=firsts)
    return True


class ScanStats(SQLModel):
    """How often and from how many networks and places a code was scanned, and whether that is suspicious."""

    count: int
    first_at: datetime | None
    last_at: datetime | None
    networks: int  # distinct networks (hashed /24 or /48) over the code's life
    places: int  # distinct places, each shared from a network on its first scan of the code
    suspicious: bool
    reasons: list[str]  # many_networks | many_places


def assess(*, networks: int, places: int) -> tuple[bool, list[str]]:
    """Suspicious when a figure reaches its setting (``>=``: ``scan_warn_networks = 5`` flags the fifth network).

    Only what one place cannot fake cheaply counts: how many distinct networks scanned the code, and
    the places shared from networks new to it. How often it was scanned does not: one network scanning
    a code a thousand times is a curious family or somebody trying to get a genuine code flagged."""
    settings = get_settings()
    reasons = [
        reason
        for reason, value, limit in (
            ("many_networks", networks, settings.scan_warn_networks),
            ("many_places", places, settings.scan_warn_places),
        )
        if value >= limit
    ]
    return bool(reasons), reasons


def _code(unit_id: int | None, lot_id: int | None) -> tuple[str, int]:
    if unit_id is None and lot_id is None:
        raise ValueError("scan counts need a unit_id or a lot_id")
    return ("unit", unit_id) if unit_id is not None else ("lot", lot_id)  # type: ignore[return-value]


def tally(
    *,
    session: Session,
    unit_id: int | None = None,
    lot_id: int | None = None,
    pending: Sequence[ScanIn] = (),
    limit: int = SOURCES_KEPT,
) -> tuple[ScanStats, set[str], set[str]]:
    """A unit's (or a lot's) counts, and the networks it was scanned from and the places that count, at
    most ``limit`` of each: ``pending`` (scans not yet written) folded in exactly once.

    A place counts only when shared on a network's first scan of the code: from a network already
    seen, a shared place (``?geo=`` or the page's button) is one visitor saying where they are again,
    or one forger naming places, and adds nothing. A page process adds its own new scans to the sets
    the same way (:meth:`api.public.PublicPages.record`).

    Read from the figures kept as the scans were written (:mod:`trace.scans.tallies`): one row and at
    most ``limit`` first sightings, whatever the number of scans. Past :data:`SOURCES_KEPT` networks the
    figures stop growing: "at least that many", far past any warning setting."""
    return read_tally(connection=session.connection(), unit_id=unit_id, lot_id=lot_id, pending=pending, limit=limit)


# A code's first sightings, as many as the figures keep (``limit``): read on every page not cached yet.
_SIGHTINGS = PreparedRead(
    select(tallies.SIGHTING.c.network, tallies.SIGHTING.c.place)
    .where(tallies.SIGHTING.c.scope == bindparam("scope"), tallies.SIGHTING.c.code_id == bindparam("code_id"))
    .order_by(tallies.SIGHTING.c.first_at, tallies.SIGHTING.c.scan_id)
    .limit(bindparam("limit", literal_execute=False))
)
Kept = tuple[int, datetime, datetime, int, int]  # a scan_tally row: scans, first_at, last_at, networks, places
UNREAD: Any = object()  # read_tally's ``kept`` when the caller has not read the tally row


def read_tally(
    *,
    connection: Connection,
    unit_id: int | None = None,
    lot_id: int | None = None,
    pending: Sequence[ScanIn] = (),
    limit: int = SOURCES_KEPT,
    kept: Kept | None = UNREAD,
) -> tuple[ScanStats, set[str], set[str]]:
    """:func:`tally` on a connection. ``kept``: the code's tally row as the caller read it a moment ago
    (None: there was none), used when no scan of the code is pending: then only its sightings are read,
    and nothing at all for a code never scanned (a tally row comes with a code's first written scan)."""
    scope, code_id = _code(unit_id, lot_id)
    mine = {
        s.uid: s
        for s in pending
        if (unit_id is None or s.unit_id == unit_id) and (lot_id is None or s.lot_id == lot_id)
    }
    table = tallies.TALLY
    row: Sequence[Any] | None
    if kept is UNREAD or mine:
        # Which pending scans are already written, in the same statement (one snapshot) as the counts that
        # include them: a flush committing in between can never make one count twice or not at all.
        written = (
            select(func.count()).select_from(Scan).where(col(Scan.uid).in_(list(mine))).scalar_subquery()
            if mine
            else literal(0)
        )
        row = connection.execute(
            select(table.c.scans, table.c.first_at, table.c.last_at, table.c.networks, table.c.places, written).where(
                table.c.scope == scope, table.c.code_id == code_id
            )
        ).one_or_none()
    else:
        row = None if kept is None else (*kept, 0)
    # No row: nothing of this code is written, pending scans included (they would have made it).
    count, first_at, last_at, kept_networks, kept_places, known = row if row is not None else (0, None, None, 0, 0, 0)
    seen = (
        _SIGHTINGS.all(connection, {"scope": scope, "code_id": code_id, "limit": limit})
        if row is not None or kept is UNREAD
        else []
    )
    networks = {network for network, _ in seen}
    places = {place for _, place in seen if place is not None}
    if len(seen) < limit:
        # Every network is in the sets: fold in the pending scans of networks the database has not seen
        # (a flush between the two reads only moves a scan from pending to seen, never counts it twice).
        for scan in sorted(mine.values(), key=lambda s: (s.scanned_at, s.uid)):
            if scan.network not in networks:
                networks.add(scan.network)
                if scan.place is not None:
                    places.add(scan.place)
        network_count, place_count = min(len(networks), SOURCES_KEPT), min(len(places), SOURCES_KEPT)
    else:  # the sets are cut at ``limit``: the kept figures
        network_count, place_count = int(kept_networks), int(kept_places)
    times = [t for t in (first_at, last_at) if t is not None] + [s.scanned_at for s in mine.values()]
    suspicious, reasons = assess(networks=network_count, places=place_count)
    found = ScanStats.model_construct(
        count=int(count) + len(mine) - int(known),
        first_at=min(times) if times else None,
        last_at=max(times) if times else None,
        networks=network_count,
        places=place_count,
        suspicious=suspicious,
        reasons=reasons,
    )
    return found, networks, places


def stats(
    *, session: Session, unit_id: int | None = None, lot_id: int | None = None, pending: Sequence[ScanIn] = ()
) -> ScanStats:
    """Counts for a unit (or a lot), with ``pending`` (scans not yet written) folded in."""
    return tally(session=session, unit_id=unit_id, lot_id=lot_id, pending=pending)[0]
