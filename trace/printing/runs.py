"""What an organisation asks of print runs: create, reprint, cancel, list, void codes."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from trace.access import Actor, Role, require_writer
from trace.designations import claims
from trace.errors import Conflict, Forbidden, NotFound, RuleViolation
from trace.events import rules as r
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import CommissionIn, DecommissionIn
from trace.idempotency import in_progress, insert_once
from trace.lots import Holding
from trace.platform.config import get_settings
from trace.platform.timeutil import utcnow
from trace.printing import capacity
from trace.printing.models import (
    FORMAT_LIMITS,
    FORMATS,
    MAX_LABELS,
    PrintArtefact,
    PrintKind,
    PrintRun,
    PrintRunBase,
    PrintStatus,
)
from trace.units import Unit, UnitLevel, UnitStatus, normalize_code


class PrintRunCreate(PrintRunBase):
    location_id: int | None = Field(default=None, description="Where the labels are applied (one of yours)")
    event_time: datetime | None = Field(default=None, description="When the codes were issued (default now)")


class ReprintIn(SQLModel):
    format: str | None = Field(default=None, max_length=20, description="Another template; default the run's own")


class VoidIn(SQLModel):
    codes: list[str] = Field(min_length=1, max_length=100_000, description="Human codes of the labels to void")
    reason: str = Field(min_length=3, max_length=500)
    event_time: datetime | None = None


class PrintRunPublic(SQLModel):
    id: int
    lot_id: int
    organisation_id: int
    kind: PrintKind
    format: str
    quantity: int
    status: PrintStatus
    done: int
    total: int
    base_url: str
    reprint_of_id: int | None
    override_reason: str | None
    packed_on: date | None
    expiry: date | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    artefact: str | None = Field(description="Media type of the finished file, once rendered")
    void_codes: int = Field(description="Codes of this run voided since")


def _check_format(name: str, quantity: int) -> str:
    if name not in FORMATS:
        raise RuleViolation(f"Unknown label format {name!r}; known: {', '.join(FORMATS)}", code="unknown_format")
    limit = FORMAT_LIMITS.get(name, MAX_LABELS)
    if quantity > limit:
        raise RuleViolation(
            f"At most {limit} labels per run in {name}; split the job into several runs",
            code="too_many_for_format",
            limit=limit,
        )
    return name


def get_run(*, session: Session, actor: Actor, run_id: int) -> PrintRun:
    """A run of the actor's organisation (others' runs are not found: their codes are private)."""
    run = session.get(PrintRun, run_id)
    if run is None or not (actor.reads_everything or actor.organisation_id == run.organisation_id):
        raise NotFound(f"Print run {run_id} not found")
    return run


def source_run(*, session: Session, run: PrintRun) -> PrintRun:
    """The run whose codes ``run`` prints (itself, or the original of a reprint)."""
    if run.reprint_of_id is None:
        return run
    original = session.get(PrintRun, run.reprint_of_id)
    assert original is not None
    return original


def _by_key(session: Session, org: int, key: str) -> PrintRun | None:
    return session.execute(
        select(PrintRun).where(
            PrintRun.organisation_id == org,  # type: ignore[arg-type]
            PrintRun.request_key == key,  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()


def _reused() -> Conflict:
    return Conflict("This idempotency key was used for a different print run", code="idempotency_key_reused")


def _replay(session: Session, org: int, key: str, lot_id: int, data: PrintRunCreate) -> PrintRun | None:
    run = _by_key(session, org, key)
    if run is None:
        return None
    if (run.reprint_of_id, run.lot_id, run.kind, run.format, run.quantity) != (
        None,
        lot_id,
        data.kind,
        data.format,
        data.quantity,
    ):
        raise _reused()
    return run


def _reprinted(session: Session, org: int, key: str, original: PrintRun, data: ReprintIn) -> PrintRun | None:
    run = _by_key(session, org, key)
    if run is not None and (run.reprint_of_id, run.format) != (original.id, data.format or original.format):
        raise _reused()
    return run


def create_run(
    *, session: Session, actor: Actor, lot_id: int, data: PrintRunCreate, idempotency_key: str | None = None
) -> PrintRun:
    """Register a run's codes (one commission event for unit and carton labels) and queue it.

    The codes exist before anything is rendered, so every printed code is known to the system.
    A retry with the same idempotency key returns the first run instead of printing twice.
    """
    org = require_writer(actor)
    _check_format(data.format, data.quantity)
    if idempotency_key is not None and (found := _replay(session, org, idempotency_key, lot_id, data)):
        return found
    # The lot's lock first (rules.lock_lots): its holding and the labels issued for it are read afresh,
    # and two runs asked for at once take turns on its capacity.
    lot = r.lock_lots(session=session, lot_ids=[lot_id]).get(lot_id)
    if lot is None:
        raise NotFound(f"Lot {lot_id} not found")
    held = session.get(Holding, (lot.id, org))
    if held is None or held.quantity <= 0:
        raise Forbidden(f"Your organisation does not hold lot {lot.lot_code}", code="not_holder")
    run = PrintRun(
        organisation_id=org,
        lot_id=lot.id,  # type: ignore[arg-type]
        kind=data.kind,
        format=data.format,
        quantity=data.quantity,
        packed_on=data.packed_on,
        expiry=data.expiry or lot.expiry_date,
        override_reason=data.override_reason,
        base_url=get_settings().public_base_url,
        created_by_user_id=actor.user_id,
        request_key=idempotency_key,
    )
    if data.kind == PrintKind.LOT:
        capacity.check(session=session, lot=lot, wanted=data.quantity, override_reason=data.override_reason)
    # Reprints print the same codes again and are not counted: only new runs take from the quota.
    claims.check_quota(session=session, lot=lot, organisation_id=org, wanted=data.quantity, at=run.created_at)
    # One savepoint: a refused commission leaves no run behind, even if the caller commits.
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
            if data.kind != PrintKind.LOT:
                commission = CommissionIn(
                    lot_id=lot.id,  # type: ignore[arg-type]
                    count=data.quantity,
                    location_id=data.location_id,
                    event_time=data.event_time,
                    level=UnitLevel(data.kind.value),
                    override_reason=data.override_reason,
                )
                commission._print_run_id = run.id
                result = capture(session=session, actor=actor, items=[(EventType.COMMISSION, commission)], minimal=True)
                run.event_id = result.event_ids[0]
                session.add(run)
                session.flush()
    except IntegrityError:
        raise in_progress() from None
    except BaseException:
        if run in session:
            session.expunge(run)
        raise
    return run


def reprint(
    *, session: Session, actor: Actor, run_id: int, data: ReprintIn, idempotency_key: str | None = None
) -> PrintRun:
    """A new rendering of a finished run's codes (same codes; voided ones are left out).

    A retry with the same idempotency key returns the first reprint instead of printing again.
    """
    org = require_writer(actor)
    original = source_run(session=session, run=get_run(session=session, actor=actor, run_id=run_id))
    if original.organisation_id != org:
        raise Forbidden("Only the organisation that printed a run may reprint it", code="not_your_run")
    if idempotency_key is not None and (found := _reprinted(session, org, idempotency_key, original, data)):
        return found
    if original.status == PrintStatus.CANCELLED:
        raise Conflict(f"Print run {original.id} was cancelled; its codes are void", code="run_cancelled")
    quantity = original.quantity
    if original.kind != PrintKind.LOT:  # voided codes are not printed again
        quantity = session.execute(
            select(func.count())
            .select_from(Unit)
            .where(Unit.print_run_id == original.id, Unit.status == UnitStatus.ACTIVE)  # type: ignore[arg-type]
        ).scalar_one()
        if not quantity:
            raise Conflict(f"Every code of print run {original.id} is void", code="all_void")
    run = PrintRun(
        organisation_id=org,
        lot_id=original.lot_id,
        kind=original.kind,
        format=_check_format(data.format or original.format, quantity),
        quantity=quantity,
        packed_on=original.packed_on,
        expiry=original.expiry,
        base_url=original.base_url,
        reprint_of_id=original.id,
        event_id=original.event_id,
        created_by_user_id=actor.user_id,
        request_key=idempotency_key,
    )
    key = idempotency_key
    return insert_once(
        session=session,
        row=run,
        replay=lambda: _reprinted(session, org, key, original, data) if key is not None else None,
    )


def cancel(*, session: Session, actor: Actor, run_id: int) -> PrintRun:
    """Cancel a run no worker has started; the codes it registered are voided."""
    org = require_writer(actor)
    run = get_run(session=session, actor=actor, run_id=run_id)
    if run.organisation_id != org:
        raise Forbidden("Only the organisation that printed a run may cancel it", code="not_your_run")
    # A conditional update: a worker claiming the run at the same moment wins or loses cleanly.
    changed = session.execute(
        update(PrintRun)
        .where(PrintRun.id == run.id, PrintRun.status == PrintStatus.QUEUED)  # type: ignore[arg-type]
        .values(status=PrintStatus.CANCELLED, finished_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(run)
    if not changed:
        raise Conflict(f"Print run {run.id} is {run.status}; only a queued run can be cancelled", code="not_queued")
    if run.reprint_of_id is None and run.kind != PrintKind.LOT:
        codes = list(
            session.execute(
                select(col(Unit.code)).where(Unit.print_run_id == run.id, Unit.status == UnitStatus.ACTIVE)  # type: ignore[arg-type]
            ).scalars()
        )
        if codes:
            capture(
                session=session,
                actor=actor,
                minimal=True,
                items=[
                    (
                        EventType.DECOMMISSION,
                        DecommissionIn(codes=codes, reason=f"Print run {run.id} cancelled before printing"),
                    )
                ],
            )
    return run


def void_codes(*, session: Session, actor: Actor, run_id: int, data: VoidIn) -> int:
    """Void codes of a run (a damaged sheet, a lost roll); returns how many were voided."""
    run = source_run(session=session, run=get_run(session=session, actor=actor, run_id=run_id))
    codes = list(dict.fromkeys(normalize_code(c) for c in data.codes))  # a code typed twice counts once
    theirs = set(
        session.execute(select(col(Unit.code)).where(Unit.print_run_id == run.id, col(Unit.code).in_(codes))).scalars()  # type: ignore[arg-type]
    )
    stray = [c for c in codes if c not in theirs]
    if stray:
        raise RuleViolation(
            f"{len(stray)} code(s) are not from print run {run.id}: {', '.join(stray[:5])}",
            code="not_in_run",
            codes=stray[:50],
        )
    capture(
        session=session,
        actor=actor,
        minimal=True,
        items=[(EventType.DECOMMISSION, DecommissionIn(codes=codes, reason=data.reason, event_time=data.event_time))],
    )
    return len(codes)


def public(*, session: Session, runs: list[PrintRun]) -> list[PrintRunPublic]:
    """API shapes of runs, with their artefact and void counts in two queries."""
    ids = [r.id for r in runs if r.id is not None]
    sources: dict[int, int] = {r.id: r.reprint_of_id or r.id for r in runs if r.id is not None}
    artefacts: dict[int, str] = (
        dict(
            session.execute(  # type: ignore[arg-type]
                select(col(PrintArtefact.print_run_id), col(PrintArtefact.media_type)).where(
                    col(PrintArtefact.print_run_id).in_(ids)
                )
            ).all()
        )
        if ids
        else {}
    )
    voided: dict[int, int] = (
        dict(
            session.execute(
                select(col(Unit.print_run_id), func.count())
                .where(col(Unit.print_run_id).in_(set(sources.values())), Unit.status == UnitStatus.VOID)  # type: ignore[arg-type]
                .group_by(col(Unit.print_run_id))
            ).all()
        )
        if ids
        else {}
    )
    return [
        PrintRunPublic(
            **r.model_dump(
                exclude={"lease_token", "lease_until", "attempts", "event_id", "created_by_user_id", "request_key"}
            ),
            total=r.quantity,
            artefact=artefacts.get(r.id),  # type: ignore[arg-type]
            void_codes=voided.get(sources[r.id], 0),  # type: ignore[index]
        )
        for r in runs
    ]


def list_runs(*, session: Session, actor: Actor, lot_id: int) -> list[PrintRun]:
    """The actor's organisation's runs for a lot, newest first (every run, for admins)."""
    query = select(PrintRun).where(PrintRun.lot_id == lot_id)  # type: ignore[arg-type]
    if not actor.reads_everything:
        query = query.where(PrintRun.organisation_id == actor.organisation_id)  # type: ignore[arg-type]
    return list(session.execute(query.order_by(col(PrintRun.id).desc())).scalars())


def artefact(*, session: Session, actor: Actor, run_id: int) -> PrintArtefact:
    """The rendered file of a finished run, for the printing organisation only: a file of valid
    codes is what a counterfeiter wants, so admins and inspectors, who may read the run, cannot
    download it."""
    run = get_run(session=session, actor=actor, run_id=run_id)
    if actor.organisation_id != run.organisation_id or actor.role not in (Role.ORG_ADMIN, Role.MEMBER):
        raise Forbidden("Only the organisation that printed a run may download its labels", code="not_your_run")
    found = session.get(PrintArtefact, run.id)
    if found is None:
        raise Conflict(f"Print run {run.id} is {run.status}; its file is not ready", code="not_ready")
    return found
