"""The province's dashboard: every figure checked against counts made independently here (rows read back
and sorted into local months in Python, not by the SQL under test), per month, per kind, per commune; a
holder sees its own designations' part only; targets are the administrator's, set once per form."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from tests import factories as f
from trace.access import Actor, Role
from trace.designations.models import LotClaim
from trace.errors import Forbidden, RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.schemas import CorrectionIn, HarvestIn, InspectIn
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation
from trace.platform.timeutil import local_zone, today
from trace.printing import runs
from trace.printing.models import PrintKind, PrintRun, PrintStatus
from trace.products import Product
from trace.recalls.models import ReasonIn, Recall
from trace.recalls.recall import recall
from trace.reports import dashboard, targets
from trace.reports.models import Indicator, PlanTarget
from trace.reports.periods import Period, make_period
from trace.scans.models import Scan
from trace.scans.record import new_scan, write
from trace.units import Unit, UnitLevel, UnitStatus

ZONE = local_zone()
ADMIN = Actor(role=Role.ADMIN, organisation_id=None, user_id=None, name="test admin")


def local(days_ago: int, hour: int = 10, minute: int = 0) -> datetime:
    """A local time ``days_ago`` days before today (province time)."""
    day = today() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


def first_of_month(months_ago: int) -> date:
    day = today().replace(day=1)
    for _ in range(months_ago):
        day = (day - timedelta(days=1)).replace(day=1)
    return day


def harvest_at(
    session: Session,
    org: Organisation,
    prod: Product,
    loc: int,
    moment: datetime,
    designations: list[int] | None = None,
) -> int:
    data = HarvestIn(
        product_id=prod.id,
        lot_code=f"D{moment:%m%d%H%M}{prod.id}",
        quantity=Decimal(100),  # type: ignore[arg-type]
        location_id=loc,
        event_time=moment,
        designation_ids=designations or [],
    )
    return capture(session=session, actor=f.member(org), items=[(EventType.HARVEST, data)]).lot_ids[0]


@dataclass
class World:
    period: Period
    gi: f.GiGrower
    other_holder: Organisation
    other_gi_id: int
    lots: list[int]
    gi_lots: list[int]


@pytest.fixture
def world(session: Session) -> World:
    """Organisations of several kinds and communes joined over two years, lots harvested across months (one
    at 00:30 local on the 1st, which UTC puts in the month before), labels, scans (bots too), inspections
    (one declared erroneous), a recall; a GI with a quota and another holder's designation."""
    period = make_period(first_of_month(9), today())
    gi = f.gi_grower(session)
    gi.right.annual_label_quota = 30
    other_holder = f.org(session, "designation_holder", name="Hội Gà Đông Tảo (thử nghiệm)")
    other_gi = f.designation(session, other_holder, name_vi="Gà Đông Tảo (thử)", categories=["chicken_live"])
    for kind, commune in (("farm", "11953"), ("processor", "12364"), ("retailer", "11953"), ("cooperative", None)):
        f.org(session, kind, commune_code=commune)
    # one organisation joined last year, one before the period, one deactivated
    orgs = list(session.exec(select(Organisation)).all())
    orgs[-1].created_at = datetime.now(UTC) - timedelta(days=500)
    orgs[-2].active = False
    session.flush()

    plain = f.product(session, gi.grower, name_vi="Nhãn lồng tươi (thường)")
    other_area = f.location(session, gi.grower)
    midnight = datetime.combine(first_of_month(2), datetime.min.time()).replace(hour=0, minute=30, tzinfo=ZONE)
    lots = [
        harvest_at(session, gi.grower, plain, other_area.id, moment)  # type: ignore[arg-type]
        for moment in (local(200), local(120), local(40), midnight, local(3))
    ]
    gi_lots = [
        harvest_at(session, gi.grower, gi.fresh, gi.area.id, moment, [gi.gi.id])  # type: ignore[arg-type]
        for moment in (local(150), local(20))
    ]
    # labels: 12 package codes on a GI lot, 6 on a plain one, 5 lot labels; moved into past months by hand
    member = f.member(gi.grower)
    unit_run = runs.create_run(session=session, actor=member, lot_id=gi_lots[0], data=runs.PrintRunCreate(quantity=12))
    plain_run = runs.create_run(session=session, actor=member, lot_id=lots[0], data=runs.PrintRunCreate(quantity=6))
    lot_run = runs.create_run(
        session=session, actor=member, lot_id=gi_lots[1], data=runs.PrintRunCreate(quantity=5, kind=PrintKind.LOT)
    )
    session.execute(update(Unit).where(col(Unit.print_run_id) == unit_run.id).values(created_at=local(60)))
    session.execute(
        update(Unit).where(col(Unit.print_run_id) == plain_run.id, col(Unit.id) % 2 == 0).values(created_at=local(100))
    )
    session.execute(update(PrintRun).where(col(PrintRun.id) == lot_run.id).values(created_at=local(15)))
    f.backdated(session)
    # scans by people and by bots, in several months
    scans = [
        new_scan(
            lot_id=lots[i % len(lots)],
            unit_id=None,
            client_ip=f"203.0.113.{i}",
            lang="vi",
            kind="page",
            user_agent="Googlebot/2.1" if i % 4 == 0 else "Mozilla/5.0 (Linux; Android 14) Mobile",
            at=local(10 * i + 1),
        )
        for i in range(14)
    ]
    write(session=session, scans=scans)
    # inspections, one declared erroneous; a recall
    inspections = [
        capture(
            session=session,
            actor=member,
            items=[(EventType.INSPECT, InspectIn(lot_id=lot, result="pass", event_time=moment))],
        ).event_ids[0]
        for lot, moment in ((lots[1], local(90)), (lots[2], local(30)), (lots[3], local(5)))
    ]
    capture(
        session=session,
        actor=member,
        items=[(EventType.CORRECTION, CorrectionIn(event_id=inspections[1], reason="did_not_occur"))],
    )
    recall(session=session, actor=member, lot_id=lots[2], data=ReasonIn(reason="Dư lượng thuốc bảo vệ thực vật"))
    session.flush()
    return World(period, gi, other_holder, other_gi.id, lots, gi_lots)  # type: ignore[arg-type]


