"""The designation holder's view: who holds rights, what each organisation labelled per calendar
year, quota use, and labelling beyond what a grantee's growing areas can plausibly yield. Read-only.

Labels are attributed to the organisation that issued them (the commission event's or the lot-label
run's organisation): a distributor labelling a grower's GI longan shows up as itself. The yield
check instead follows the lots back to their grower: it is the grower's land that bounds them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import func, select
from sqlmodel import Field, Session, SQLModel, col

from trace.access import Actor, Role
from trace.designations import claims as claim_rules
from trace.designations.models import ClaimSource, Designation, LotClaim, RightStatus, RightToUse
from trace.designations.registry import in_area
from trace.errors import Forbidden, NotFound
from trace.events.models import Event
from trace.locations import Location, LocationKind
from trace.lots import Lot
from trace.organisations import party_names
from trace.platform.timeutil import local_zone
from trace.printing.models import PrintKind, PrintRun, PrintStatus
from trace.products import Product
from trace.units import Unit, UnitLevel, UnitStatus

# The most a hectare can plausibly give in a year, by product category: a ceiling, not an average,
# so a flag means "more than the best-farmed orchards give", never "above the mean".
# - longan_fresh: northern Vietnam averages 5.6 t/ha; intensive farming reaches 20-22 t/ha
#   (N.Q. Hung, V.V. Hung, N.T.B. Hong, D.T.B. Bay, "Current status of longan production in
#   Vietnam", Acta Horticulturae 1293, ISHS, https://www.ishs.org/ishs-article/1293_3). Khoái Châu's
#   ~900 ha of concentrated orchards give 12,000-15,000 t a year (13-17 t/ha), inside that ceiling.
# Categories not listed (processed goods, livestock) are not judged by area: their quantities are
# bounded by mass balance along the chain and by each lot's label capacity instead.
PLAUSIBLE_YIELD_KG_PER_HA: dict[str, int] = {
    "longan_fresh": 22_000,
}
_MASS = {"g": Decimal("0.001"), "kg": Decimal(1), "t": Decimal(1000)}


class QuotaUse(SQLModel):
    year: int
    labels: int
    quota: int | None
    left: int | None
    over: bool


class RightHeld(SQLModel):
    right_id: int
    organisation_id: int
    organisation_name: str
    decision_number: str
    valid_from: date
    valid_to: date | None
    status: RightStatus
    status_reason: str | None
    annual_label_quota: int | None
    product_ids: list[int]
    location_ids: list[int]
    quota_use: list[QuotaUse] = Field(description="Labels counted against the quota, per calendar year")


class ProductUsage(SQLModel):
    product_id: int
    name_vi: str
    category: str
    kg_per_label: Decimal | None = Field(description="Package size in kg (None: not sold by mass)")
    labels: int
    kg: Decimal | None


class YearUsage(SQLModel):
    year: int
    lots: int = Field(description="Claimed lots labelled that year")
    unit_codes: int = Field(description="Active package codes issued that year")
    lot_labels: int = Field(description="Lot labels printed that year")
    labels: int
    labelled_kg: Decimal = Field(description="Sum over products sold by mass")
    products: list[ProductUsage]


class GranteeUsage(SQLModel):
    organisation_id: int
    organisation_name: str
    holds_right: bool = Field(description="Whether it holds (or held) a right to use the designation")
    years: list[YearUsage]


class YieldCheck(SQLModel):
    organisation_id: int
    organisation_name: str
    year: int
    category: str
    labels: int
    labelled_kg: Decimal
    areas: int = Field(description="Growing areas counted")
    unsized_areas: int = Field(description="Of those, areas with no area_ha recorded (counted as 0 ha)")
    area_ha: float
    yield_kg_per_ha: int
    plausible_kg: Decimal
    plausible_labels: int | None = Field(description="plausible_kg ÷ package size, when one package size is used")
    suspicious: bool
    detail: str


class DesignationUsage(SQLModel):
    designation_id: int
    name_vi: str
    year: int | None
    rights: list[RightHeld]
    grantees: list[GranteeUsage]
    yield_checks: list[YieldCheck] = Field(
        description="Labels on lots claimed at harvest, by grower, against what its growing areas can plausibly yield"
    )


@dataclass(frozen=True)
class _Claim:
    source: ClaimSource
    producer: int
    product_id: int


@dataclass
class _Tally:
    codes: int = 0
    lot_labels: int = 0
    lots: set[int] = field(default_factory=set)

    @property
    def labels(self) -> int:
        return self.codes + self.lot_labels


def may_see(actor: Actor, designation: Designation) -> None:
    """The holder's members and administrators, and the province admin; nobody else."""
    if actor.is_admin:
        return
    if actor.organisation_id == designation.holder_organisation_id and actor.role in (Role.ORG_ADMIN, Role.MEMBER):
        return
    raise Forbidden("Only the designation holder sees how its designation is used", code="not_designation_holder")


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    zone = local_zone()
    return (datetime(year, 1, 1, tzinfo=zone).astimezone(UTC), datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC))


