"""Rights to use a designation: the holder's grants, their lifecycle, and whether one covers a harvest."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from pydantic import field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from trace.access import Actor, Role
from trace.designations.models import Designation, RightStatus, RightToUse
from trace.designations.registry import area_problem, get_designation
from trace.errors import Conflict, Forbidden, NotFound, RuleViolation
from trace.events import batch
from trace.events import rules as r
from trace.events.effects import seal
from trace.events.models import Event, EventType, IdempotencyRecord
from trace.events.schemas import EventCommon
from trace.idempotency import checked_key, in_progress, insert_once, key_reused
from trace.locations import Location
from trace.organisations import Organisation, shown_party
from trace.platform.timeutil import local_zone, utcnow
from trace.products import Product

# The order a right's conditions are judged in; a later problem means the right came closer to covering.
PROBLEMS = (
    "no_right",
    "right_revoked",
    "right_suspended",
    "right_not_yet_valid",
    "right_expired",
    "product_not_in_right",
    "area_not_in_right",
)


def status_since(right: RightToUse) -> date:
    """The local date from which the right's current status applies (its last change)."""
    changed = right.updated_at if right.updated_at.tzinfo else right.updated_at.replace(tzinfo=UTC)
    return changed.astimezone(local_zone()).date()


def _problem_of(right: RightToUse, *, on: date, product_id: int | None, location_id: int | None) -> str | None:
    # A right suspended or revoked today still covered yesterday's harvest: the status counts from its change.
    if right.status != RightStatus.ACTIVE and on >= status_since(right):
        return "right_revoked" if right.status == RightStatus.REVOKED else "right_suspended"
    if on < right.valid_from:
        return "right_not_yet_valid"
    if right.valid_to is not None and on > right.valid_to:
        return "right_expired"
    if product_id is not None and right.product_ids and product_id not in right.product_ids:
        return "product_not_in_right"
    if location_id is not None and right.location_ids and location_id not in right.location_ids:
        return "area_not_in_right"
    return None


def _rights_of(*, session: Session, designation_id: int, organisation_id: int) -> list[RightToUse]:
    return list(
        session.exec(
            select(RightToUse)
            .where(RightToUse.designation_id == designation_id, RightToUse.organisation_id == organisation_id)
            .order_by(RightToUse.id)  # type: ignore[arg-type]
        )
    )


def lock_rights(*, session: Session, organisation_id: int, designation_id: int, exclusive: bool = False) -> None:
    """Lock an organisation's rights to a designation (after any lots, before the chain head) and read
    them afresh: a claim judged on a right (shared) and a change of it or a quota drawn on it
    (exclusive) take turns, so a harvest never claims a right revoked while it was being judged."""
    call = batch.current(session)
    if call is not None and (organisation_id, designation_id) in call.rights and not exclusive:
        return
    query = (
        select(RightToUse)
        .where(RightToUse.designation_id == designation_id, RightToUse.organisation_id == organisation_id)
        .order_by(col(RightToUse.id))
        .with_for_update(read=not exclusive)
        .execution_options(populate_existing=True)
    )
    session.exec(query).all()
    if call is not None and not exclusive:
        call.rights.add((organisation_id, designation_id))


def valid_right(
    *,
    session: Session,
    designation_id: int,
    organisation_id: int,
    on: date,
    product_id: int | None = None,
    location_id: int | None = None,
) -> RightToUse | None:
    """The organisation's right to the designation that covers ``on`` (and the product/location given), if any."""
    for right in _rights_of(session=session, designation_id=designation_id, organisation_id=organisation_id):
        if _problem_of(right, on=on, product_id=product_id, location_id=location_id) is None:
            return right
    return None


def right_problem(
    *,
    session: Session,
    designation_id: int,
    organisation_id: int,
    on: date,
    product_id: int | None = None,
    location_id: int | None = None,
) -> str | None:
    """Why no right covers this (a code of ``PROBLEMS``), or None when one does."""
    worst = 0
    for right in _rights_of(session=session, designation_id=designation_id, organisation_id=organisation_id):
        problem = _problem_of(right, on=on, product_id=product_id, location_id=location_id)
        if problem is None:
            return None
        worst = max(worst, PROBLEMS.index(problem))
    return PROBLEMS[worst]


# --------------------------------------------------------------------------- the holder's grants