def month_of(moment: datetime) -> tuple[int, int]:
    here = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(ZONE)
    return here.year, here.month


def in_period(moment: datetime, period: Period) -> bool:
    here = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(ZONE).date()
    return period.start <= here <= period.end


def count_by_month(moments: list[datetime], period: Period) -> Counter[tuple[int, int]]:
    return Counter(month_of(m) for m in moments if in_period(m, period))


def series(found: dashboard.Dashboard, name: str) -> Counter[tuple[int, int]]:
    return Counter({(m.year, m.month): getattr(m, name) for m in found.months if getattr(m, name)})


def test_every_monthly_figure_equals_rows_counted_into_local_months_here(session: Session, world: World) -> None:
    found = dashboard.province_dashboard(session=session, actor=ADMIN, period=world.period)
    p = world.period

    lots = session.exec(select(Lot, Event).join(Event, col(Event.id) == col(Lot.created_event_id))).all()
    live = [(lot, event) for lot, event in lots if lot.status != LotStatus.CANCELLED]
    assert series(found, "lots_harvested") == count_by_month(
        [lot.created_at for lot, e in live if e.type == EventType.HARVEST], p
    )
    assert series(found, "lots_produced") == count_by_month(
        [lot.created_at for lot, e in live if e.type == EventType.TRANSFORM], p
    )
    units = session.exec(select(Unit)).all()
    assert series(found, "unit_codes") == count_by_month(
        [u.created_at for u in units if u.level == UnitLevel.UNIT and u.status == UnitStatus.ACTIVE], p
    )
    lot_labels: Counter[tuple[int, int]] = Counter()
    for run in session.exec(select(PrintRun)).all():
        if (
            run.kind == PrintKind.LOT
            and run.reprint_of_id is None
            and run.status != PrintStatus.CANCELLED
            and in_period(run.created_at, p)
        ):
            lot_labels[month_of(run.created_at)] += run.quantity
    assert series(found, "lot_labels") == lot_labels
    assert series(found, "scans") == count_by_month(
        [s.scanned_at for s in session.exec(select(Scan)).all() if s.agent != "bot"], p
    )
    events = session.exec(select(Event)).all()
    corrected = {e.corrects_event_id for e in events if e.corrects_event_id}
    assert series(found, "inspections") == count_by_month(
        [e.event_time for e in events if e.type == EventType.INSPECT and e.id not in corrected], p
    )
    assert series(found, "recalls") == count_by_month([r.created_at for r in session.exec(select(Recall)).all()], p)

    # the data really spreads over several months, and the figures are not all empty
    assert len(series(found, "lots_harvested")) >= 5 and found.total("labels") == 12 + 3 + 3 + 5
    assert found.total("scans") == 14 - 4 and found.total("inspections") == 2 and found.total("recalls") == 1
    assert found.months[0].key == f"{p.start:%Y-%m}" and len(found.months) == 10


