"""The dashboard's lots and codes kept per quarter hour (``lot_bucket``, ``code_bucket``) as the domain writes
them: on a randomised history (harvests and transformations across local month and year ends, codes
registered at chosen instants, voids, cancelled runs, reprints, corrections of harvests, commissions and
decommissions, claims inherited) every figure equals a recount made here in Python from the rows; verify-log
names an edit to a bucket or to a counted row; on PostgreSQL, 24 harvests in one quarter hour from four
processes leave the count a recount makes."""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from tests import factories as f
from trace.access import Actor, Role
from trace.designations.models import LotClaim
from trace.events import derived
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.schemas import CorrectionIn, HarvestIn, TransformIn, TransformInput, TransformOutput
from trace.lots import Lot, LotStatus
from trace.platform.db import make_engine, session_scope
from trace.platform.timeutil import local_zone, today
from trace.printing import runs
from trace.printing.models import PrintKind, PrintRun, PrintStatus
from trace.reports import dashboard
from trace.reports.models import Indicator
from trace.reports.periods import Period, make_period
from trace.reports.tallies import LotBucket
from trace.units import Unit, UnitLevel, UnitStatus

ZONE = local_zone()
ADMIN = Actor(role=Role.ADMIN, organisation_id=None, user_id=None, name="test admin")


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _local(moment: datetime) -> datetime:
    return _utc(moment).astimezone(ZONE)


def _instants(rng: random.Random, n: int) -> list[datetime]:
    """Local instants over the last ~13 months, a third of them a minute either side of a local month's
    (or the year's) start, where UTC still says the day before."""
    out = []
    first = today().replace(day=1)
    starts = []
    day = first
    for _ in range(12):
        day = (day - timedelta(days=1)).replace(day=1)
        starts.append(datetime(day.year, day.month, day.day, tzinfo=ZONE))
    starts.append(datetime(today().year, 1, 1, tzinfo=ZONE))
    now = datetime.now(ZONE) - timedelta(hours=1)
    for k in range(n):
        if k % 3 == 0:
            moment = rng.choice(starts) + timedelta(seconds=rng.choice([-61, -1, 0, 59, 899, 900]))
        else:
            moment = now - timedelta(seconds=rng.randint(3600, 395 * 86400))
        out.append(min(moment, now))
    return out


def _harvest(session: Session, gi: f.GiGrower, at: datetime, claim: bool, n: int) -> int:
    data = HarvestIn(
        product_id=gi.fresh.id,
        lot_code=f"R{n:05d}",
        quantity=Decimal(100),  # type: ignore[arg-type]
        location_id=gi.area.id,
        event_time=at,
        designation_ids=[gi.gi.id] if claim else [],
    )
    return capture(session=session, actor=f.member(gi.grower), items=[(EventType.HARVEST, data)]).lot_ids[0]


def _transform(session: Session, gi: f.GiGrower, lot_id: int, at: datetime, n: int) -> int:
    data = TransformIn(
        inputs=[TransformInput(lot_id=lot_id, quantity=Decimal(10))],  # type: ignore[arg-type]
        outputs=[TransformOutput(product_id=gi.fresh.id, lot_code=f"P{n:05d}", quantity=Decimal(10))],  # type: ignore[arg-type]
        event_time=max(at, _lot_time(session, lot_id) + timedelta(minutes=1)),
    )
    return capture(session=session, actor=f.member(gi.grower), items=[(EventType.TRANSFORM, data)]).lot_ids[0]


def _lot_time(session: Session, lot_id: int) -> datetime:
    lot = session.get(Lot, lot_id)
    assert lot is not None
    return _utc(lot.created_at)


def _correct(session: Session, gi: f.GiGrower, event_id: str) -> None:
    capture(
        session=session,
        actor=f.member(gi.grower),
        items=[(EventType.CORRECTION, CorrectionIn(event_id=event_id, reason="did_not_occur"))],
    )


