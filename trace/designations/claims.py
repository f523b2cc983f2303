"""Lots' claims to designations: checked at harvest, inherited through transformations, counted
against the right's yearly label quota, and judged again (at harvest and today) for inspectors,
labels and the public page.

A claim is a promise printed on a package, so every path refuses or drops a claim it cannot
back: a harvest naming a designation it may not use is refused whole; a transformation simply
does not pass on a designation its maker may not use (and says why in its event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from trace.designations import rights
from trace.designations.models import (
    ClaimSource,
    ClaimStatus,
    Designation,
    DesignationKind,
    InheritRule,
    LotClaim,
    RightToUse,
)
from trace.designations.registry import area_problem
from trace.errors import RuleViolation
from trace.locations import Location
from trace.lots import Lot
from trace.organisations import Organisation, public_name
from trace.platform.timeutil import local_zone, today
from trace.printing.models import PrintRun, PrintStatus
from trace.products import Product
from trace.units import Unit, UnitStatus

BADGE_PREFIX = {
    DesignationKind.GEOGRAPHICAL_INDICATION: "CDĐL",  # chỉ dẫn địa lý
    DesignationKind.COLLECTIVE_TRADEMARK: "NHTT",  # nhãn hiệu tập thể
    DesignationKind.CERTIFICATION_TRADEMARK: "NHCN",  # nhãn hiệu chứng nhận
}

# Plain-words reasons, by the code a refusal carries ({name}: the designation).
MESSAGES = {
    "unknown_designation": "Designation {id} does not exist",
    "designation_inactive": "{name} is no longer in force",
    "category_not_covered": "{name} does not cover {product} (category {category})",
    "no_right": "{who} holds no right to use {name}",
    "right_revoked": "{who}'s right to use {name} had been revoked by {on}",
    "right_suspended": "{who}'s right to use {name} was suspended on {on}",
    "right_not_yet_valid": "{who}'s right to use {name} was not yet valid on {on}",
    "right_expired": "{who}'s right to use {name} had expired by {on}",
    "product_not_in_right": "{who}'s right to use {name} does not cover {product}",
    "area_not_in_right": "{who}'s right to use {name} does not cover the growing area {place}",
    "area_outside": "The growing area {place} lies outside the protected area of {name}",
    "area_unknown_former_commune": "The growing area {place} lies in a commune only partly inside the protected "
    "area of {name}; record its pre-2025 commune to claim it",
    "inherit_never": "{name} is not carried by products made from it",
    "not_all_inputs": "{name} is carried only when every input carries it",
}


@dataclass(frozen=True)
class Accepted:
    """A claim that passed its checks: which designation, under which right, for which new lot."""

    designation: Designation
    right: RightToUse
    output: int = 0  # index of the transformation's output lot it belongs to


def local_date(instant: datetime) -> date:
    """The local calendar day of a stored instant (SQLite hands back naive UTC)."""
    aware = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    return aware.astimezone(local_zone()).date()


def number(designation: Designation) -> str | None:
    """The number a designation is known by: its certificate, else its decision."""
    return designation.registration_number or designation.decision_number


def badge(designation: Designation) -> str:
    """The line a label carries, e.g. ``CDĐL Nhãn lồng Hưng Yên · số 00055``."""
    text = f"{BADGE_PREFIX[designation.kind]} {designation.name_vi}"
    return f"{text} · số {number(designation)}" if number(designation) else text


def covered_categories(designation: Designation, source: ClaimSource) -> set[str]:
    """Categories a claim may sit on: the designation's own, plus (through a transformation) derived ones."""
    own = set(designation.categories)
    return own if source == ClaimSource.HARVEST else own | set(designation.derived_categories)


def problem(
    *,
    session: Session,
    designation: Designation,
    organisation_id: int,
    on: date,
    product: Product,
    location: Location | None,
    source: ClaimSource,
) -> str | None:
    """Why a lot of ``product`` made by the organisation on ``on`` may not carry the designation, or None.

    The growing area is judged only for claims made at harvest; an inherited claim's area was
    judged when its inputs were harvested, and a processor's place is not a growing area.
    """
    if not designation.active:
        return "designation_inactive"
    if product.category not in covered_categories(designation, source):
        return "category_not_covered"
    at_harvest = source == ClaimSource.HARVEST
    found: str | None = rights.right_problem(
        session=session,
        designation_id=designation.id,  # type: ignore[arg-type]  # a stored designation
        organisation_id=organisation_id,
        on=on,
        product_id=product.id,
        location_id=location.id if at_harvest and location else None,
    )
    if found is not None or not at_harvest:
        return found
    if location is None:
        return "area_outside"
    return area_problem(designation, location)


