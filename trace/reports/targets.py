"""The province's plan targets: entered by its administrator, one value per indicator and year; a new
value is a new row (the history stays), and the latest row is the target in force."""

from __future__ import annotations

from sqlmodel import Field, Session, SQLModel, col, select

from trace.access import Actor, require_admin
from trace.errors import Conflict
from trace.idempotency import insert_once
from trace.platform.timeutil import utcnow
from trace.reports.models import Indicator, PlanTarget


class TargetIn(SQLModel):
    indicator: Indicator
    year: int = Field(ge=2000, le=2100)
    value: int = Field(ge=0, le=1_000_000_000)
    note: str | None = Field(default=None, max_length=500)


def _by_key(session: Session, key: str) -> PlanTarget | None:
    return session.execute(select(PlanTarget).where(col(PlanTarget.request_key) == key)).scalars().first()


def _replay(session: Session, key: str, data: TargetIn) -> PlanTarget | None:
    found = _by_key(session, key)
    if found is not None and (found.indicator, found.year, found.value) != (data.indicator, data.year, data.value):
        raise Conflict("This once-only key was used for another target", code="idempotency_key_reused")
    return found


def set_target(*, session: Session, actor: Actor, data: TargetIn, idempotency_key: str | None = None) -> PlanTarget:
    """Record a target (province administrator only); the same form sent twice records it once."""
    require_admin(actor)
    if idempotency_key and (found := _replay(session, idempotency_key, data)):
        return found
    row = PlanTarget(
        indicator=data.indicator,
        year=data.year,
        value=data.value,
        note=data.note or None,
        set_by_user_id=actor.user_id,
        set_at=utcnow(),
        request_key=idempotency_key or None,
    )
    if not idempotency_key:
        session.add(row)
        session.flush()
        return row
    key = idempotency_key
    return insert_once(session=session, row=row, replay=lambda: _replay(session, key, data))


def history(*, session: Session, actor: Actor, limit: int = 100) -> list[PlanTarget]:
    """Targets as they were entered, newest first (province administrator only)."""
    require_admin(actor)
    return list(
        session.execute(
            select(PlanTarget).order_by(col(PlanTarget.set_at).desc(), col(PlanTarget.id).desc()).limit(limit)
        ).scalars()
    )