class RightCreate(SQLModel):
    """A grant of the right to use a designation (the holder's decision)."""

    organisation_id: int = Field(description="The grantee")
    decision_number: str = Field(min_length=1, max_length=60, description="The holder's decision, e.g. 12/QĐ-HNL")
    valid_from: date
    valid_to: date | None = None
    product_ids: list[int] = Field(
        default_factory=list, max_length=200, description="Empty: any product of a covered category"
    )
    location_ids: list[int] = Field(
        default_factory=list, max_length=500, description="Empty: any place inside the protected area"
    )
    annual_label_quota: int | None = Field(default=None, ge=0, le=100_000_000, description="Labels per calendar year")
    event_time: datetime | None = Field(default=None, description="When it was decided; default now")
    note: str | None = Field(default=None, max_length=1000)

    @field_validator("decision_number")
    @classmethod
    def _decision(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the decision number is blank")
        return value.strip()


class RightChange(SQLModel):
    """A suspension, reinstatement or revocation, with its reason."""

    reason: str = Field(min_length=3, max_length=500)
    event_time: datetime | None = Field(default=None, description="When it takes effect; default now, never ahead")

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if len(value.strip()) < 3:
            raise ValueError("give a reason (at least 3 characters)")
        return value.strip()


class RightPublic(SQLModel):
    """A right as anyone may read it; quota, scope and reason only for the holder, the grantee and officials."""

    id: int
    designation_id: int
    organisation_id: int
    grantee_name: str
    decision_number: str
    valid_from: date
    valid_to: date | None
    status: RightStatus
    status_since: date
    annual_label_quota: int | None = None
    product_ids: list[int] | None = None
    location_ids: list[int] | None = None
    status_reason: str | None = None


def _may_see_terms(actor: Actor | None, right: RightToUse, holder_id: int) -> bool:
    if actor is None:
        return False
    return actor.reads_everything or actor.organisation_id in (right.organisation_id, holder_id)


def to_public(*, session: Session, right: RightToUse, actor: Actor | None, holder_id: int | None = None) -> RightPublic:
    """The API shape of a right; the terms are shown only to those entitled to them."""
    if holder_id is None:
        holder_id = get_designation(session=session, designation_id=right.designation_id).holder_organisation_id
    grantee = session.get(Organisation, right.organisation_id)
    public = RightPublic.model_validate(
        right,
        update={
            "grantee_name": shown_party(grantee, actor).name if grantee else "",
            "status_since": status_since(right),
            "annual_label_quota": None,
            "product_ids": None,
            "location_ids": None,
            "status_reason": None,
        },
    )
    if _may_see_terms(actor, right, holder_id):
        public.annual_label_quota = right.annual_label_quota
        public.product_ids, public.location_ids = right.product_ids, right.location_ids
        public.status_reason = right.status_reason
    return public


def list_rights(*, session: Session, designation_id: int, status: RightStatus | None = None) -> list[RightToUse]:
    """The rights granted over a designation, oldest first."""
    get_designation(session=session, designation_id=designation_id)
    query = select(RightToUse).where(RightToUse.designation_id == designation_id).order_by(col(RightToUse.id))
    if status is not None:
        query = query.where(RightToUse.status == status)
    return list(session.exec(query))


def get_right(*, session: Session, right_id: int) -> RightToUse:
    """One right, or NotFound."""
    right = session.get(RightToUse, right_id)
    if right is None:
        raise NotFound(f"Right to use {right_id} not found")
    return right


def _require_holder(actor: Actor, designation: Designation) -> int:
    holder = designation.holder_organisation_id
    if actor.organisation_id != holder or actor.role not in (Role.ORG_ADMIN, Role.MEMBER):
        raise Forbidden(
            f"Only the holder of {designation.name_vi} grants or changes rights to use it",
            code="not_designation_holder",
        )
    return holder


def _check_scope(*, session: Session, designation: Designation, grantee: int, data: RightCreate) -> None:
    covered = set(designation.categories) | set(designation.derived_categories)
    for product_id in data.product_ids:
        product = session.get(Product, product_id)
        if product is None or product.organisation_id != grantee:
            raise RuleViolation(
                f"Product {product_id} is not one of the grantee's", code="product_not_grantees", product_id=product_id
            )
        if product.category not in covered:
            raise RuleViolation(
                f"{designation.name_vi} does not cover products of category {product.category}",
                code="category_not_covered",
                product_id=product_id,
                category=product.category,
                designation=designation.name_vi,
            )
    for location_id in data.location_ids:
        location = session.get(Location, location_id)
        if location is None or location.organisation_id != grantee:
            raise RuleViolation(
                f"Location {location_id} is not one of the grantee's",
                code="location_not_grantees",
                location_id=location_id,
            )
        problem = area_problem(designation, location)
        if problem is not None:
            raise RuleViolation(
                f"{location.name} is not shown to lie in the protected area of {designation.name_vi}",
                code=problem,
                location_id=location_id,
                designation=designation.name_vi,
            )


def _record(
    *,
    session: Session,
    actor: Actor,
    right: RightToUse,
    designation: Designation,
    action: str,
    when: tuple[datetime, str],
    reason: str | None,
    note: str | None = None,
) -> Event:
    validity = {"from": right.valid_from.isoformat(), "to": right.valid_to.isoformat() if right.valid_to else None}
    event = r.new_event(
        actor=actor,
        organisation_id=designation.holder_organisation_id,
        type=EventType.RIGHT,
        when=when,
        data=EventCommon(note=note),
        location=None,
        lot_id=None,
        source=designation.holder_organisation_id,
        destination=right.organisation_id,
        payload={
            "action": action,
            "right_id": right.id,
            "designation_id": designation.id,
            "grantee": right.organisation_id,
            "decision_number": right.decision_number,
            "validity": validity,
            "quota": right.annual_label_quota,
            "reason": reason,
        },
    )
    seal(session=session, event=event, lots=[])
    return event


def _same_grant(right: RightToUse, data: RightCreate) -> bool:
    typed = (
        data.organisation_id,
        data.decision_number,
        data.valid_from,
        data.valid_to,
        list(dict.fromkeys(data.product_ids)),
        list(dict.fromkeys(data.location_ids)),
        data.annual_label_quota,
    )
    return typed == (
        right.organisation_id,
        right.decision_number,
        right.valid_from,
        right.valid_to,
        right.product_ids,
        right.location_ids,
        right.annual_label_quota,
    )


def _granted(session: Session, designation_id: int, key: str, data: RightCreate) -> RightToUse | None:
    found = session.exec(
        select(RightToUse).where(RightToUse.designation_id == designation_id, RightToUse.request_key == key)
    ).first()
    if found is not None and not _same_grant(found, data):
        raise key_reused("grant")
    return found


def grant_right(
    *, session: Session, actor: Actor, designation_id: int, data: RightCreate, idempotency_key: str | None = None
) -> RightToUse:
    """The holder grants an organisation the right to use its designation (a ``right`` event in its chain);
    a retry with the same key returns the first grant."""
    designation = get_designation(session=session, designation_id=designation_id)
    _require_holder(actor, designation)
    key = checked_key(idempotency_key)
    if key is not None and (found := _granted(session, designation_id, key, data)):
        return found
    if not designation.active:
        raise RuleViolation(
            f"{designation.name_vi} is no longer in force", code="designation_inactive", designation=designation.name_vi
        )
    grantee = session.get(Organisation, data.organisation_id)
    if grantee is None or not grantee.active:
        raise RuleViolation(
            f"Organisation {data.organisation_id} is not an active organisation", code="unknown_grantee"
        )
    if data.valid_to is not None and data.valid_to < data.valid_from:
        raise RuleViolation("valid_to is before valid_from", code="invalid_validity")
    data.product_ids = list(dict.fromkeys(data.product_ids))
    data.location_ids = list(dict.fromkeys(data.location_ids))
    _check_scope(session=session, designation=designation, grantee=data.organisation_id, data=data)
    taken = select(RightToUse.id).where(
        RightToUse.designation_id == designation_id, RightToUse.decision_number == data.decision_number
    )
    if session.exec(taken).first() is not None:
        raise Conflict(
            f"Decision {data.decision_number} already grants a right to {designation.name_vi}", code="right_exists"
        )
    when = r.event_time(EventCommon(event_time=data.event_time))
    with session.begin_nested():
        right = RightToUse(
            designation_id=designation_id,
            organisation_id=data.organisation_id,
            decision_number=data.decision_number,
            valid_from=data.valid_from,
            valid_to=data.valid_to,
            product_ids=data.product_ids,
            location_ids=data.location_ids,
            annual_label_quota=data.annual_label_quota,
            created_at=when[0],
            updated_at=when[0],
            request_key=key,
        )
        stored = insert_once(
            session=session, row=right, replay=lambda: _granted(session, designation_id, key, data) if key else None
        )
        if stored is not right:
            return stored  # the same form sent twice at once: the first grant stands
        _record(
            session=session,
            actor=actor,
            right=right,
            designation=designation,
            action="grant",
            when=when,
            reason=None,
            note=data.note,
        )
    return right


# action → (statuses it applies to, the status it leads to)
TRANSITIONS: dict[str, tuple[tuple[RightStatus, ...], RightStatus]] = {
    "suspend": ((RightStatus.ACTIVE,), RightStatus.SUSPENDED),
    "reinstate": ((RightStatus.SUSPENDED,), RightStatus.ACTIVE),
    "revoke": ((RightStatus.ACTIVE, RightStatus.SUSPENDED), RightStatus.REVOKED),
}


def allowed_changes(status: RightStatus) -> list[str]:
    """The changes a right in ``status`` may still undergo (suspend, reinstate, revoke): none once revoked."""
    return [action for action, (applies_to, _) in TRANSITIONS.items() if status in applies_to]


def _change_print(right_id: int, action: str, data: RightChange) -> str:
    return hashlib.sha256(f"right-change:{right_id}:{action}:{data.model_dump_json()}".encode()).hexdigest()


def _changed(session: Session, holder: int, key: str, fingerprint: str, right_id: int) -> RightToUse | None:
    found = session.get(IdempotencyRecord, (holder, key))
    if found is None:
        return None
    if found.fingerprint != fingerprint:
        raise key_reused("request")
    return get_right(session=session, right_id=right_id)


def change_right(
    *, session: Session, actor: Actor, right_id: int, action: str, data: RightChange, idempotency_key: str | None = None
) -> RightToUse:
    """Suspend, reinstate or revoke (final) a right, with a reason; the status counts from the change's time.

    A change is a ``right`` event recorded outside the capture ledger, so its key is kept where the ledger
    keeps the holder's event keys: a retry returns the right as changed once, and the key cannot be reused
    for another change or another event.
    """
    if action not in TRANSITIONS:
        raise RuleViolation(f"Unknown action {action!r}", code="unknown_action")
    right = get_right(session=session, right_id=right_id)
    designation = get_designation(session=session, designation_id=right.designation_id)
    holder = _require_holder(actor, designation)
    # The status is read under the right's lock: two changes at once take turns, the second sees the first.
    session.exec(
        select(RightToUse).where(RightToUse.id == right.id).with_for_update().execution_options(populate_existing=True)
    ).one()
    key = checked_key(idempotency_key)
    fingerprint = _change_print(right_id, action, data)
    if key is not None and (found := _changed(session, holder, key, fingerprint, right_id)):
        return found
    allowed, target = TRANSITIONS[action]
    if right.status == RightStatus.REVOKED:
        raise Conflict(
            "The right is revoked; a revocation is final", code="right_revoked", designation=designation.name_vi
        )
    if right.status not in allowed:
        raise Conflict(
            f"A {right.status} right cannot be {action}ed",
            code=f"right_{right.status}",
            designation=designation.name_vi,
        )
    when = r.event_time(EventCommon(event_time=data.event_time))
    last = right.updated_at if right.updated_at.tzinfo else right.updated_at.replace(tzinfo=UTC)
    if when[0] < last:
        raise RuleViolation(
            "A change cannot take effect before the right's last change",
            code="change_before_last",
            last_change=last.isoformat(),
        )
    try:
        with session.begin_nested():
            right.status, right.status_reason, right.updated_at = target, data.reason, when[0]
            session.add(right)
            session.flush()
            event = _record(
                session=session,
                actor=actor,
                right=right,
                designation=designation,
                action=action,
                when=when,
                reason=right.status_reason,
            )
            if key is not None:
                session.add(
                    IdempotencyRecord(
                        organisation_id=holder,
                        key=key,
                        fingerprint=fingerprint,
                        event_ids=[event.id],
                        created_at=utcnow(),
                    )
                )
                session.flush()
    except IntegrityError:
        if key is None:
            raise
        # The same change sent twice at once, and the other one stored its key first: it stands.
        session.expire_all()
        found = _changed(session, holder, key, fingerprint, right_id)
        if found is None:
            raise in_progress() from None
        return found
    return right
