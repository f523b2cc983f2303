"""The figures kept as scans are written, so that reading them costs the same at 0 and at 10,000,000 scans.

Per code (a lot's and a unit's): how many scans, the first and the last (``scan_tally``); each network's
first scan of the code and the place shared on it, for at most :data:`SOURCES_KEPT` networks
(``scan_sighting``: past that bound the figures say "at least 256", far past any warning setting); and
per quarter hour, the scans of people and of bots (``scan_bucket``, the dashboard's).

:func:`add` is called by :func:`trace.scans.record.write` in the transaction that inserted the scans, with
only the rows that insert really added, so a batch written twice adds nothing. Several processes flush at
once: each upsert adds to what is there (``scans = scans + excluded.scans``, least/greatest of the times),
and the tally rows are upserted first, in key order: on PostgreSQL that row lock makes the writers of one
code take turns for its sightings (the bound and the first-sighting rule read what the last one left),
and the same order everywhere means no two writers wait on each other in a circle.
:mod:`trace.scans.check` recomputes all of it from the scans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from trace.platform.sqltypes import in_chunks
from trace.platform.timeutil import quarter_hour
from trace.scans.models import ScanBucket, ScanSighting, ScanTally


class ScanIn(Protocol):
    """What the figures read of a scan (:class:`trace.scans.record.ScanIn`, not imported: record imports this)."""

    @property
    def lot_id(self) -> int: ...
    @property
    def unit_id(self) -> int | None: ...
    @property
    def scanned_at(self) -> datetime: ...
    @property
    def network(self) -> str: ...
    @property
    def place(self) -> str | None: ...
    @property
    def agent(self) -> str: ...


SOURCES_KEPT = 256  # first sightings kept per code, well above any warning setting

TALLY = ScanTally.__table__  # type: ignore[attr-defined]
SIGHTING = ScanSighting.__table__  # type: ignore[attr-defined]
BUCKETS = ScanBucket.__table__  # type: ignore[attr-defined]

Code = tuple[str, int]  # (scope, code id)


def codes_of(scan: ScanIn) -> list[Code]:
    """The codes a scan counts for: its lot's, and its unit's when it has one."""
    return [("lot", scan.lot_id)] if scan.unit_id is None else [("lot", scan.lot_id), ("unit", scan.unit_id)]


def _insert(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def _least_greatest(connection: Connection) -> tuple[Any, Any]:
    # SQLite's two-argument min() and max() are PostgreSQL's least() and greatest().
    return (func.least, func.greatest) if connection.dialect.name == "postgresql" else (func.min, func.max)


def add(*, connection: Connection, written: Iterable[tuple[int, ScanIn]]) -> None:
    """Add scans just inserted (their ids and themselves) to the figures, in the inserting transaction."""
    tallies: dict[Code, list[Any]] = {}
    firsts: dict[tuple[str, int, str], tuple[datetime, int, str | None]] = {}
    buckets: dict[datetime, list[int]] = {}
    for scan_id, scan in written:
        at = scan.scanned_at
        for code in codes_of(scan):
            found = tallies.get(code)
            if found is None:
                tallies[code] = [1, at, at]
            else:
                found[0] += 1
                found[1] = min(found[1], at)
                found[2] = max(found[2], at)
            key = (*code, scan.network)
            first = firsts.get(key)
            if first is None or (at, scan_id) < first[:2]:
                firsts[key] = (at, scan_id, scan.place)
        counts = buckets.setdefault(quarter_hour(at), [0, 0])
        counts[scan.agent == "bot"] += 1
    if not tallies:
        return
    kept = _add_tallies(connection, tallies)
    changed = _add_sightings(connection, firsts, kept)
    recount(connection=connection, codes=changed)
    _add_buckets(connection, buckets)


def _add_tallies(connection: Connection, tallies: dict[Code, list[Any]]) -> dict[Code, int]:
    """Upsert the codes' counts (in key order: the lock order); each code's first sightings now kept."""
    insert = _insert(connection)(TALLY)
    least, greatest = _least_greatest(connection)
    statement = insert.on_conflict_do_update(
        index_elements=[TALLY.c.scope, TALLY.c.code_id],
        set_={
            "scans": TALLY.c.scans + insert.excluded.scans,
            "first_at": least(TALLY.c.first_at, insert.excluded.first_at),
            "last_at": greatest(TALLY.c.last_at, insert.excluded.last_at),
        },
    ).returning(TALLY.c.scope, TALLY.c.code_id, TALLY.c.networks)
    rows = [
        {"scope": s, "code_id": c, "scans": n, "first_at": lo, "last_at": hi, "networks": 0, "places": 0}
        for (s, c), (n, lo, hi) in sorted(tallies.items())
    ]
    return {(scope, code_id): int(networks) for scope, code_id, networks in connection.execute(statement, rows)}


def _add_sightings(
    connection: Connection, firsts: dict[tuple[str, int, str], tuple[datetime, int, str | None]], kept: dict[Code, int]
) -> set[Code]:
    """Each network's first scan of each code, within the bound; the codes whose sightings changed."""
    # Which networks each code has kept is only needed where the bound could be reached: elsewhere every
    # network fits, and the upsert itself tells a new one from one seen (a unit has a few networks).
    offered: dict[Code, int] = {}
    for scope, code_id, _ in firsts:
        offered[(scope, code_id)] = offered.get((scope, code_id), 0) + 1
    crowded = sorted(code for code, count in offered.items() if kept[code] + count > SOURCES_KEPT)
    known: set[tuple[str, int, str]] = set()
    for scope in {scope for scope, _ in crowded}:
        for chunk in in_chunks([code_id for s, code_id in crowded if s == scope]):
            known.update(
                (scope, int(code_id), network)
                for code_id, network in connection.execute(
                    select(SIGHTING.c.code_id, SIGHTING.c.network).where(
                        SIGHTING.c.scope == scope, SIGHTING.c.code_id.in_(chunk)
                    )
                )
            )
    crowd = set(crowded)
    room = {code: SOURCES_KEPT - networks for code, networks in kept.items()}
    rows = []
    # New networks in the order they first scanned the code: a full set keeps the earliest.
    for key, (at, scan_id, place) in sorted(firsts.items(), key=lambda item: item[1][:2]):
        code = (key[0], key[1])
        if code in crowd and key not in known:
            if room[code] <= 0:
                continue
            room[code] -= 1
        rows.append(
            {"scope": key[0], "code_id": key[1], "network": key[2], "first_at": at, "scan_id": scan_id, "place": place}
        )
    if not rows:
        return set()
    if connection.dialect.name == "postgresql":
        # One statement over binary arrays (unnest), as the scans' own insert: row by row VALUES took
        # three times that insert's time.
        arrays = tuple([row[name] for row in rows] for name in _SIGHTING_COLUMNS)
        return {(scope, int(code_id)) for scope, code_id in connection.exec_driver_sql(_PG_SIGHTINGS, arrays)}
    insert = sqlite.insert(SIGHTING)
    mine, theirs = insert.excluded, SIGHTING.c
    # A network already seen keeps its first scan unless this one came earlier (a scan held longer
    # in another process's buffer): the same (time, id) order the figures have always used.
    earlier = or_(
        mine.first_at < theirs.first_at, and_(mine.first_at == theirs.first_at, mine.scan_id < theirs.scan_id)
    )
    statement = insert.on_conflict_do_update(
        index_elements=[theirs.scope, theirs.code_id, theirs.network],
        set_={"first_at": mine.first_at, "scan_id": mine.scan_id, "place": mine.place},
        where=earlier,
    ).returning(theirs.scope, theirs.code_id)
    return {(scope, int(code_id)) for scope, code_id in connection.execute(statement, rows)}