def test_a_harvest_half_an_hour_into_a_month_counts_in_that_local_month_not_the_utc_one(
    session: Session, world: World
) -> None:
    found = dashboard.province_dashboard(session=session, actor=ADMIN, period=world.period)
    start = first_of_month(2)
    before = start - timedelta(days=1)
    lot = session.exec(select(Lot).where(col(Lot.id) == world.lots[3])).one()
    assert lot.created_at.astimezone(UTC).month == before.month  # stored in UTC: the month before
    harvested = series(found, "lots_harvested")
    assert (
        harvested[(start.year, start.month)]
        == count_by_month([lt.created_at for lt in session.exec(select(Lot)).all()], world.period)[
            (start.year, start.month)
        ]
        >= 1
    )


def test_organisations_by_kind_and_by_commune_equal_a_count_of_the_rows(session: Session, world: World) -> None:
    found = dashboard.province_dashboard(session=session, actor=ADMIN, period=world.period)
    orgs = [o for o in session.exec(select(Organisation)).all() if o.active]
    end = datetime.combine(world.period.end + timedelta(days=1), datetime.min.time(), tzinfo=ZONE)
    start = datetime.combine(world.period.start, datetime.min.time(), tzinfo=ZONE)
    on = [o for o in orgs if o.created_at < end]
    assert {k.kind: k.total for k in found.by_kind} == dict(Counter(o.kind.value for o in on))
    assert {k.kind: k.new for k in found.by_kind} == {
        kind: sum(1 for o in on if o.kind.value == kind and o.created_at >= start)
        for kind in {o.kind.value for o in on}
    }
    assert {c.code: c.total for c in found.by_commune} == dict(Counter(o.commune_code for o in on))
    assert found.organisations == len(on) and found.organisations_new == len(on) - 1  # one joined 500 days ago
    names = {c.code: c.name for c in found.by_commune}
    assert names["12070"] == "Xã Hoàn Long" and names[None] == ""
    products = session.exec(select(Product)).all()
    assert found.products == len(products)
    assert found.products_traced == len({lt.product_id for lt in session.exec(select(Lot)).all()})


def test_designation_usage_against_its_quota_equals_the_labels_on_its_claimed_lots(
    session: Session, world: World
) -> None:
    found = dashboard.province_dashboard(session=session, actor=ADMIN, period=world.period)
    claimed = {c.lot_id for c in session.exec(select(LotClaim).where(col(LotClaim.designation_id) == world.gi.gi.id))}
    for row in (d for d in found.designations if d.designation_id == world.gi.gi.id):
        year_units = [
            u
            for u in session.exec(select(Unit)).all()
            if u.lot_id in claimed
            and u.level == UnitLevel.UNIT
            and u.status == UnitStatus.ACTIVE
            and u.created_at.astimezone(ZONE).year == row.year
        ]
        year_runs = [
            r.quantity
            for r in session.exec(select(PrintRun)).all()
            if r.lot_id in claimed and r.kind == PrintKind.LOT and r.created_at.astimezone(ZONE).year == row.year
        ]
        assert row.labels == len(year_units) + sum(year_runs)
        assert row.quota == 30 and row.used == row.labels and row.over == (1 if row.labels > 30 else 0)
    assert sum(d.labels for d in found.designations if d.designation_id == world.gi.gi.id) == 12 + 5
    assert {d.designation_id for d in found.designations} >= {world.gi.gi.id, world.other_gi_id}


def test_a_holder_sees_its_own_designations_lots_and_labels_only(session: Session, world: World) -> None:
    holder = Actor(role=Role.MEMBER, organisation_id=world.gi.holder.id, name="holder")
    found = dashboard.holder_dashboard(session=session, actor=holder, period=world.period)
    assert {d.designation_id for d in found.designations} == {world.gi.gi.id}
    claimed = [lt for lt in session.exec(select(Lot)).all() if lt.id in set(world.gi_lots)]
    assert series(found, "lots_harvested") == count_by_month([lt.created_at for lt in claimed], world.period)
    assert found.total("labels") == 12 + 5  # the plain lot's 6 codes are not the holder's
    assert found.total("scans") == found.total("inspections") == found.total("recalls") == 0
    assert found.by_kind == [] and found.growth == []
    # the other holder sees its own designation, not the longan GI
    other = Actor(role=Role.ORG_ADMIN, organisation_id=world.other_holder.id, name="other holder")
    assert {
        d.designation_id
        for d in dashboard.holder_dashboard(session=session, actor=other, period=world.period).designations
    } == {world.other_gi_id}


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ORG_ADMIN, Role.INSPECTOR])
def test_others_are_refused_both_dashboards(session: Session, world: World, role: Role) -> None:
    someone = Actor(role=role, organisation_id=world.gi.grower.id, name="grower")
    with pytest.raises(Forbidden) as refused:
        dashboard.province_dashboard(session=session, actor=someone, period=world.period)
    assert refused.value.code == "dashboard_admin_only"
    with pytest.raises(Forbidden) as refused:
        dashboard.holder_dashboard(session=session, actor=someone, period=world.period)
    assert refused.value.code == "not_designation_holder"
    holder_inspector = Actor(role=Role.INSPECTOR, organisation_id=world.gi.holder.id, name="x")
    with pytest.raises(Forbidden):
        dashboard.holder_dashboard(session=session, actor=holder_inspector, period=world.period)


