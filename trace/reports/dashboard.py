"""The province's dashboard, read-only: organisations on the system by kind and commune, products, lots,
labels and scans per month, designation usage against quotas, inspections, holds and recalls, and growth
per year against the targets the administrator entered. A designation holder sees its designations' part.

Every figure is aggregated in the database (one GROUP BY per series, months bucketed by
:mod:`trace.reports.periods`); Python only lays the results out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from trace import admin_units
from trace.access import Actor, Role
from trace.designations.models import Designation, LotClaim, RightToUse
from trace.designations.usage import may_see
from trace.errors import Forbidden
from trace.events.models import Event, EventType
from trace.lots import Lot, LotStatus
from trace.organisations import Organisation, shown_party
from trace.platform.timeutil import today
from trace.printing.models import PrintKind, PrintRun, PrintStatus
from trace.products import Product
from trace.recalls.models import Recall
from trace.reports.models import Indicator, PlanTarget
from trace.reports.periods import Month, Period, bucket, local_start, per_month
from trace.reports.tallies import CodeBucket, LotBucket
from trace.scans.models import ScanBucket
from trace.units import Unit, UnitStatus

GROWTH_YEARS = 6  # the growth chart's span, ending with the period's last year


@dataclass(frozen=True)
class KindCount:
    kind: str
    total: int  # on the system at the period's end
    new: int  # joined during the period


@dataclass(frozen=True)
class CommuneCount:
    code: str | None
    name: str
    total: int


@dataclass(frozen=True)
class MonthFigures:
    year: int
    month: int
    lots_harvested: int
    lots_produced: int
    unit_codes: int
    lot_labels: int
    scans: int
    inspections: int
    holds: int
    recalls: int

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def lots(self) -> int:
        return self.lots_harvested + self.lots_produced

    @property
    def labels(self) -> int:
        return self.unit_codes + self.lot_labels


@dataclass(frozen=True)
class DesignationYear:
    designation_id: int
    name: str
    kind: str
    year: int
    rights: int  # rights to use granted (in any status)
    labels: int  # labels issued that year on lots claiming it
    quota: int | None  # the sum of the yearly quotas of rights that have one
    used: int  # labels counted against those quotas
    over: int  # rights over their quota

    @property
    def share(self) -> float | None:
        """Quota used, as a fraction."""
        return None if not self.quota else self.used / self.quota


@dataclass(frozen=True)
class GrowthPoint:
    indicator: Indicator
    year: int
    actual: int | None  # None for a year not begun
    target: int | None  # None when the administrator set none


@dataclass
class Dashboard:
    """What the dashboard shows for a period: the province's, or a holder's part (``scope``)."""

    scope: str  # province | holder
    period: Period
    organisation_name: str | None = None  # the holder's
    by_kind: list[KindCount] = field(default_factory=list)
    by_commune: list[CommuneCount] = field(default_factory=list)
    products: int = 0
    products_traced: int = 0
    months: list[MonthFigures] = field(default_factory=list)
    designations: list[DesignationYear] = field(default_factory=list)
    growth: list[GrowthPoint] = field(default_factory=list)

    @property
    def organisations(self) -> int:
        return sum(k.total for k in self.by_kind)

    @property
    def organisations_new(self) -> int:
        return sum(k.new for k in self.by_kind)

    def total(self, name: str) -> int:
        """A monthly series summed over the period (``lots``, ``labels``, ``scans`` ...)."""
        return sum(int(getattr(m, name)) for m in self.months)


# --------------------------------------------------------------------------- who sees what


def require_province(actor: Actor) -> None:
    """The province dashboard is the administrator's."""
    if not actor.is_admin:
        raise Forbidden("Only the province administrator sees the province's dashboard", code="dashboard_admin_only")


def held_designations(*, session: Session, actor: Actor, organisation_id: int | None = None) -> tuple[int, list[int]]:
    """The organisation whose designations a holder's dashboard shows, and their ids: the actor's own
    (members and administrators of a holder), or any holder's for the province administrator."""
    if actor.is_admin and organisation_id is not None:
        org = organisation_id
    elif actor.role in (Role.ORG_ADMIN, Role.MEMBER) and actor.organisation_id is not None:
        org = actor.organisation_id
    else:
        raise Forbidden("Only a designation holder sees its designations' dashboard", code="not_designation_holder")
    ids = list(
        session.execute(
            select(col(Designation.id))
            .where(col(Designation.holder_organisation_id) == org)
            .order_by(col(Designation.id))
        ).scalars()
    )
    if not ids:
        raise Forbidden("Only a designation holder sees its designations' dashboard", code="not_designation_holder")
    return org, ids


