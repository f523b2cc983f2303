"""The scan figures kept as scans are written: only rows really inserted count, the lot's and the unit's
apart, each network's first scan (the earliest, whenever it is written) with its place, at most 256 per
code, places added later on a first scan, quarter hours that make local months; and always equal to a
recount from the scans, also when 24 writers in four processes flush one unit's scans at once."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from tests.trace.test_scans import coded
from trace.platform.db import make_engine, session_scope
from trace.platform.timeutil import local_zone, utcnow
from trace.platform.timeutil import quarter_hour as bucket_of
from trace.reports import dashboard
from trace.reports.models import Indicator
from trace.reports.periods import make_period
from trace.scans import check
from trace.scans.models import Scan, ScanBucket, ScanSighting, ScanTally
from trace.scans.record import ScanIn, new_scan, set_place, stats, tally, write
from trace.scans.tallies import SOURCES_KEPT

T0 = datetime(2026, 11, 20, 8, 30, 15, 123456, tzinfo=UTC)
MOBILE = "Mozilla/5.0 (Linux; Android 14) Mobile"


def scan(
    lot_id: int,
    unit_id: int | None,
    network: int,
    *,
    minutes: float = 0,
    place: tuple[float, float] | None = None,
    agent: str = MOBILE,
    at: datetime = T0,
) -> ScanIn:
    """A scan from network number ``network`` (one /24 each)."""
    return new_scan(
        lot_id=lot_id,
        unit_id=unit_id,
        client_ip=f"10.{network // 256}.{network % 256}.7",
        user_agent=agent,
        lang="vi",
        kind="page",
        place=place,
        at=at + timedelta(minutes=minutes),
    )


def recounted(session: Session) -> dict[str, int]:
    """Every check of the figures against the scans (raises check.Differs at the first difference)."""
    connection = session.connection()
    return {name: run(connection, lambda _: None) for name, run in check.CHECKS.items()}


def tally_row(session: Session, scope: str, code_id: int) -> ScanTally | None:
    return session.get(ScanTally, (scope, code_id))


def sightings(session: Session, scope: str, code_id: int) -> dict[str, tuple[datetime, str | None]]:
    rows = session.execute(
        select(col(ScanSighting.network), col(ScanSighting.first_at), col(ScanSighting.place)).where(
            col(ScanSighting.scope) == scope, col(ScanSighting.code_id) == code_id
        )
    ).all()
    return {network: (at, place) for network, at, place in rows}


def test_a_batch_written_again_adds_nothing_to_any_figure(session: Session) -> None:
    lot_id, (unit_id, _) = coded(session)
    batch = [scan(lot_id, unit_id, i, minutes=i) for i in range(5)] + [scan(lot_id, unit_id, 0, agent="curl/8")]
    assert write(session=session, scans=batch) == 6
    before = (tally_row(session, "unit", unit_id), tally_row(session, "lot", lot_id))
    frozen = [row.model_dump() for row in before if row is not None]
    buckets = session.execute(select(func.sum(ScanBucket.people), func.sum(ScanBucket.bots))).one()
    # when the same batch is written again, overlapping a new scan and repeating one inside itself
    again = [*batch, batch[0], scan(lot_id, None, 9, minutes=30)]
    assert write(session=session, scans=again) == 1
    session.expire_all()
    unit_after = tally_row(session, "unit", unit_id)
    lot_after = tally_row(session, "lot", lot_id)
    # then the unit's figures are unchanged, the lot's count grew by the one new scan, and so did the quarters
    assert unit_after is not None and lot_after is not None
    assert unit_after.model_dump() == frozen[0]
    assert (lot_after.scans, lot_after.networks) == (frozen[1]["scans"] + 1, frozen[1]["networks"] + 1)
    people, bots = session.execute(select(func.sum(ScanBucket.people), func.sum(ScanBucket.bots))).one()
    assert (people, bots) == (buckets[0] + 1, buckets[1]) == (6, 1)
    assert recounted(session)["scan_tally"] >= 2


def test_a_lot_counts_every_scan_of_its_codes_and_a_unit_only_its_own(session: Session) -> None:
    lot_id, (mine, other) = coded(session)
    write(
        session=session,
        scans=[
            scan(lot_id, mine, 1, minutes=0, place=(20.64, 106.05)),
            scan(lot_id, other, 1, minutes=-10, place=(21.0, 105.8)),  # the lot's first scan from network 1
            scan(lot_id, None, 2, minutes=99),
        ],
    )
    mine_row, other_row, lot_row = (
        tally_row(session, *key) for key in (("unit", mine), ("unit", other), ("lot", lot_id))
    )
    assert mine_row is not None and other_row is not None and lot_row is not None
    assert (mine_row.scans, mine_row.networks, mine_row.places) == (1, 1, 1)
    assert (lot_row.scans, lot_row.networks, lot_row.places) == (3, 2, 1)
    assert (lot_row.first_at, lot_row.last_at) == (T0 - timedelta(minutes=10), T0 + timedelta(minutes=99))
    # the lot's first sighting of network 1 is the other unit's scan, with its place
    assert sightings(session, "lot", lot_id)[scan(lot_id, None, 1).network] == (
        T0 - timedelta(minutes=10),
        "21.0,105.8",
    )
    recounted(session)


def test_an_earlier_scan_written_later_becomes_its_networks_first_sighting(session: Session) -> None:
    # given a network's scan written, then an earlier one from it that another buffer held longer
    lot_id, (unit_id, _) = coded(session)
    write(session=session, scans=[scan(lot_id, unit_id, 1, minutes=10), scan(lot_id, unit_id, 2, minutes=20)])
    assert stats(session=session, unit_id=unit_id).places == 0
    write(session=session, scans=[scan(lot_id, unit_id, 1, minutes=-5, place=(20.64, 106.07))])
    # then the earlier one is the first sighting, and its place counts; a later one's would not
    network = scan(lot_id, None, 1).network
    assert sightings(session, "unit", unit_id)[network] == (T0 - timedelta(minutes=5), "20.6,106.1")
    write(session=session, scans=[scan(lot_id, unit_id, 2, minutes=30, place=(21.0, 105.8))])
    found = stats(session=session, unit_id=unit_id)
    assert (found.count, found.networks, found.places, found.first_at) == (4, 2, 1, T0 - timedelta(minutes=5))
    recounted(session)


def test_past_256_networks_the_figures_stay_at_256_and_keep_the_earliest(session: Session) -> None:
    # given a copied code scanned from 300 networks, written in two batches
    lot_id, (unit_id, _) = coded(session)
    scans = [scan(lot_id, unit_id, i, minutes=i, place=(10 + i / 10, 106.0)) for i in range(300)]
    write(session=session, scans=scans[250:])  # the later networks first: 50 of them
    write(session=session, scans=scans[:250])  # then 250 earlier ones: only 206 fit
    # then 256 first sightings are kept, and the figures say 256 (it is flagged either way)
    kept = sightings(session, "unit", unit_id)
    assert len(kept) == SOURCES_KEPT
    assert {s.network for s in scans[250:]} <= set(kept)  # written first, kept
    assert {s.network for s in scans[:206]} <= set(kept)  # of the second batch, the earliest
    found, networks, places = tally(session=session, unit_id=unit_id)
    assert (found.count, found.networks, found.places) == (300, SOURCES_KEPT, SOURCES_KEPT) and found.suspicious
    assert len(networks) == len(places) == SOURCES_KEPT
    # and a pending scan from yet another network does not take the figures past the bound
    more = stats(session=session, unit_id=unit_id, pending=[scan(lot_id, unit_id, 400, place=(1.0, 1.0))])
    assert (more.count, more.networks, more.places) == (301, SOURCES_KEPT, SOURCES_KEPT)
    assert recounted(session)["scan_sighting"] >= 2 * SOURCES_KEPT


def test_a_place_added_later_counts_only_on_a_kept_first_sighting(session: Session) -> None:
    lot_id, (unit_id, _) = coded(session)
    now = utcnow() - timedelta(minutes=30)
    first, again, other = (
        scan(lot_id, unit_id, 1, at=now),
        scan(lot_id, unit_id, 1, at=now, minutes=1),
        scan(lot_id, unit_id, 2, at=now, minutes=2),
    )
    write(session=session, scans=[first, again, other])
    # a place on a network's second scan counts for nothing; on its first, for the unit and the lot
    assert set_place(session=session, uid=again.uid, place="20.6,106.1")
    assert (tally_row(session, "unit", unit_id).places, tally_row(session, "lot", lot_id).places) == (0, 0)  # type: ignore[union-attr]
    assert set_place(session=session, uid=first.uid, place="20.6,106.1")
    assert set_place(session=session, uid=other.uid, place="20.6,106.1")  # the same cell: one place
    session.expire_all()
    assert (tally_row(session, "unit", unit_id).places, tally_row(session, "lot", lot_id).places) == (1, 1)  # type: ignore[union-attr]
    assert stats(session=session, unit_id=unit_id).places == 1
    # an unknown uid, a second place, and a scan older than the window are refused
    assert not set_place(session=session, uid="0" * 32, place="21.0,105.8")
    assert not set_place(session=session, uid=first.uid, place="21.0,105.8")
    old = scan(lot_id, unit_id, 3, at=utcnow() - timedelta(hours=2))
    write(session=session, scans=[old])
    assert not set_place(session=session, uid=old.uid, place="21.0,105.8")
    recounted(session)


def test_quarter_hours_make_the_dashboards_local_months_and_years(session: Session) -> None:
    # given scans by people a minute either side of local midnight on the 1st, and a bot's
    lot_id, (unit_id, _) = coded(session)
    midnight = datetime(2026, 11, 1, tzinfo=local_zone()).astimezone(UTC)
    write(
        session=session,
        scans=[
            scan(lot_id, unit_id, 1, at=midnight, minutes=-1),
            scan(lot_id, unit_id, 2, at=midnight),
            scan(lot_id, unit_id, 3, at=midnight, minutes=14.99),
            scan(lot_id, unit_id, 4, at=midnight, minutes=5, agent="Googlebot/2.1"),
        ],
    )
    assert bucket_of(midnight - timedelta(minutes=1)) == midnight - timedelta(minutes=15)

    def by_people(start: datetime, end: datetime) -> int:
        return int(
            session.execute(
                select(func.count())
                .select_from(Scan)
                .where(col(Scan.agent) != "bot", col(Scan.scanned_at) >= start, col(Scan.scanned_at) < end)
            ).scalar_one()
        )

    # then the local day before and the 1st each count their own, as the scans say
    for day, at_least in ((date(2026, 10, 31), 1), (date(2026, 11, 1), 2)):
        period = make_period(day, day)
        months = dashboard.monthly(session=session, period=period)
        expected = by_people(period.start_utc, period.end_utc)
        assert sum(m.scans for m in months) == expected >= at_least
    # and so does the year
    year = by_people(datetime(2026, 1, 1, tzinfo=local_zone()), datetime(2027, 1, 1, tzinfo=local_zone()))
    assert dashboard.actual(session=session, indicator=Indicator.SCANS, year=2026) == year >= 3
    recounted(session)


# --- many writers at once, on PostgreSQL --------------------------------------------------------------------

PROCESSES, THREADS = 4, 6  # 24 flushes at once, each on its own connection


def _flush_at_once(url: str, batches: list[list[tuple[Any, ...]]], start: Any) -> list[int]:
    engine = make_engine(url, pool_size=len(batches))
    ready = threading.Barrier(len(batches))
    written: list[int] = []

    def flush(batch: list[tuple[Any, ...]]) -> None:
        scans = [ScanIn(*values) for values in batch]
        with session_scope(engine) as session:
            session.connection()  # the connection is taken before the start, so every flush starts at once
            ready.wait()
            written.append(write(session=session, scans=scans))

    start.wait()
    threads = [threading.Thread(target=flush, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    return written


def test_twenty_four_flushes_of_one_units_scans_in_four_processes_equal_a_recount(postgres_engine: Engine) -> None:
    # given a unit, and 24 batches of its scans from 300 networks (past the bound), many of them a
    # network's first, some earlier than scans of theirs in other batches, each sixth batch a copy of
    # another (a retried flush)
    url = postgres_engine.url.render_as_string(hide_password=False)
    with Session(postgres_engine) as session:
        lot_id, (unit_id, other) = coded(session)
        session.commit()
    batches: list[list[tuple[Any, ...]]] = []
    for b in range(PROCESSES * THREADS):
        if b % 6 == 5:
            batches.append(list(reversed(batches[b - 1])))
            continue
        batches.append(
            [
                tuple(
                    getattr(
                        scan(
                            lot_id,
                            unit_id if (b + i) % 7 else other,
                            (b * 37 + i * 11) % 300,
                            minutes=(b * 13 + i * 7) % 500 - 250,
                            place=(20 + (b + i) % 9 / 10, 106.0) if i % 3 == 0 else None,
                            agent="curl/8" if i % 10 == 0 else MOBILE,
                        ),
                        name,
                    )
                    for name in ScanIn.__slots__  # type: ignore[attr-defined]
                )
                for i in range(60)
            ]
        )
    # when four processes flush six batches each, all at once
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Event()
    with context.Pool(PROCESSES) as pool:
        results = [
            pool.apply_async(_flush_at_once, (url, batches[p * THREADS : (p + 1) * THREADS], start))
            for p in range(PROCESSES)
        ]
        start.set()
        written = [n for r in results for n in r.get(timeout=300)]
    # then every scan was inserted once, and every figure equals a recount from the scans
    distinct = {values[0] for batch in batches for values in batch}
    assert len(written) == PROCESSES * THREADS and sum(written) == len(distinct)
    with Session(postgres_engine) as session:
        counted = recounted(session)
        row = tally_row(session, "unit", unit_id)
        lot_row = tally_row(session, "lot", lot_id)
        scans_of_unit = session.execute(
            select(func.count()).select_from(Scan).where(col(Scan.unit_id) == unit_id)
        ).scalar_one()
        networks = session.execute(
            select(func.count(func.distinct(Scan.network))).where(col(Scan.unit_id) == unit_id)
        ).scalar_one()
    assert row is not None and lot_row is not None
    assert row.scans == scans_of_unit and lot_row.scans == len(distinct)
    assert row.networks == min(networks, SOURCES_KEPT) and lot_row.networks == SOURCES_KEPT < 300
    assert counted["scan_tally"] == 3 and counted["scan_bucket"] > 0


@pytest.mark.parametrize("uid", ["0" * 32, "f" * 32])
def test_a_scan_of_an_unknown_lot_fails_the_whole_write_wherever_it_comes(session: Session, uid: str) -> None:
    # The buffer catches IntegrityError to drop such scans and write the others: it must be raised as one
    # (on SQLite a row after the first fails while RETURNING rows are fetched), and leave no figure behind.
    lot_id, (unit_id, _) = coded(session)
    good = [scan(lot_id, unit_id, i) for i in range(5)]
    bad = dataclasses.replace(scan(lot_id + 1000, None, 9), uid=uid)
    savepoint = session.begin_nested()
    with pytest.raises(IntegrityError):
        write(session=session, scans=[*good, bad])
    savepoint.rollback()
    assert tally_row(session, "unit", unit_id) is None
    assert write(session=session, scans=good) == 5