def test_targets_are_the_administrators_set_once_per_form_and_the_latest_is_in_force(
    session: Session, world: World
) -> None:
    year = today().year
    with pytest.raises(Forbidden):
        targets.set_target(
            session=session,
            actor=f.member(world.gi.holder),
            data=targets.TargetIn(indicator=Indicator.LABELS, year=year, value=10),
        )
    first = targets.set_target(
        session=session,
        actor=ADMIN,
        idempotency_key="k1",
        data=targets.TargetIn(indicator=Indicator.LABELS, year=year, value=10),
    )
    again = targets.set_target(
        session=session,
        actor=ADMIN,
        idempotency_key="k1",
        data=targets.TargetIn(indicator=Indicator.LABELS, year=year, value=10),
    )
    assert again.id == first.id and len(session.exec(select(PlanTarget)).all()) == 1
    targets.set_target(
        session=session,
        actor=ADMIN,
        idempotency_key="k2",
        data=targets.TargetIn(indicator=Indicator.LABELS, year=year, value=40),
    )
    found = dashboard.province_dashboard(session=session, actor=ADMIN, period=world.period)
    points = {(g.indicator, g.year): g for g in found.growth}
    assert points[(Indicator.LABELS, year)].target == 40  # the latest
    assert points[(Indicator.SCANS, year)].target is None  # none set: none shown, none invented
    # actual values per year, counted here
    labels = [
        u
        for u in session.exec(select(Unit)).all()
        if u.level == UnitLevel.UNIT and u.status == UnitStatus.ACTIVE and u.created_at.astimezone(ZONE).year == year
    ]
    lot_labels = sum(
        r.quantity
        for r in session.exec(select(PrintRun)).all()
        if r.kind == PrintKind.LOT and r.created_at.astimezone(ZONE).year == year
    )
    assert points[(Indicator.LABELS, year)].actual == len(labels) + lot_labels
    orgs = [o for o in session.exec(select(Organisation)).all() if o.active]
    assert points[(Indicator.ORGANISATIONS, year)].actual == len(orgs)
    assert points[(Indicator.ORGANISATIONS, year - 1)].actual == sum(
        1 for o in orgs if o.created_at.astimezone(ZONE).year < year
    )
    scans = [
        s for s in session.exec(select(Scan)).all() if s.agent != "bot" and s.scanned_at.astimezone(ZONE).year == year
    ]
    assert points[(Indicator.SCANS, year)].actual == len(scans)


def test_a_period_backwards_too_long_or_out_of_range_is_refused_with_a_code() -> None:
    for start, end, code in (
        (date(2026, 5, 1), date(2026, 4, 30), "period_backwards"),
        (date(2010, 1, 1), date(2026, 1, 1), "period_too_long"),
        (date(1999, 1, 1), date(1999, 12, 31), "period_out_of_range"),
    ):
        with pytest.raises(RuleViolation) as refused:
            make_period(start, end)
        assert refused.value.code == code
    months = make_period(date(2026, 1, 15), date(2026, 3, 10)).months()
    assert [m.key for m in months] == ["2026-01", "2026-02", "2026-03"]
    assert months[0].start == datetime(2026, 1, 15, tzinfo=ZONE) and months[-1].end == datetime(
        2026, 3, 11, tzinfo=ZONE
    )