def refusal(
    code: str,
    designation: Designation,
    *,
    on: date,
    product: Product,
    location: Location | None,
    who: str = "Your organisation",
) -> RuleViolation:
    """The 4xx naming which condition a claim failed, in plain words."""
    place = location.name if location else "(none)"
    message = MESSAGES.get(code, "{name} cannot be claimed ({code})").format(
        name=designation.name_vi,
        who=who,
        on=on.isoformat(),
        product=product.name_vi,
        category=product.category,
        place=place,
        code=code,
        id=designation.id,
    )
    return RuleViolation(message, code=code, designation_id=designation.id, designation=designation.name_vi)


def check_harvest(
    *,
    session: Session,
    organisation_id: int,
    on: date,
    product: Product,
    location: Location | None,
    designation_ids: list[int],
) -> list[Accepted]:
    """The claims a harvest makes, each checked; the first that fails refuses the harvest."""
    accepted = []
    for designation_id in dict.fromkeys(designation_ids):
        designation = session.get(Designation, designation_id)
        if designation is None:
            raise RuleViolation(
                MESSAGES["unknown_designation"].format(id=designation_id),
                code="unknown_designation",
                designation_id=designation_id,
            )
        rights.lock_rights(session=session, organisation_id=organisation_id, designation_id=designation_id)
        code = problem(
            session=session,
            designation=designation,
            organisation_id=organisation_id,
            on=on,
            product=product,
            location=location,
            source=ClaimSource.HARVEST,
        )
        if code is not None:
            raise refusal(code, designation, on=on, product=product, location=location)
        right = rights.valid_right(
            session=session,
            designation_id=designation_id,
            organisation_id=organisation_id,
            on=on,
            product_id=product.id,
            location_id=location.id if location else None,
        )
        assert right is not None  # right_problem found none missing
        accepted.append(Accepted(designation=designation, right=right))
    return accepted


def input_claims(*, session: Session, lot_ids: list[int]) -> dict[int, set[int]]:
    """Designation ids claimed by each of these lots (lots claiming none are left out)."""
    carried: dict[int, set[int]] = {}
    if not lot_ids:
        return carried
    for lot_id, designation_id in session.execute(
        select(col(LotClaim.lot_id), col(LotClaim.designation_id)).where(col(LotClaim.lot_id).in_(lot_ids))
    ):
        carried.setdefault(lot_id, set()).add(designation_id)
    return carried


def inherit(
    *, session: Session, organisation_id: int, on: date, input_lot_ids: list[int], outputs: list[tuple[Product, str]]
) -> tuple[list[Accepted], list[dict[str, Any]]]:
    """Which output lots (product, lot code) carry their inputs' designations, and why the others do not.

    Each designation any input carries is weighed for each output: its inheritance rule, the
    output's category, and the transforming organisation's own right on the day.
    """
    carried = input_claims(session=session, lot_ids=input_lot_ids)
    accepted: list[Accepted] = []
    dropped: list[dict[str, Any]] = []
    for designation_id in sorted(set().union(*carried.values())):
        designation = session.get(Designation, designation_id)
        assert designation is not None
        every = all(designation_id in carried.get(lot_id, ()) for lot_id in input_lot_ids)
        rights.lock_rights(session=session, organisation_id=organisation_id, designation_id=designation_id)
        for index, (product, lot_code) in enumerate(outputs):
            if not designation.active:
                reason: str | None = "designation_inactive"
            elif designation.inherit_rule == InheritRule.NEVER:
                reason = "inherit_never"
            elif designation.inherit_rule == InheritRule.ALL_INPUTS and not every:
                reason = "not_all_inputs"
            else:
                reason = problem(
                    session=session,
                    designation=designation,
                    organisation_id=organisation_id,
                    on=on,
                    product=product,
                    location=None,
                    source=ClaimSource.INHERITED,
                )
            if reason is not None:
                dropped.append(
                    {"id": designation.id, "name": designation.name_vi, "lot_code": lot_code, "reason": reason}
                )
                continue
            right = rights.valid_right(
                session=session,
                designation_id=designation_id,
                organisation_id=organisation_id,
                on=on,
                product_id=product.id,
            )
            assert right is not None
            accepted.append(Accepted(designation=designation, right=right, output=index))
    return accepted, dropped


def payload_entry(claim: Accepted, lot_code: str | None = None) -> dict[str, Any]:
    """How an accepted claim appears in its event's payload."""
    entry: dict[str, Any] = {"id": claim.designation.id, "name": claim.designation.name_vi}
    if lot_code is not None:
        entry["lot_code"] = lot_code
    return entry


def record(*, session: Session, lot_id: int, claims: list[Accepted], source: ClaimSource, event_id: str) -> None:
    """Store accepted claims of a new lot."""
    for claim in claims:
        session.add(
            LotClaim(
                lot_id=lot_id,
                designation_id=claim.designation.id,  # type: ignore[arg-type]
                right_id=claim.right.id,
                source=source,
                event_id=event_id,
            )
        )


# --------------------------------------------------------------------------- what a lot claims now