# --------------------------------------------------------------------------- the figures


def _lots_where(designation_ids: Sequence[int] | None, lot_column: Any) -> list[Any]:
    """A filter keeping rows whose lot claims one of the designations (none when ``designation_ids`` is None)."""
    if designation_ids is None:
        return []
    return [lot_column.in_(select(col(LotClaim.lot_id)).where(col(LotClaim.designation_id).in_(designation_ids)))]


# Labels as the designation holder's usage counts them: active package codes (a carton's code stands for
# packages that carry their own), summed from the quarter hours kept per lot as codes are registered and
# voided (trace.reports.tallies) ...
CODES = col(CodeBucket.codes)


def _code_filters(designation_ids: Sequence[int] | None = None) -> list[Any]:
    return _lots_where(designation_ids, col(CodeBucket.lot_id))


def _run_filters(designation_ids: Sequence[int] | None = None) -> list[Any]:
    # ... and lot labels of runs that are neither reprints (the same labels again) nor cancelled.
    return [
        col(PrintRun.kind) == PrintKind.LOT,
        col(PrintRun.reprint_of_id).is_(None),
        col(PrintRun.status) != PrintStatus.CANCELLED,
        *_lots_where(designation_ids, col(PrintRun.lot_id)),
    ]


# Scans by people (search engines' and link previewers' fetches are not scans), summed from the quarter
# hours kept as scans are written (trace.scans.tallies): a local month or year is a whole number of them.
BY_PEOPLE = col(ScanBucket.people)


def monthly(*, session: Session, period: Period, designation_ids: Sequence[int] | None = None) -> list[MonthFigures]:
    """Every monthly series of the period; with ``designation_ids``, lots and labels under those designations
    only (and no scans, inspections, holds or recalls)."""
    months = period.months()
    if designation_ids is None:
        harvested, produced = _lots_kept(session, months)
    else:
        harvested, produced = _lots_made(session, months, designation_ids)
    codes = per_month(session, col(CodeBucket.starts_at), months, *_code_filters(designation_ids), value=CODES)
    lot_labels = per_month(
        session, col(PrintRun.created_at), months, *_run_filters(designation_ids), value=col(PrintRun.quantity)
    )
    zero = [0] * len(months)
    if designation_ids is None:
        scans = scan_months(session=session, months=months)
        inspections = _events(session, months, EventType.INSPECT)
        holds = _events(session, months, EventType.HOLD)
        recalls = per_month(session, col(Recall.created_at), months)
    else:
        scans = inspections = holds = recalls = zero
    return [
        MonthFigures(m.year, m.month, *values)
        for m, *values in zip(
            months, harvested, produced, codes, lot_labels, scans, inspections, holds, recalls, strict=True
        )
    ]


def _lots_kept(session: Session, months: list[Month]) -> tuple[list[int], list[int]]:
    """Lots harvested and lots produced per month (not cancelled), summed from the quarter hours kept as
    lots are made and cancelled (trace.reports.tallies): never a pass over the lots."""
    harvested, produced = [0] * len(months), [0] * len(months)
    if not months:
        return harvested, produced
    column = col(LotBucket.starts_at)
    sub = (
        select(bucket(column, months).label("m"), col(LotBucket.kind).label("t"), col(LotBucket.lots).label("n"))
        .where(column >= months[0].start, column < months[-1].end)
        .subquery()
    )
    for index, kind, total in session.execute(select(sub.c.m, sub.c.t, func.sum(sub.c.n)).group_by(sub.c.m, sub.c.t)):
        if index is not None:
            (harvested if EventType(kind) == EventType.HARVEST else produced)[int(index)] = int(total or 0)
    return harvested, produced