def _local_year(moment: datetime) -> int:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(local_zone()).year


def _claims(session: Session, designation_id: int) -> dict[int, _Claim]:
    rows = session.execute(
        select(col(LotClaim.lot_id), col(LotClaim.source), col(Lot.producer_organisation_id), col(Lot.product_id))
        .join(Lot, col(Lot.id) == col(LotClaim.lot_id))
        .where(col(LotClaim.designation_id) == designation_id)
    ).all()
    return {lot: _Claim(ClaimSource(source), producer, product) for lot, source, producer, product in rows}


def _code_filter(designation_id: int) -> list[object]:
    # Package codes only: a carton's code stands for packages that carry their own.
    return [
        col(LotClaim.designation_id) == designation_id,
        col(Unit.status) == UnitStatus.ACTIVE,
        col(Unit.level) == UnitLevel.UNIT,
    ]


def _run_filter(designation_id: int) -> list[object]:
    # As the lot's label capacity counts them: reprints repeat labels already counted, cancelled runs print nothing.
    return [
        col(LotClaim.designation_id) == designation_id,
        col(PrintRun.kind) == PrintKind.LOT,
        col(PrintRun.reprint_of_id).is_(None),
        col(PrintRun.status) != PrintStatus.CANCELLED,
    ]


def _years(session: Session, designation_id: int) -> list[int]:
    """Calendar years in which labels were issued for lots claiming the designation."""
    seen: list[datetime] = []
    for column, lot_id, filters in (
        (Unit.created_at, Unit.lot_id, _code_filter(designation_id)),
        (PrintRun.created_at, PrintRun.lot_id, _run_filter(designation_id)),
    ):
        low, high = session.execute(
            select(func.min(col(column)), func.max(col(column)))
            .join(LotClaim, col(LotClaim.lot_id) == col(lot_id))
            .where(*filters)  # type: ignore[arg-type]
        ).one()
        seen += [m for m in (low, high) if m is not None]
    if not seen:
        return []
    return list(range(min(map(_local_year, seen)), max(map(_local_year, seen)) + 1))


def _labels_in(session: Session, designation_id: int, year: int) -> list[tuple[int, int, int, int]]:
    """(lot, issuing organisation, active package codes, lot labels) issued in the local calendar year."""
    start, end = _year_bounds(year)
    codes = session.execute(
        select(col(Unit.lot_id), col(Event.organisation_id), func.count())
        .join(LotClaim, col(LotClaim.lot_id) == col(Unit.lot_id))
        .join(Event, col(Event.id) == col(Unit.created_event_id))
        .where(
            *_code_filter(designation_id),  # type: ignore[arg-type]
            col(Unit.created_at) >= start,
            col(Unit.created_at) < end,
        )
        .group_by(col(Unit.lot_id), col(Event.organisation_id))
    ).all()
    runs = session.execute(
        select(col(PrintRun.lot_id), col(PrintRun.organisation_id), func.sum(col(PrintRun.quantity)))
        .join(LotClaim, col(LotClaim.lot_id) == col(PrintRun.lot_id))
        .where(
            *_run_filter(designation_id),  # type: ignore[arg-type]
            col(PrintRun.created_at) >= start,
            col(PrintRun.created_at) < end,
        )
        .group_by(col(PrintRun.lot_id), col(PrintRun.organisation_id))
    ).all()
    return [(lot, org, int(n), 0) for lot, org, n in codes] + [(lot, org, 0, int(n)) for lot, org, n in runs]