def claims_for_lot(*, session: Session, lot: Lot, on: date | None = None) -> list[ClaimStatus]:
    """The lot's claims, each judged when the lot was made and on ``on`` (default today)."""
    rows = list(
        session.execute(
            select(LotClaim).where(col(LotClaim.lot_id) == lot.id).order_by(col(LotClaim.designation_id))
        ).scalars()
    )
    if not rows:
        return []
    on = on or today()
    product = session.get(Product, lot.product_id)
    assert product is not None
    location = session.get(Location, lot.origin_location_id) if lot.origin_location_id else None
    out = []
    for row in rows:
        designation = session.get(Designation, row.designation_id)
        assert designation is not None
        holder = session.get(Organisation, designation.holder_organisation_id)

        def judge(day: date, *, d: Designation = designation, source: ClaimSource = row.source) -> str | None:
            return problem(
                session=session,
                designation=d,
                organisation_id=lot.producer_organisation_id,
                on=day,
                product=product,
                location=location,
                source=source,
            )

        then, now = judge(lot.production_date), judge(on)
        out.append(
            ClaimStatus(
                designation_id=designation.id,  # type: ignore[arg-type]
                name=designation.name_vi,
                name_en=designation.name_en,
                kind=designation.kind,
                number=number(designation),
                holder_name=public_name(holder) if holder else "",
                source=row.source,
                badge=badge(designation),
                valid_at_harvest=then is None,
                problem_at_harvest=then,
                valid_today=now is None,
                problem=now,
            )
        )
    return out


def badges(*, session: Session, lot: Lot, on: date) -> str | None:
    """The designation line of a label printed on ``on``: claims that held when the lot was made and still hold."""
    held = [c.badge for c in claims_for_lot(session=session, lot=lot, on=on) if c.valid_at_harvest and c.valid_today]
    return " / ".join(held) or None


# --------------------------------------------------------------------------- label quotas


def _year_bounds(year: int, right: RightToUse) -> tuple[datetime, datetime]:
    """The UTC instants of the local calendar year, narrowed to the right's validity."""
    zone = local_zone()
    start = max(date(year, 1, 1), right.valid_from)
    end = date(year + 1, 1, 1)
    if right.valid_to is not None:
        end = min(end, right.valid_to + timedelta(days=1))
    return (datetime.combine(start, time(), zone).astimezone(UTC), datetime.combine(end, time(), zone).astimezone(UTC))


def quota_used(*, session: Session, right: RightToUse, year: int) -> int:
    """Labels counted against a right in a calendar year (local time): the right holder's runs of lots
    claiming its designation, created that year while the right ran, less cancelled runs, reprints
    (the same codes again) and voided codes."""
    start, end = _year_bounds(year, right)
    claiming = select(col(LotClaim.lot_id)).where(col(LotClaim.designation_id) == right.designation_id)
    runs = select(col(PrintRun.id)).where(
        col(PrintRun.organisation_id) == right.organisation_id,
        col(PrintRun.lot_id).in_(claiming),
        col(PrintRun.reprint_of_id).is_(None),
        col(PrintRun.status) != PrintStatus.CANCELLED,
        col(PrintRun.created_at) >= start,
        col(PrintRun.created_at) < end,
    )
    printed = session.execute(
        select(func.coalesce(func.sum(PrintRun.quantity), 0)).where(col(PrintRun.id).in_(runs))
    ).scalar_one()
    voided = session.execute(
        select(func.count())
        .select_from(Unit)
        .where(col(Unit.print_run_id).in_(runs), col(Unit.status) == UnitStatus.VOID)
    ).scalar_one()
    return int(printed) - int(voided)


def check_quota(*, session: Session, lot: Lot, organisation_id: int, wanted: int, at: datetime) -> None:
    """Refuse a print run of ``wanted`` labels that would take a right beyond its yearly quota.

    The right is the printing organisation's own (a processor printing lots it made uses its
    right, not the grower's). No override: quotas are the holder's stamps, not an estimate.
    """
    assert lot.id is not None
    claimed = sorted(input_claims(session=session, lot_ids=[lot.id]).get(lot.id, set()))
    day = local_date(at)
    for designation_id in claimed:
        # Exclusive: two runs asked for at once must not both fit in the last stamps.
        rights.lock_rights(
            session=session, organisation_id=organisation_id, designation_id=designation_id, exclusive=True
        )
        right = rights.valid_right(
            session=session,
            designation_id=designation_id,
            organisation_id=organisation_id,
            on=day,
            product_id=lot.product_id,
        )
        if right is None or right.annual_label_quota is None:
            continue
        used = quota_used(session=session, right=right, year=day.year)
        left = max(0, right.annual_label_quota - used)
        if wanted > left:
            designation = session.get(Designation, designation_id)
            assert designation is not None
            raise RuleViolation(
                f"The right to use {designation.name_vi} (decision {right.decision_number}) allows "
                f"{right.annual_label_quota} labels in {day.year}; {used} are printed, so {left} more may be, "
                f"not {wanted}",
                code="quota_exceeded",
                quota=right.annual_label_quota,
                used=used,
                left=left,
                year=day.year,
                right_id=right.id,
                designation_id=designation.id,
                designation=designation.name_vi,
            )
