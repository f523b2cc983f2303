"""The scan figures recomputed from the scans alone and compared row by row with what the tables hold.

Run by verify-log after the tables derived from the events (:mod:`trace.events.derived`): an insider who
edits a code's count, its first sightings or the dashboard's quarter hours straight in the database is
named, row and all. Each check reads sorted streams and merges them (bounded memory at any size).

Which 256 networks a code with more keeps depends on the order its scans were written in, so for such
a code the check asks that exactly 256 are kept and that each one is its network's true first scan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, case, func, literal, select, union_all

from trace.platform.recount import Differs, Progress, byte_order, merged, quarter_sql, stream
from trace.scans.models import Scan
from trace.scans.tallies import BUCKETS, SIGHTING, SOURCES_KEPT, TALLY

SCANS = Scan.__table__  # type: ignore[attr-defined]


def _per_code(connection: Connection, *columns: Any) -> Any:
    """``columns`` aggregated over each lot's and each unit's scans, as (scope, code_id, ...) sorted."""
    parts = [
        select(literal(scope).label("scope"), code.label("code_id"), *columns).where(code.is_not(None)).group_by(code)
        for scope, code in (("lot", SCANS.c.lot_id), ("unit", SCANS.c.unit_id))
    ]
    both = union_all(*parts).subquery()
    return select(both).order_by(byte_order(connection, both.c.scope), both.c.code_id)


def tallies(connection: Connection, progress: Progress) -> int:
    """Each code's scans, first and last, and networks and places (from its first sightings)."""
    made = _per_code(
        connection,
        func.count().label("scans"),
        func.min(SCANS.c.scanned_at).label("first_at"),
        func.max(SCANS.c.scanned_at).label("last_at"),
        func.count(func.distinct(SCANS.c.network)).label("networks"),
    )
    sightings = (
        select(
            SIGHTING.c.scope,
            SIGHTING.c.code_id,
            func.count().label("kept"),
            func.count(func.distinct(SIGHTING.c.place)).label("shared"),
        )
        .group_by(SIGHTING.c.scope, SIGHTING.c.code_id)
        .subquery()
    )
    held = (
        select(
            TALLY,
            func.coalesce(sightings.c.kept, 0).label("kept"),
            func.coalesce(sightings.c.shared, 0).label("shared"),
        )
        .outerjoin(sightings, (sightings.c.scope == TALLY.c.scope) & (sightings.c.code_id == TALLY.c.code_id))
        .order_by(byte_order(connection, TALLY.c.scope), TALLY.c.code_id)
    )
    count = 0
    for want, have in merged(stream(connection, made), stream(connection, held), lambda r: (r.scope, r.code_id)):
        row = {"scope": (want or have).scope, "code_id": (want or have).code_id}
        if have is None:
            raise Differs("scan_tally", row, f"{want.scans} scan(s) of this code are written; there is no tally")
        if want is None:
            raise Differs("scan_tally", row, f"scans: no scan of this code is written; the tally holds {have.scans}")
        for name in ("scans", "first_at", "last_at"):
            if getattr(have, name) != getattr(want, name):
                problem = f"the scans make {getattr(want, name)}; the tally holds {getattr(have, name)}"
                raise Differs("scan_tally", row, f"{name}: {problem}")
        networks = min(int(want.networks), SOURCES_KEPT)
        if have.networks != networks:
            raise Differs("scan_tally", row, f"networks: the scans make {networks}; the tally holds {have.networks}")
        if have.kept != networks:  # past the bound, as many as the bound (each checked by ``sightings``)
            raise Differs("scan_sighting", row, f"{networks} network(s) to keep; {have.kept} kept")
        if have.places != have.shared:
            raise Differs(
                "scan_tally", row, f"places: the first sightings make {have.shared}; the tally holds {have.places}"
            )
        count += 1
        progress(count)
    return count