_SIGHTING_COLUMNS = ("scope", "code_id", "network", "first_at", "scan_id", "place")
_PG_SIGHTINGS = (
    "INSERT INTO scan_sighting (scope, code_id, network, first_at, scan_id, place) "
    "SELECT * FROM unnest(%b::varchar[], %b::integer[], %b::varchar[], %b::timestamptz[], %b::integer[],"
    " %b::varchar[]) "
    "ON CONFLICT (scope, code_id, network) DO UPDATE "
    "SET first_at = excluded.first_at, scan_id = excluded.scan_id, place = excluded.place "
    "WHERE excluded.first_at < scan_sighting.first_at "
    "OR (excluded.first_at = scan_sighting.first_at AND excluded.scan_id < scan_sighting.scan_id) "
    "RETURNING scope, code_id"
)


def recount(*, connection: Connection, codes: Iterable[Code]) -> None:
    """Set the codes' networks and places from their first sightings (at most :data:`SOURCES_KEPT` rows each)."""
    here = and_(SIGHTING.c.scope == TALLY.c.scope, SIGHTING.c.code_id == TALLY.c.code_id)
    values = {
        "networks": select(func.count()).select_from(SIGHTING).where(here).scalar_subquery(),
        "places": select(func.count(func.distinct(SIGHTING.c.place))).where(here).scalar_subquery(),
    }
    wanted = sorted(set(codes))
    for scope in {scope for scope, _ in wanted}:
        ids = [code_id for s, code_id in wanted if s == scope]
        for chunk in in_chunks(ids):
            connection.execute(update(TALLY).where(TALLY.c.scope == scope, TALLY.c.code_id.in_(chunk)).values(**values))


def lock(*, connection: Connection, codes: Sequence[Code]) -> None:
    """Hold the codes' tally rows until the transaction ends (PostgreSQL; SQLite has one writer), in key order."""
    for scope, code_id in sorted(codes):
        connection.execute(
            select(TALLY.c.scans).where(TALLY.c.scope == scope, TALLY.c.code_id == code_id).with_for_update()
        )


def _add_buckets(connection: Connection, buckets: dict[datetime, list[int]]) -> None:
    insert = _insert(connection)(BUCKETS)
    statement = insert.on_conflict_do_update(
        index_elements=[BUCKETS.c.starts_at],
        set_={"people": BUCKETS.c.people + insert.excluded.people, "bots": BUCKETS.c.bots + insert.excluded.bots},
    )
    rows = [{"starts_at": at, "people": people, "bots": bots} for at, (people, bots) in sorted(buckets.items())]
    connection.execute(statement, rows)