def kg_per_label(product: Product) -> Decimal | None:
    """What one label stands for in kg: the package size (one unit of measure when unset), None if not a mass."""
    scale = _MASS.get(product.unit)
    return None if scale is None else (product.package_size or Decimal(1)) * scale


def _areas(
    session: Session, designation: Designation, organisation_id: int, rights: Iterable[RightToUse]
) -> list[Location]:
    """The grantee's growing areas its rights cover: their scopes, or (any right without a scope)
    every growing area of it inside the protected area."""
    places = list(
        session.execute(
            select(Location).where(
                col(Location.organisation_id) == organisation_id, col(Location.kind) == LocationKind.GROWING_AREA
            )
        ).scalars()
    )
    mine = list(rights)
    if mine and all(r.location_ids for r in mine):
        scoped = {i for r in mine for i in r.location_ids}
        return [p for p in places if p.id in scoped]
    # Areas whose position cannot be told (in_area None) cannot back a claim, so they add no yield.
    return [p for p in places if in_area(designation, p) is True]


def _yield_check(
    name: str,
    organisation_id: int,
    year: int,
    category: str,
    labels: int,
    kg: Decimal,
    sizes: set[Decimal],
    areas: list[Location],
) -> YieldCheck:
    area = round(sum(a.area_ha or 0.0 for a in areas), 4)
    per_ha = PLAUSIBLE_YIELD_KG_PER_HA[category]
    plausible = Decimal(str(area)) * per_ha
    suspicious = kg > plausible
    detail = (
        f"{kg} kg of {category} labelled in {year}; {area:g} ha of growing areas × {per_ha} kg/ha "
        f"gives at most {plausible:f} kg"
    )
    if suspicious and any(a.area_ha is None for a in areas):
        detail += "; some growing areas have no recorded size"
    return YieldCheck(
        organisation_id=organisation_id,
        organisation_name=name,
        year=year,
        category=category,
        labels=labels,
        labelled_kg=kg,
        areas=len(areas),
        unsized_areas=sum(1 for a in areas if a.area_ha is None),
        area_ha=area,
        yield_kg_per_ha=per_ha,
        plausible_kg=plausible,
        plausible_labels=(
            int((plausible / next(iter(sizes))).to_integral_value(ROUND_FLOOR)) if len(sizes) == 1 else None
        ),
        suspicious=suspicious,
        detail=detail,
    )


def designation_usage(
    *, session: Session, actor: Actor, designation_id: int, year: int | None = None
) -> DesignationUsage:
    """Who holds rights to the designation, what each organisation labelled per calendar year (active
    package codes and lot labels on lots claiming it), quota use, and yield checks."""
    designation = session.get(Designation, designation_id)
    if designation is None:
        raise NotFound(f"Designation {designation_id} not found")
    may_see(actor, designation)
    rights = list(
        session.execute(
            select(RightToUse)
            .where(col(RightToUse.designation_id) == designation_id)
            .order_by(col(RightToUse.organisation_id), col(RightToUse.valid_from), col(RightToUse.id))
        ).scalars()
    )
    claims = _claims(session, designation_id)
    years = [year] if year is not None else _years(session, designation_id)

    labelled: dict[tuple[int, int], dict[int, _Tally]] = defaultdict(lambda: defaultdict(_Tally))  # (org, year)
    harvested: dict[tuple[int, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))  # (grower, year)
    for y in years:
        for lot_id, org, codes, lot_labels in _labels_in(session, designation_id, y):
            claim = claims[lot_id]
            tally = labelled[(org, y)][claim.product_id]
            tally.codes += codes
            tally.lot_labels += lot_labels
            tally.lots.add(lot_id)
            if claim.source == ClaimSource.HARVEST:
                harvested[(claim.producer, y)][claim.product_id] += codes + lot_labels

    org_ids = {r.organisation_id for r in rights} | {org for org, _ in labelled} | {org for org, _ in harvested}
    names = party_names(session=session, ids=org_ids, reader=actor)
    product_ids = {p for tallies in labelled.values() for p in tallies}
    products = (
        {p.id: p for p in session.execute(select(Product).where(col(Product.id).in_(product_ids))).scalars()}
        if product_ids
        else {}
    )

    held = [_held(session, right, years, year is None, names) for right in rights]
    grantees: dict[int, GranteeUsage] = {}
    for (org, y), tallies in sorted(labelled.items()):
        usage = grantees.setdefault(
            org,
            GranteeUsage(
                organisation_id=org,
                organisation_name=names.get(org, ""),
                holds_right=any(r.organisation_id == org for r in rights),
                years=[],
            ),
        )
        usage.years.append(_year_usage(y, tallies, products))
    checks: list[YieldCheck] = []
    for (grower, y), counts in sorted(harvested.items()):
        checks += _checks_for(
            session,
            designation,
            [r for r in rights if r.organisation_id == grower],
            grower,
            names.get(grower, ""),
            y,
            counts,
            products,
        )
    return DesignationUsage(
        designation_id=designation_id,
        name_vi=designation.name_vi,
        year=year,
        rights=held,
        grantees=list(grantees.values()),
        yield_checks=checks,
    )