def sightings(connection: Connection, progress: Progress) -> int:
    """Each kept sighting is its network's first scan of the code (time, then id), with that scan's place;
    none is missing under the bound."""
    wide = _per_code(connection, func.count(func.distinct(SCANS.c.network)).label("networks"))
    crowded = {(r.scope, int(r.code_id)) for r in stream(connection, wide) if r.networks > SOURCES_KEPT}
    firsts = []
    for scope, code in (("lot", SCANS.c.lot_id), ("unit", SCANS.c.unit_id)):
        order = func.row_number().over(partition_by=(code, SCANS.c.network), order_by=(SCANS.c.scanned_at, SCANS.c.id))
        ranked = (
            select(
                literal(scope).label("scope"),
                code.label("code_id"),
                SCANS.c.network,
                SCANS.c.scanned_at.label("first_at"),
                SCANS.c.id.label("scan_id"),
                SCANS.c.place,
                order.label("n"),
            )
            .where(code.is_not(None))
            .subquery()
        )
        firsts.append(select(ranked).where(ranked.c.n == 1))
    made = union_all(*firsts).subquery()
    made_sorted = select(made).order_by(
        byte_order(connection, made.c.scope), made.c.code_id, byte_order(connection, made.c.network)
    )
    held = select(SIGHTING).order_by(
        byte_order(connection, SIGHTING.c.scope), SIGHTING.c.code_id, byte_order(connection, SIGHTING.c.network)
    )
    count = 0
    for want, have in merged(
        stream(connection, made_sorted), stream(connection, held), lambda r: (r.scope, r.code_id, r.network)
    ):
        found = want or have
        row = {"scope": found.scope, "code_id": found.code_id, "network": found.network}
        if want is None:
            raise Differs("scan_sighting", row, "no scan of this code came from this network")
        if have is None:
            if (want.scope, int(want.code_id)) in crowded:
                continue  # past the bound: the tally check counts what is kept
            raise Differs("scan_sighting", row, f"scan {want.scan_id} is this network's first; none is kept")
        for name in ("first_at", "scan_id", "place"):
            if getattr(have, name) != getattr(want, name):
                raise Differs(
                    "scan_sighting",
                    row,
                    f"{name}: the first scan (id {want.scan_id}) makes {getattr(want, name)}; "
                    f"the table holds {getattr(have, name)}",
                )
        count += 1
        progress(count)
    return count


def buckets(connection: Connection, progress: Progress) -> int:
    """Each quarter hour's scans by people and by bots."""
    quarter = quarter_sql(connection, "scan.scanned_at").label("starts_at")
    rows = select(quarter, SCANS.c.agent).subquery()
    made = (
        select(
            rows.c.starts_at,
            func.sum(case((rows.c.agent != "bot", 1), else_=0)).label("people"),
            func.sum(case((rows.c.agent == "bot", 1), else_=0)).label("bots"),
        )
        .group_by(rows.c.starts_at)
        .order_by(rows.c.starts_at)
    )
    held = select(BUCKETS).order_by(BUCKETS.c.starts_at)
    count = 0
    for want, have in merged(stream(connection, made), stream(connection, held), lambda r: r.starts_at):
        row = {"starts_at": (want or have).starts_at.isoformat()}
        if have is None:
            raise Differs("scan_bucket", row, f"{want.people + want.bots} scan(s) fall in it; no row is kept")
        if want is None:
            raise Differs("scan_bucket", row, f"no scan falls in it; the row holds {have.people + have.bots}")
        for name in ("people", "bots"):
            if int(getattr(have, name)) != int(getattr(want, name)):
                raise Differs(
                    "scan_bucket",
                    row,
                    f"{name}: the scans make {getattr(want, name)}; the row holds {getattr(have, name)}",
                )
        count += 1
        progress(count)
    return count


# Sightings first: an edited or deleted one is named with its network, before a tally's count of them.
CHECKS: dict[str, Callable[[Connection, Progress], int]] = {
    "scan_sighting": sightings,
    "scan_tally": tallies,
    "scan_bucket": buckets,
}