def _history(session: Session, monkeypatch: pytest.MonkeyPatch, seed: int) -> f.GiGrower:
    rng = random.Random(seed)
    gi = f.gi_grower(session)
    gi.right.valid_from = today() - timedelta(days=800)  # the history reaches back 13 months
    session.flush()
    member = f.member(gi.grower)
    lots: list[int] = []
    for n, at in enumerate(_instants(rng, 24)):
        lots.append(_harvest(session, gi, at, rng.random() < 0.6, n))
    for n, at in enumerate(_instants(rng, 6)):
        lots.append(_transform(session, gi, rng.choice(lots[:24]), at, n))  # claims inherited (or not)
    # codes registered at chosen instants (the registration's clock), on random lots
    unit_runs: list[PrintRun] = []
    for at in _instants(rng, 14):
        monkeypatch.setattr("trace.units.utcnow", lambda at=at: at.astimezone(UTC))
        lot = rng.choice(lots)
        kind = PrintKind.UNIT if rng.random() < 0.8 else PrintKind.LOT
        unit_runs.append(
            runs.create_run(
                session=session,
                actor=member,
                lot_id=lot,
                data=runs.PrintRunCreate(quantity=rng.randint(1, 9), kind=kind),
            )
        )
    monkeypatch.undo()
    mine = [r for r in unit_runs if r.kind == PrintKind.UNIT]
    # some codes voided, a run cancelled (its codes voided), reprints of others
    for run in mine[:4]:
        codes = list(session.exec(select(Unit.code).where(Unit.print_run_id == run.id).order_by(col(Unit.id))))
        runs.void_codes(
            session=session,
            actor=member,
            run_id=run.id,
            data=runs.VoidIn(codes=codes[: 1 + len(codes) // 2], reason="torn"),
        )  # type: ignore[arg-type]
    runs.cancel(session=session, actor=member, run_id=mine[4].id)  # type: ignore[arg-type]
    for run in [*mine[5:7], *[r for r in unit_runs if r.kind == PrintKind.LOT][:1]]:
        runs.reprint(session=session, actor=member, run_id=run.id, data=runs.ReprintIn())  # type: ignore[arg-type]
    # corrections: a harvest (its lot cancelled), a commission (its codes void), a decommission (valid again)
    untouched = [lot for lot in lots[:24] if not session.exec(select(Unit.id).where(Unit.lot_id == lot)).first()]
    for lot in untouched[:2]:
        made = session.get(Lot, lot)
        _correct(session, gi, made.created_event_id)  # type: ignore[union-attr]
    commission = session.exec(select(Unit.created_event_id).where(Unit.print_run_id == mine[7].id)).first()
    _correct(session, gi, commission)  # type: ignore[arg-type]
    decommission = session.exec(
        select(Event.id).where(Event.type == EventType.DECOMMISSION).order_by(col(Event.record_time))
    ).first()
    _correct(session, gi, decommission)  # type: ignore[arg-type]
    session.flush()
    return gi


# --- the recount: rows read back, sorted into local months and years here ----------------------------------


def _months(period: Period, moments: list[datetime]) -> Counter[tuple[int, int]]:
    out: Counter[tuple[int, int]] = Counter()
    for m in moments:
        here = _local(m)
        if period.start <= here.date() <= period.end:
            out[(here.year, here.month)] += 1
    return out


def _recount(session: Session, period: Period, designation_ids: set[int] | None) -> dict[str, Counter[Any]]:
    claims: dict[int, set[int]] = {}
    for claim in session.exec(select(LotClaim)).all():
        claims.setdefault(claim.lot_id, set()).add(claim.designation_id)

    def kept(lot_id: int) -> bool:
        return designation_ids is None or bool(claims.get(lot_id, set()) & designation_ids)

    lots = session.exec(select(Lot, Event).join(Event, col(Event.id) == col(Lot.created_event_id))).all()
    live = [(lot, e) for lot, e in lots if lot.status != LotStatus.CANCELLED and kept(lot.id)]  # type: ignore[arg-type]
    codes = [
        u
        for u in session.exec(select(Unit)).all()
        if u.level == UnitLevel.UNIT and u.status == UnitStatus.ACTIVE and kept(u.lot_id)
    ]
    labels: Counter[tuple[int, int]] = Counter()
    for run in session.exec(select(PrintRun)).all():
        if run.kind == PrintKind.LOT and run.reprint_of_id is None and run.status != PrintStatus.CANCELLED:
            if kept(run.lot_id):
                for key in _months(period, [run.created_at]):
                    labels[key] += run.quantity
    return {
        "lots_harvested": _months(period, [lot.created_at for lot, e in live if e.type == EventType.HARVEST]),
        "lots_produced": _months(period, [lot.created_at for lot, e in live if e.type == EventType.TRANSFORM]),
        "unit_codes": _months(period, [u.created_at for u in codes]),
        "lot_labels": labels,
    }


def _labels_per_year(session: Session, years: list[int]) -> Counter[tuple[int | None, int]]:
    """(designation or None for all, year) -> active package codes + lot labels of first, live runs."""
    claims: dict[int, set[int]] = {}
    for claim in session.exec(select(LotClaim)).all():
        claims.setdefault(claim.lot_id, set()).add(claim.designation_id)
    out: Counter[tuple[int | None, int]] = Counter()

    def add(lot_id: int, at: datetime, n: int) -> None:
        year = _local(at).year
        if year in years:
            out[(None, year)] += n
            for d in claims.get(lot_id, set()):
                out[(d, year)] += n

    for u in session.exec(select(Unit)).all():
        if u.level == UnitLevel.UNIT and u.status == UnitStatus.ACTIVE:
            add(u.lot_id, u.created_at, 1)
    for run in session.exec(select(PrintRun)).all():
        if run.kind == PrintKind.LOT and run.reprint_of_id is None and run.status != PrintStatus.CANCELLED:
            add(run.lot_id, run.created_at, run.quantity)
    return out


def _series(months: list[dashboard.MonthFigures], name: str) -> Counter[tuple[int, int]]:
    return Counter({(m.year, m.month): getattr(m, name) for m in months if getattr(m, name)})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_figures_equal_a_recount_of_a_randomised_history(
    session: Session, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    gi = _history(session, monkeypatch, seed)
    period = make_period(date(today().year - 1, 11, 1), today())
    names = ("lots_harvested", "lots_produced", "unit_codes", "lot_labels")

    province = dashboard.province_dashboard(session=session, actor=ADMIN, period=period)
    holder = dashboard.holder_dashboard(session=session, actor=f.member(gi.holder), period=period)

    for found, designations in ((province, None), (holder, {gi.gi.id})):
        want = _recount(session, period, designations)
        for name in names:
            assert _series(found.months, name) == want[name], (found.scope, name)
    per_year = _labels_per_year(session, period.years)
    for row in province.designations:
        assert row.labels == per_year[(row.designation_id, row.year)], row
    for year in period.years:
        assert dashboard.actual(session=session, indicator=Indicator.LABELS, year=year) == per_year[(None, year)]
        assert (
            next(p.actual for p in province.growth if p.indicator == Indicator.LABELS and p.year == year)
            == per_year[(None, year)]
        )
    # the history is not trivial: both kinds of lot, a cancelled lot, voided and revived codes, both years
    assert province.total("lots_harvested") and province.total("lots_produced") and holder.total("unit_codes")
    assert session.exec(select(func.count()).select_from(Lot).where(Lot.status == LotStatus.CANCELLED)).one() >= 1
    assert session.exec(select(func.count()).select_from(Unit).where(Unit.status == UnitStatus.VOID)).one() >= 1
    assert all(per_year[(None, y)] for y in period.years)
    # and verify-log finds every bucket as the rows make it
    report = derived.verify(session=session)
    assert report.ok, report.difference
    assert report.checked["lot_bucket"] >= 20 and report.checked["code_bucket"] >= 8


# --- an insider's edit is named --------------------------------------------------------------------------


@pytest.fixture
def history(session: Session, monkeypatch: pytest.MonkeyPatch) -> f.GiGrower:
    gi = _history(session, monkeypatch, 7)
    assert derived.verify(session=session).ok
    return gi


def _named(session: Session) -> derived.Difference:
    report = derived.verify(session=session)
    assert not report.ok and report.difference is not None
    return report.difference


def test_a_bucket_edited_in_the_database_is_named(session: Session, history: f.GiGrower) -> None:
    c = session.connection()
    at, kind, lots = c.execute(
        text("SELECT starts_at, kind, lots FROM lot_bucket ORDER BY starts_at LIMIT 1 OFFSET 3")
    ).one()
    c.execute(text("UPDATE lot_bucket SET lots = lots + 1 WHERE starts_at = :at AND kind = :k"), {"at": at, "k": kind})
    found = _named(session)
    assert found.table == "lot_bucket" and found.row["kind"] == kind
    assert found.problem == f"lots: the rows make {lots}; the table holds {lots + 1}"


def test_a_lot_bucket_added_for_nothing_is_named(session: Session, history: f.GiGrower) -> None:
    session.add(LotBucket(starts_at=datetime(2001, 1, 1, tzinfo=UTC), kind="harvest", lots=3))
    session.flush()
    found = _named(session)
    assert found.table == "lot_bucket" and found.row["starts_at"].startswith("2001-01-01")
    assert found.problem == "lots: the rows make 0; the table holds 3"


def test_a_code_bucket_deleted_is_named(session: Session, history: f.GiGrower) -> None:
    c = session.connection()
    lot_id = c.execute(text("SELECT lot_id FROM code_bucket WHERE codes > 0 ORDER BY lot_id LIMIT 1")).scalar_one()
    c.execute(text("DELETE FROM code_bucket WHERE lot_id = :id"), {"id": lot_id})
    found = _named(session)
    assert found.table == "code_bucket" and found.row["lot_id"] == lot_id and "no row" in found.problem


def test_a_code_moved_in_time_is_named(session: Session, history: f.GiGrower) -> None:
    # a counted row edited behind the figures' back: a code's registration put into another month
    c = session.connection()
    unit = session.exec(select(Unit).where(Unit.status == UnitStatus.ACTIVE, Unit.level == UnitLevel.UNIT)).first()
    assert unit is not None
    c.execute(
        text("UPDATE unit SET created_at = :at WHERE id = :id"),
        {"at": _utc(unit.created_at) - timedelta(days=40), "id": unit.id},
    )
    found = _named(session)
    assert found.table == "code_bucket" and found.row["lot_id"] == unit.lot_id


def test_a_code_made_a_carton_is_named(session: Session, history: f.GiGrower) -> None:
    c = session.connection()
    unit = session.exec(select(Unit).where(Unit.status == UnitStatus.ACTIVE, Unit.level == UnitLevel.UNIT)).first()
    assert unit is not None
    c.execute(text("UPDATE unit SET level = 'carton' WHERE id = :id"), {"id": unit.id})
    found = _named(session)
    assert (found.table, found.row["lot_id"]) in {("unit", unit.lot_id), ("code_bucket", unit.lot_id)}


# --- many writers in one quarter hour, on PostgreSQL ------------------------------------------------------

PROCESSES, THREADS = 4, 6  # 24 capture calls at once, each on its own connection, from 24 organisations


def _harvest_at_once(url: str, jobs: list[tuple[int, int, int, str]], at: datetime, start: Any) -> int:
    engine = make_engine(url, pool_size=len(jobs))
    ready = threading.Barrier(len(jobs))
    done: list[int] = []

    def harvest(org: int, product: int, area: int, code: str) -> None:
        data = HarvestIn(
            product_id=product,
            lot_code=code,
            quantity=Decimal(5),  # type: ignore[arg-type]
            location_id=area,
            event_time=at,
        )
        with session_scope(engine) as session:
            session.connection()  # taken before the start, so every capture starts at once
            ready.wait()
            result = capture(
                session=session, actor=Actor(role=Role.MEMBER, organisation_id=org), items=[(EventType.HARVEST, data)]
            )
            done.append(len(result.lot_ids))

    start.wait()
    threads = [threading.Thread(target=harvest, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    return sum(done)


def test_twenty_four_harvests_in_one_quarter_hour_from_four_processes_equal_a_recount(postgres_engine: Engine) -> None:
    # given 24 cooperatives, each with a product and a growing area
    url = postgres_engine.url.render_as_string(hide_password=False)
    jobs = []
    with Session(postgres_engine) as session:
        for k in range(PROCESSES * THREADS):
            org = f.org(session)
            jobs.append((org.id, f.product(session, org).id, f.location(session, org).id, f"Q{k:03d}"))
        session.commit()
    at = (datetime.now(ZONE) - timedelta(days=2)).replace(minute=7, second=0, microsecond=0)
    # when all of them harvest in the same quarter hour at once, from four processes
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Event()
    with context.Pool(PROCESSES) as pool:
        results = [
            pool.apply_async(_harvest_at_once, (url, jobs[p * THREADS : (p + 1) * THREADS], at, start))
            for p in range(PROCESSES)
        ]
        start.set()
        made = sum(r.get(timeout=300) for r in results)
    # then the quarter hour counts every lot, as the lots recounted say, and verify-log agrees
    assert made == PROCESSES * THREADS
    with Session(postgres_engine) as session:
        bucket = session.exec(select(LotBucket).where(LotBucket.kind == "harvest")).all()
        lots = session.exec(select(func.count()).select_from(Lot)).one()
        assert [(b.starts_at, b.lots) for b in bucket] == [(at.replace(minute=0).astimezone(UTC), lots)]
        assert lots == PROCESSES * THREADS
        report = derived.verify(session=session)
        assert report.ok, report.difference


def test_a_lot_made_by_a_recorder_called_outside_a_capture_call_is_counted_too(session: Session) -> None:
    # given a recorder called on its own (every caller today goes through ledger.capture, which counts
    # the call's lots at once; effects.new_lot counts a lot made outside one)
    from trace.events import capture as recorders
    from trace.reports import tally_check

    o = f.org(session)
    prod, loc = f.product(session, o), f.location(session, o)
    data = HarvestIn(
        product_id=prod.id,
        lot_code="SOLO01",
        quantity=Decimal(5),  # type: ignore[arg-type]
        location_id=loc.id,
        event_time=f.when(1),
    )

    def harvested() -> int:
        return sum(b.lots for b in session.exec(select(LotBucket).where(LotBucket.kind == "harvest")).all())

    before = harvested()
    recorders.record_harvest(session=session, actor=f.member(o), data=data)
    session.flush()
    # then its quarter hour counts it, and the buckets are what the recount makes
    assert harvested() == before + 1
    assert tally_check.lots(session.connection(), lambda _done: None) > 0