def test_designation_years_equal_the_usage_view_per_designation_and_year(session: Session) -> None:
    """The grouped figures against the holder's usage view, which counts one designation and year at a
    time: two designations, rights that end mid-year or carry no quota, runs in two calendar years,
    a reprint, a cancelled run, voided codes, a run by an organisation without a right."""
    from trace.designations.usage import designation_usage

    gi = f.gi_grower(session)
    second = f.designation(session, gi.holder, name_vi="Nhãn lồng Phố Hiến (thử)")
    stranger = f.org(session)
    this_year = today().year
    f.grant(session, second, gi.grower, annual_label_quota=None)
    ended = f.grant(
        session, second, stranger, valid_from=date(this_year - 1, 3, 1), valid_to=date(this_year - 1, 6, 30)
    )
    lots = [
        harvest_at(session, gi.grower, gi.fresh, gi.area.id, local(d), [gi.gi.id, second.id])  # type: ignore[arg-type]
        for d in (30, 20)
    ]
    member = f.member(gi.grower)
    made = [
        runs.create_run(session=session, actor=member, lot_id=lots[i % 2], data=runs.PrintRunCreate(quantity=q, kind=k))
        for i, (q, k) in enumerate(
            [(8, PrintKind.UNIT), (5, PrintKind.LOT), (7, PrintKind.UNIT), (4, PrintKind.LOT), (6, PrintKind.UNIT)]
        )
    ]
    last_year = datetime(this_year - 1, 5, 10, 9, tzinfo=ZONE)
    session.execute(update(PrintRun).where(col(PrintRun.id).in_([made[0].id, made[1].id])).values(created_at=last_year))
    session.execute(update(Unit).where(col(Unit.print_run_id) == made[0].id).values(created_at=last_year))
    session.execute(update(PrintRun).where(col(PrintRun.id) == made[0].id).values(organisation_id=stranger.id))
    session.execute(update(PrintRun).where(col(PrintRun.id) == made[3].id).values(reprint_of_id=made[1].id))
    session.execute(update(PrintRun).where(col(PrintRun.id) == made[4].id).values(status=PrintStatus.CANCELLED))
    voided = session.exec(select(Unit.id).where(Unit.print_run_id == made[2].id).limit(3)).all()  # type: ignore[arg-type]
    session.execute(update(Unit).where(col(Unit.id).in_(voided)).values(status=UnitStatus.VOID))
    f.backdated(session)
    ended.annual_label_quota = 5
    gi.right.annual_label_quota = 3  # below what is printed: over quota
    session.flush()
    period = make_period(date(this_year - 1, 1, 1), today())

    found = dashboard.designation_years(session=session, actor=ADMIN, period=period)

    rows = {(d.designation_id, d.year): d for d in found}
    assert {d for d, _ in rows} >= {gi.gi.id, second.id}
    for (designation_id, year), row in rows.items():
        usage = designation_usage(session=session, actor=ADMIN, designation_id=designation_id, year=year)
        limited = [r for r in usage.rights if r.annual_label_quota is not None]
        uses = [q for r in limited for q in r.quota_use if q.year == year]
        assert row.rights == len(usage.rights)
        assert row.labels == sum(y.labels for g in usage.grantees for y in g.years if y.year == year)
        assert row.quota == (sum(r.annual_label_quota or 0 for r in limited) if limited else None)
        assert (row.used, row.over) == (sum(q.labels for q in uses), sum(1 for q in uses if q.over))
    # and the world is not trivial: labels in both years, a right over its quota, a right with none
    assert all(rows[(gi.gi.id, y)].labels for y in (this_year - 1, this_year))
    assert rows[(gi.gi.id, this_year)].over == 1 and rows[(second.id, this_year)].rights == 2


def test_growth_in_grouped_queries_equals_each_indicator_counted_year_by_year(session: Session, world: World) -> None:
    # given lots and organisations from before the growth chart's first year, and a cancelled lot
    old = datetime.now(UTC) - timedelta(days=3 * 365)
    session.execute(update(Lot).where(col(Lot.id) == world.lots[0]).values(created_at=old))
    session.execute(update(Lot).where(col(Lot.id) == world.lots[1]).values(status=LotStatus.CANCELLED))
    session.execute(update(Organisation).where(col(Organisation.id) == world.gi.grower.id).values(created_at=old))
    f.backdated(session)
    years = list(range(today().year - 3, today().year + 1))

    found = dashboard.actuals(session=session, years=years)

    for indicator in Indicator:
        for year in years:
            one = dashboard.actual(session=session, indicator=indicator, year=year)
            assert found[(indicator, year)] == one, (indicator, year)
    assert found[(Indicator.PRODUCTS, years[0])] == 1 and found[(Indicator.ORGANISATIONS, years[0])] >= 1