def _held(session: Session, right: RightToUse, years: list[int], skip_empty: bool, names: dict[int, str]) -> RightHeld:
    uses = []
    for y in years:
        # The count the quota is enforced with, so the holder sees what print runs are refused against.
        labels = claim_rules.quota_used(session=session, right=right, year=y)
        if skip_empty and not labels:
            continue
        quota = right.annual_label_quota
        uses.append(
            QuotaUse(
                year=y,
                labels=labels,
                quota=quota,
                left=None if quota is None else max(0, quota - labels),
                over=quota is not None and labels > quota,
            )
        )
    return RightHeld(
        right_id=right.id,  # type: ignore[arg-type]
        organisation_id=right.organisation_id,
        organisation_name=names.get(right.organisation_id, ""),
        decision_number=right.decision_number,
        valid_from=right.valid_from,
        valid_to=right.valid_to,
        status=right.status,
        status_reason=right.status_reason,
        annual_label_quota=right.annual_label_quota,
        product_ids=right.product_ids,
        location_ids=right.location_ids,
        quota_use=uses,
    )


def _year_usage(year: int, tallies: dict[int, _Tally], products: dict[int, Product]) -> YearUsage:
    lines = []
    for product_id, t in sorted(tallies.items()):
        product = products[product_id]
        per = kg_per_label(product)
        lines.append(
            ProductUsage(
                product_id=product_id,
                name_vi=product.name_vi,
                category=product.category,
                kg_per_label=per,
                labels=t.labels,
                kg=None if per is None else per * t.labels,
            )
        )
    return YearUsage(
        year=year,
        lots=len(set().union(*(t.lots for t in tallies.values()))),
        unit_codes=sum(t.codes for t in tallies.values()),
        lot_labels=sum(t.lot_labels for t in tallies.values()),
        labels=sum(t.labels for t in tallies.values()),
        labelled_kg=sum((line.kg for line in lines if line.kg is not None), Decimal(0)),
        products=lines,
    )


def _checks_for(
    session: Session,
    designation: Designation,
    rights: list[RightToUse],
    grower: int,
    name: str,
    year: int,
    counts: dict[int, int],
    products: dict[int, Product],
) -> list[YieldCheck]:
    """One check per category with a known yield, over the grower's lots claimed at harvest (inherited
    claims are bounded by their inputs, which are counted where they were harvested)."""
    per_category: dict[str, tuple[int, Decimal, set[Decimal]]] = {}
    for product_id, labels in counts.items():
        product = products[product_id]
        per = kg_per_label(product)
        if product.category not in PLAUSIBLE_YIELD_KG_PER_HA or per is None or not labels:
            continue
        n, kg, sizes = per_category.get(product.category, (0, Decimal(0), set()))
        per_category[product.category] = (n + labels, kg + per * labels, sizes | {per})
    if not per_category:
        return []
    areas = _areas(session, designation, grower, rights)
    return [
        _yield_check(name, grower, year, category, labels, kg, sizes, areas)
        for category, (labels, kg, sizes) in sorted(per_category.items())
    ]