def _lots_made(session: Session, months: list[Month], designation_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """Lots claiming one of the designations harvested and produced per month (a lot claiming two counts
    once), in one pass over those lots and their creating events."""
    harvested, produced = [0] * len(months), [0] * len(months)
    if not months:
        return harvested, produced
    froms = Lot.__table__.join(Event.__table__, col(Event.id) == col(Lot.created_event_id))  # type: ignore[attr-defined]
    live = [col(Lot.status) != LotStatus.CANCELLED, *_lots_where(designation_ids, col(Lot.id))]
    column = col(Lot.created_at)
    sub = (
        select(bucket(column, months).label("m"), col(Event.type).label("t"))
        .select_from(froms)
        .where(
            column >= months[0].start,
            column < months[-1].end,
            col(Event.type).in_([EventType.HARVEST, EventType.TRANSFORM]),
            *live,
        )
        .subquery()
    )
    for index, kind, total in session.execute(select(sub.c.m, sub.c.t, func.count()).group_by(sub.c.m, sub.c.t)):
        if index is not None:
            (harvested if EventType(kind) == EventType.HARVEST else produced)[int(index)] = int(total)
    return harvested, produced


def scan_months(*, session: Session, months: list[Month]) -> list[int]:
    """Scans by people per month: sums of the quarter hours, never a count of the scans themselves."""
    return per_month(session, col(ScanBucket.starts_at), months, value=BY_PEOPLE)


def _events(session: Session, months: Any, kind: EventType) -> list[int]:
    """Events of a kind per month, leaving out those a correction declared erroneous."""
    fix = aliased(Event)
    return per_month(
        session,
        col(Event.event_time),
        months,
        col(Event.type) == kind,
        ~exists().where(col(fix.corrects_event_id) == col(Event.id)),
    )


def by_kind(*, session: Session, period: Period) -> list[KindCount]:
    """Active organisations on the system at the period's end, and those that joined in it, per kind."""
    start, end = period.start_utc, period.end_utc
    new = func.sum(case((col(Organisation.created_at) >= start, 1), else_=0))
    rows = session.execute(
        select(col(Organisation.kind), func.count(), new)
        .where(col(Organisation.active).is_(True), col(Organisation.created_at) < end)
        .group_by(col(Organisation.kind))
    ).all()
    return sorted(
        (KindCount(str(getattr(kind, "value", kind)), int(total), int(joined or 0)) for kind, total, joined in rows),
        key=lambda k: (-k.total, k.kind),
    )


def by_commune(*, session: Session, period: Period) -> list[CommuneCount]:
    """Active organisations on the system at the period's end, per today's commune."""
    rows = session.execute(
        select(col(Organisation.commune_code), func.count())
        .where(col(Organisation.active).is_(True), col(Organisation.created_at) < period.end_utc)
        .group_by(col(Organisation.commune_code))
    ).all()
    out = []
    for code, total in rows:
        unit = admin_units.commune(code) if code else None
        out.append(CommuneCount(code, unit.name if unit else "", int(total)))
    return sorted(out, key=lambda c: (-c.total, admin_units.fold_vietnamese(c.name)))


def products_at(*, session: Session, end: Any) -> tuple[int, int]:
    """(products registered, products carrying trace codes: with a lot that is not cancelled) before ``end``."""
    products = session.execute(
        select(func.count()).select_from(Product).where(col(Product.created_at) < end)
    ).scalar_one()
    # Per product, one probe of the (product, time) index, rather than every lot read for DISTINCT.
    traced = session.execute(
        select(func.count())
        .select_from(Product)
        .where(
            exists().where(
                col(Lot.product_id) == col(Product.id),
                col(Lot.status) != LotStatus.CANCELLED,
                col(Lot.created_at) < end,
            )
        )
    ).scalar_one()
    return int(products), int(traced)


def designation_years(
    *, session: Session, actor: Actor, period: Period, designation_ids: Sequence[int] | None = None
) -> list[DesignationYear]:
    """Each designation's labels and quota use per calendar year of the period, as its holder's usage
    view counts them (:func:`trace.designations.usage.designation_usage`), in a handful of grouped
    queries whatever the number of designations, years, rights and lots."""
    query = select(Designation).order_by(col(Designation.id))
    if designation_ids is not None:
        query = query.where(col(Designation.id).in_(designation_ids))
    designations = list(session.execute(query).scalars())
    for designation in designations:
        may_see(actor, designation)
    ids = [d.id for d in designations]
    if not ids:
        return []
    years = [_year(y) for y in period.years]
    rights = list(session.execute(select(RightToUse).where(col(RightToUse.designation_id).in_(ids))).scalars())
    labels = _labels_per_year(session, ids, years)
    used = _quota_used_per_year(session, [r for r in rights if r.annual_label_quota is not None], years)
    out = []
    for designation in designations:
        mine = [r for r in rights if r.designation_id == designation.id]
        limited = [r for r in mine if r.annual_label_quota is not None]
        for year in years:
            counts = [used.get((r.id, year.year), 0) for r in limited]  # type: ignore[arg-type]
            out.append(
                DesignationYear(
                    designation_id=designation.id,  # type: ignore[arg-type]
                    name=designation.name_vi,
                    kind=designation.kind.value,  # type: ignore[arg-type]
                    year=year.year,
                    rights=len(mine),
                    labels=labels.get((designation.id, year.year), 0),  # type: ignore[arg-type]
                    quota=sum(r.annual_label_quota or 0 for r in limited) if limited else None,
                    used=sum(counts),
                    over=sum(1 for r, n in zip(limited, counts, strict=True) if n > (r.annual_label_quota or 0)),
                )
            )
    return out


def _year(year: int) -> Month:
    # A whole local calendar year as one bucket: usage counts calendar years, not the period's cut.
    return Month(year, 1, local_start(date(year, 1, 1)), local_start(date(year + 1, 1, 1)))


def _labels_per_year(session: Session, ids: list[int], years: list[Month]) -> dict[tuple[int, int], int]:
    """(designation, year) -> active package codes and lot labels on lots claiming it, as the usage view
    counts them: one grouped query for codes, one for lot labels."""
    out: dict[tuple[int, int], int] = {}
    claims = col(LotClaim.designation_id).in_(ids)
    for column, value, lot_id, filters in (
        (col(CodeBucket.starts_at), CODES, col(CodeBucket.lot_id), _code_filters()),
        (col(PrintRun.created_at), col(PrintRun.quantity), col(PrintRun.lot_id), _run_filters()),
    ):
        sub = (
            select(col(LotClaim.designation_id).label("d"), bucket(column, years).label("y"), value.label("v"))
            .join(LotClaim, col(LotClaim.lot_id) == lot_id)
            .where(claims, column >= years[0].start, column < years[-1].end, *filters)
            .subquery()
        )
        for designation, index, total in session.execute(
            select(sub.c.d, sub.c.y, func.sum(sub.c.v)).group_by(sub.c.d, sub.c.y)
        ).all():
            if index is not None:
                key = (int(designation), years[int(index)].year)
                out[key] = out.get(key, 0) + int(total or 0)
    return out


def _quota_used_per_year(session: Session, rights: list[RightToUse], years: list[Month]) -> dict[tuple[int, int], int]:
    """(right, year) -> labels counted against its quota, as :func:`trace.designations.claims.quota_used`
    counts them (the holder's runs of lots claiming the designation while the right ran, less reprints,
    cancelled runs and voided codes): one grouped query for the runs, one for the voided codes."""
    if not rights:
        return {}
    # Each right's validity as UTC instants; the year buckets cut them into calendar years.
    since = case(*[(col(RightToUse.id) == r.id, _valid_from(r)) for r in rights])
    until = case(*[(col(RightToUse.id) == r.id, _valid_until(r)) for r in rights])
    runs = (
        select(
            col(RightToUse.id).label("r"),
            bucket(col(PrintRun.created_at), years).label("y"),
            col(PrintRun.id).label("run"),
            col(PrintRun.quantity).label("q"),
        )
        .select_from(RightToUse)
        .join(PrintRun, col(PrintRun.organisation_id) == col(RightToUse.organisation_id))
        .join(
            LotClaim,
            (col(LotClaim.lot_id) == col(PrintRun.lot_id))
            & (col(LotClaim.designation_id) == col(RightToUse.designation_id)),
        )
        .where(
            col(RightToUse.id).in_([r.id for r in rights]),
            col(PrintRun.reprint_of_id).is_(None),
            col(PrintRun.status) != PrintStatus.CANCELLED,
            col(PrintRun.created_at) >= years[0].start,
            col(PrintRun.created_at) < years[-1].end,
            col(PrintRun.created_at) >= since,
            col(PrintRun.created_at) < until,
        )
        .subquery()
    )
    out: dict[tuple[int, int], int] = {}
    printed = select(runs.c.r, runs.c.y, func.sum(runs.c.q)).group_by(runs.c.r, runs.c.y)
    voided = (
        select(runs.c.r, runs.c.y, -func.count())
        .join(Unit, col(Unit.print_run_id) == runs.c.run)
        .where(col(Unit.status) == UnitStatus.VOID)
        .group_by(runs.c.r, runs.c.y)
    )
    for query in (printed, voided):
        for right, index, total in session.execute(query).all():
            if index is not None:
                key = (int(right), years[int(index)].year)
                out[key] = out.get(key, 0) + int(total or 0)
    return out


def _valid_from(right: RightToUse) -> datetime:
    return local_start(right.valid_from)


def _valid_until(right: RightToUse) -> datetime:
    # The instant after the right's last day; an open-ended right runs past any period (2100 is the limit).
    return local_start(right.valid_to + timedelta(days=1)) if right.valid_to else local_start(date(2101, 1, 1))


# --------------------------------------------------------------------------- growth against targets


def targets(*, session: Session, years: Sequence[int]) -> dict[tuple[Indicator, int], int]:
    """The target in force for each (indicator, year): the latest one the administrator entered."""
    rows = session.execute(
        select(col(PlanTarget.indicator), col(PlanTarget.year), col(PlanTarget.value))
        .where(col(PlanTarget.year).in_(list(years)))
        .order_by(col(PlanTarget.set_at), col(PlanTarget.id))
    ).all()
    return {(Indicator(indicator), year): value for indicator, year, value in rows}


def actual(*, session: Session, indicator: Indicator, year: int) -> int:
    """An indicator's value for a calendar year: stocks at the year's end (or today, for this year),
    flows over the year."""
    start, end = local_start(date(year, 1, 1)), local_start(date(year + 1, 1, 1))
    if indicator == Indicator.ORGANISATIONS:
        return int(
            session.execute(
                select(func.count())
                .select_from(Organisation)
                .where(col(Organisation.active).is_(True), col(Organisation.created_at) < end)
            ).scalar_one()
        )
    if indicator == Indicator.PRODUCTS:
        return products_at(session=session, end=end)[1]
    if indicator == Indicator.SCANS:
        return int(
            session.execute(
                select(func.coalesce(func.sum(BY_PEOPLE), 0)).where(
                    col(ScanBucket.starts_at) >= start, col(ScanBucket.starts_at) < end
                )
            ).scalar_one()
        )
    codes = session.execute(
        select(func.coalesce(func.sum(CODES), 0)).where(
            col(CodeBucket.starts_at) >= start, col(CodeBucket.starts_at) < end, *_code_filters()
        )
    ).scalar_one()
    lot_labels = session.execute(
        select(func.coalesce(func.sum(col(PrintRun.quantity)), 0)).where(
            col(PrintRun.created_at) >= start, col(PrintRun.created_at) < end, *_run_filters()
        )
    ).scalar_one()
    return int(codes) + int(lot_labels)


def growth_years(*, session: Session, period: Period) -> list[int]:
    """Up to :data:`GROWTH_YEARS` years ending with the period's last, from the first year with an
    organisation on the system or a target (earlier years would be empty)."""
    first_org = session.execute(select(func.min(col(Organisation.created_at)))).scalar_one()
    first_target = session.execute(select(func.min(col(PlanTarget.year)))).scalar_one()
    known = [y for y in (first_org.year if first_org else None, first_target) if y is not None]
    first = max(period.end.year - GROWTH_YEARS + 1, min(known, default=period.start.year))
    return list(range(min(period.start.year, first), period.end.year + 1))


def growth(*, session: Session, period: Period) -> list[GrowthPoint]:
    """Each indicator per year, actual against the target in force (none when none was set)."""
    years = growth_years(session=session, period=period)
    wanted = targets(session=session, years=years)
    this_year = today().year
    found = actuals(session=session, years=[y for y in years if y <= this_year])
    return [
        GrowthPoint(
            indicator, year, found.get((indicator, year)) if year <= this_year else None, wanted.get((indicator, year))
        )
        for indicator in Indicator
        for year in years
    ]


def actuals(*, session: Session, years: Sequence[int]) -> dict[tuple[Indicator, int], int]:
    """Every indicator's value for each of ``years``, as :func:`actual` counts it, in one grouped query per
    indicator rather than one per indicator and year (the scans keep their own count per year)."""
    if not years:
        return {}
    buckets = [_year(y) for y in years]
    out: dict[tuple[Indicator, int], int] = {}
    orgs = _stock(session, col(Organisation.created_at), buckets, col(Organisation.active).is_(True))
    # Each product's first live lot, found in the (product, time) index: not a GROUP BY over every lot.
    first = (
        select(func.min(col(Lot.created_at)))
        .where(col(Lot.product_id) == col(Product.id), col(Lot.status) != LotStatus.CANCELLED)
        .scalar_subquery()
    )
    first_lot = select(first.label("first")).select_from(Product).subquery()
    traced = _stock(session, first_lot.c.first, buckets)
    codes = per_month(session, col(CodeBucket.starts_at), buckets, *_code_filters(), value=CODES)
    lot_labels = per_month(session, col(PrintRun.created_at), buckets, *_run_filters(), value=col(PrintRun.quantity))
    for i, year in enumerate(years):
        out[(Indicator.ORGANISATIONS, year)] = orgs[i]
        out[(Indicator.PRODUCTS, year)] = traced[i]
        out[(Indicator.LABELS, year)] = codes[i] + lot_labels[i]
        out[(Indicator.SCANS, year)] = actual(session=session, indicator=Indicator.SCANS, year=year)
    return out


def _stock(session: Session, column: Any, years: list[Month], *where: Any) -> list[int]:
    """Rows with ``column`` before each year's end: counted once into the first year that ends after it
    (earlier rows into the first year), then summed up year by year."""
    sub = select(bucket(column, years).label("y")).where(column < years[-1].end, *where).subquery()
    per_year = [0] * len(years)
    for index, total in session.execute(select(sub.c.y, func.count()).group_by(sub.c.y)).all():
        if index is not None:
            per_year[int(index)] = int(total)
    return [sum(per_year[: i + 1]) for i in range(len(years))]


# --------------------------------------------------------------------------- the two dashboards


Progress = Callable[[int], None]


def _quiet(_: int) -> None:
    return None


def province_dashboard(*, session: Session, actor: Actor, period: Period, on_progress: Progress = _quiet) -> Dashboard:
    """Everything, for the province's administrator (``on_progress`` hears 0-90 as the parts are read)."""
    require_province(actor)
    found = Dashboard(scope="province", period=period)
    found.by_kind = by_kind(session=session, period=period)
    found.by_commune = by_commune(session=session, period=period)
    found.products, found.products_traced = products_at(session=session, end=period.end_utc)
    on_progress(15)
    found.months = monthly(session=session, period=period)
    on_progress(40)
    found.designations = designation_years(session=session, actor=actor, period=period)
    on_progress(65)
    found.growth = growth(session=session, period=period)
    on_progress(90)
    return found


def holder_dashboard(
    *,
    session: Session,
    actor: Actor,
    period: Period,
    organisation_id: int | None = None,
    on_progress: Progress = _quiet,
) -> Dashboard:
    """A designation holder's part: its designations' usage against quotas, the lots claiming them and the
    labels on those lots, per month. Nothing of other designations or of the province's other figures."""
    org, ids = held_designations(session=session, actor=actor, organisation_id=organisation_id)
    holder = session.get(Organisation, org)
    found = Dashboard(
        scope="holder", period=period, organisation_name=shown_party(holder, actor).name if holder else None
    )
    found.months = monthly(session=session, period=period, designation_ids=ids)
    on_progress(40)
    found.designations = designation_years(session=session, actor=actor, period=period, designation_ids=ids)
    on_progress(90)
    return found
