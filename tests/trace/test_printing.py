"""Print runs: how many labels a lot may carry, who may print, what a run registers, reprints,
cancels, voided codes, and the rendering worker's leased steps."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from tests import factories as f
from trace.access import Actor, Role
from trace.digital_link import parse
from trace.errors import Conflict, DomainError, Forbidden, NotFound, RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.query import events_public
from trace.events.schemas import CorrectionIn
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform.config import get_settings
from trace.platform.timeutil import utcnow
from trace.printing import artefacts, capacity, jobs, runs
from trace.printing.models import FORMATS, PrintArtefact, PrintKind, PrintRun, PrintStatus
from trace.printing.runs import PrintRunCreate, ReprintIn, VoidIn
from trace.units import Unit, UnitLevel, UnitStatus, display_code
from trace.verification import check_code

D = Decimal
OVERRIDE = "Khách đặt thêm tem dự phòng cho hộp quà Tết"
LEASE = 120


def refused(code: str, fn: Callable[[], Any], kind: type[DomainError] = DomainError) -> DomainError:
    with pytest.raises(kind) as info:
        fn()
    assert info.value.code == code, info.value.message
    return info.value


def printable_lot(session: Session, qty: str = "100", package_size: str | None = "0.5") -> tuple[Organisation, Lot]:
    """An organisation holding a lot of ``qty`` kg packed in ``package_size`` kg packages."""
    o = f.org(session)
    extra: dict[str, Any] = {"package_size": D(package_size)} if package_size else {}
    lot = session.get(Lot, f.harvest(session, o, qty, prod=f.product(session, o, **extra)).lot_ids[0])
    assert lot is not None
    return o, lot


def new_run(
    session: Session,
    o: Organisation,
    lot: Lot,
    quantity: int,
    *,
    key: str | None = None,
    actor: Actor | None = None,
    **data: Any,
) -> PrintRun:
    return runs.create_run(
        session=session,
        actor=actor or f.member(o),
        lot_id=lot.id,  # type: ignore[arg-type]
        data=PrintRunCreate(quantity=quantity, **data),
        idempotency_key=key,
    )


def units_of(session: Session, run: PrintRun) -> list[Unit]:
    return list(session.exec(select(Unit).where(Unit.print_run_id == run.id).order_by(col(Unit.id))))


def codes_of(session: Session, run: PrintRun) -> list[str]:
    return [u.code for u in units_of(session, run)]


def void(session: Session, o: Organisation, run: PrintRun, codes: list[str]) -> int:
    return runs.void_codes(
        session=session,
        actor=f.member(o),
        run_id=run.id,  # type: ignore[arg-type]
        data=VoidIn(codes=codes, reason="Tờ decal bị kẹt máy in"),
    )


def used(session: Session, lot: Lot) -> capacity.Capacity:
    return capacity.capacity(session=session, lot=lot)


def render(session: Session, run: PrintRun, content: bytes = b"%PDF-1.7 labels") -> None:
    """What a worker does: claim the run, then store its file."""
    token = jobs.new_token()
    assert jobs.claim(session=session, run_id=run.id, token=token, lease_seconds=LEASE) is not None  # type: ignore[arg-type]
    assert jobs.finish(
        session=session,
        run_id=run.id,
        token=token,
        content=io.BytesIO(content),
        done=run.quantity,  # type: ignore[arg-type]
        media_type="application/pdf",
        filename="tem.pdf",
    )


def expire_lease(session: Session, run: PrintRun) -> None:
    session.execute(
        update(PrintRun).where(col(PrintRun.id) == run.id).values(lease_until=utcnow() - timedelta(seconds=1))
    )


# -- capacity -------------------------------------------------------------------------------------


def test_a_lot_carries_as_many_labels_as_it_has_packages(session: Session) -> None:
    coop, lot = printable_lot(session, "100", "0.5")  # 200 packages
    error = refused("over_capacity", lambda: new_run(session, coop, lot, 201), RuleViolation)
    assert error.details == {"limit": 200, "used": 0, "left": 200}
    new_run(session, coop, lot, 200)
    # earlier runs count
    error = refused("over_capacity", lambda: new_run(session, coop, lot, 1), RuleViolation)
    assert error.details == {"limit": 200, "used": 200, "left": 0}


def test_an_override_reason_prints_beyond_the_lot_and_is_recorded(session: Session) -> None:
    coop, lot = printable_lot(session, "100", "0.5")
    new_run(session, coop, lot, 150)
    run = new_run(session, coop, lot, 60, override_reason=OVERRIDE)
    assert len(units_of(session, run)) == 60 and run.override_reason == OVERRIDE
    event = session.get(Event, run.event_id)
    assert event is not None
    assert event.payload["override"] == {"reason": OVERRIDE, "limit": 200, "used": 150}
    assert used(session, lot).used == 210


def test_voided_codes_free_capacity(session: Session) -> None:
    coop, lot = printable_lot(session, "100", "0.5")
    first = new_run(session, coop, lot, 200)
    assert void(session, coop, first, codes_of(session, first)[:10]) == 10
    assert used(session, lot).used == 190
    refused("over_capacity", lambda: new_run(session, coop, lot, 11))
    new_run(session, coop, lot, 10)


def test_lot_label_runs_count_against_the_lot(session: Session) -> None:
    coop, lot = printable_lot(session, "100", "0.5")
    refused("over_capacity", lambda: new_run(session, coop, lot, 201, kind=PrintKind.LOT))
    new_run(session, coop, lot, 100, kind=PrintKind.LOT)
    error = refused("over_capacity", lambda: new_run(session, coop, lot, 101))
    assert error.details == {"limit": 200, "used": 100, "left": 100}
    new_run(session, coop, lot, 60)
    new_run(session, coop, lot, 40, kind=PrintKind.CARTON)  # cartons are counted apart
    assert used(session, lot).used == 160
    assert capacity.capacity(session=session, lot=lot, level=UnitLevel.CARTON).used == 40


def test_a_lot_label_run_may_fill_the_lot(session: Session) -> None:
    coop, lot = printable_lot(session, "100", "0.5")
    new_run(session, coop, lot, 200, kind=PrintKind.LOT)
    assert used(session, lot).used == 200


def test_a_lot_counted_in_grams_is_converted_to_the_products_kilograms(session: Session) -> None:
    coop, lot = printable_lot(session, "100", "0.5")
    lot.unit, lot.quantity = "g", D("100000")  # 100 kg written in grams
    session.add(lot)
    session.flush()
    assert used(session, lot).limit == 200
    refused("over_capacity", lambda: new_run(session, coop, lot, 201))
    new_run(session, coop, lot, 200)


def test_a_product_without_a_package_size_counts_one_package_per_unit_of_measure(session: Session) -> None:
    coop, lot = printable_lot(session, "100", None)
    error = refused("over_capacity", lambda: new_run(session, coop, lot, 101), RuleViolation)
    assert error.details["limit"] == 100
    new_run(session, coop, lot, 100)


# -- creating a run ---------------------------------------------------------------------------------


def test_only_a_holder_of_the_lot_may_print(session: Session) -> None:
    coop, lot = printable_lot(session)
    proc, stranger = f.org(session, "processor"), f.org(session)
    shipped = f.ship(session, coop, lot.id, proc, "100")  # type: ignore[arg-type]
    f.receive(session, proc, shipped.shipment_id)  # type: ignore[arg-type]
    refused("not_holder", lambda: new_run(session, coop, lot, 1), Forbidden)  # held it, holds 0 now
    refused("not_holder", lambda: new_run(session, stranger, lot, 1), Forbidden)
    assert len(units_of(session, new_run(session, proc, lot, 5))) == 5


def test_inspectors_and_the_admin_cannot_print(session: Session) -> None:
    coop, lot = printable_lot(session)
    for actor in (
        f.ADMIN,
        Actor(role=Role.INSPECTOR, organisation_id=None),
        Actor(role=Role.INSPECTOR, organisation_id=coop.id),
    ):
        refused("not_a_writer", lambda a=actor: new_run(session, coop, lot, 1, actor=a), Forbidden)  # type: ignore[misc]


def test_an_unknown_format_is_refused_and_every_known_one_accepted(session: Session) -> None:
    coop, lot = printable_lot(session)
    refused("unknown_format", lambda: new_run(session, coop, lot, 1, format="a5-2x2"), RuleViolation)
    for name in FORMATS:
        assert new_run(session, coop, lot, 1, format=name).format == name


def test_a_unit_run_registers_its_codes_under_one_commission_event(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 25)
    made = units_of(session, run)
    assert len(made) == 25 and run.status == PrintStatus.QUEUED
    assert {u.level for u in made} == {UnitLevel.UNIT} and {u.lot_id for u in made} == {lot.id}
    assert {u.created_event_id for u in made} == {run.event_id}
    commissions = list(session.exec(select(Event).where(Event.lot_id == lot.id, Event.type == EventType.COMMISSION)))
    assert [e.id for e in commissions] == [run.event_id]
    # the event commits to the set by a digest (sha256 of the sorted serials, one per line), not a copy
    payload = commissions[0].payload
    assert "serials" not in payload and payload["count"] == 25
    expected = hashlib.sha256("\n".join(sorted(u.serial for u in made)).encode()).hexdigest()
    assert payload["serials_sha256"] == expected
    assert commissions[0].payload["count"] == 25


def test_a_carton_run_registers_carton_codes(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 8, kind=PrintKind.CARTON)
    assert [u.level for u in units_of(session, run)] == [UnitLevel.CARTON] * 8


def test_a_lot_run_registers_no_units(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 30, kind=PrintKind.LOT)
    assert run.quantity == 30 and run.event_id is None
    assert session.exec(select(func.count()).select_from(Unit).where(Unit.lot_id == lot.id)).one() == 0


def test_a_run_records_the_public_base_url_in_force(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    coop, lot = printable_lot(session)
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", "https://tem.nhanlong.example.vn")
    get_settings.cache_clear()
    assert new_run(session, coop, lot, 1).base_url == "https://tem.nhanlong.example.vn"


def test_a_retried_request_gets_the_same_run(session: Session) -> None:
    coop, lot = printable_lot(session)
    first = new_run(session, coop, lot, 20, key="in-tem-0001")
    again = new_run(session, coop, lot, 20, key="in-tem-0001")
    assert again.id == first.id
    assert session.exec(select(func.count()).select_from(Unit).where(Unit.lot_id == lot.id)).one() == 20
    refused("idempotency_key_reused", lambda: new_run(session, coop, lot, 21, key="in-tem-0001"), Conflict)
    # keys belong to an organisation: another one's same key is another run
    proc, other_lot = printable_lot(session)
    assert new_run(session, proc, other_lot, 20, key="in-tem-0001").id != first.id


def test_a_refused_run_leaves_nothing_behind(session: Session) -> None:
    coop, lot = printable_lot(session)
    for kind in (PrintKind.UNIT, PrintKind.LOT):
        refused("over_capacity", lambda k=kind: new_run(session, coop, lot, 201, kind=k, key=f"k-{k}"))  # type: ignore[misc]
    assert list(session.exec(select(PrintRun).where(PrintRun.lot_id == lot.id))) == []
    assert session.exec(select(func.count()).select_from(Unit).where(Unit.lot_id == lot.id)).one() == 0
    # so the key of a refused request is free for the corrected one
    assert len(units_of(session, new_run(session, coop, lot, 200, key="k-unit"))) == 200


def test_refusals_before_any_write_leave_nothing_behind(session: Session) -> None:
    coop, lot = printable_lot(session)
    refused("unknown_format", lambda: new_run(session, coop, lot, 5, format="a5-2x2"))
    refused("not_holder", lambda: new_run(session, f.org(session), lot, 5))
    refused("not_a_writer", lambda: new_run(session, coop, lot, 5, actor=f.ADMIN))
    assert list(session.exec(select(PrintRun).where(PrintRun.lot_id == lot.id))) == []
    assert session.exec(select(func.count()).select_from(Unit).where(Unit.lot_id == lot.id)).one() == 0


# -- reprint, cancel, void ------------------------------------------------------------------------


def test_a_reprint_prints_the_same_codes_without_the_voided_ones(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    coop, lot = printable_lot(session)
    original = new_run(session, coop, lot, 12)
    render(session, original)
    voided = codes_of(session, original)[2:5]
    void(session, coop, original, voided)
    # the public base URL moved on since: the reprint still prints what the first labels say
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", "https://moi.example.vn")
    get_settings.cache_clear()
    again = runs.reprint(session=session, actor=f.member(coop), run_id=original.id, data=ReprintIn())  # type: ignore[arg-type]
    assert again.quantity == 9 and again.reprint_of_id == original.id and again.status == PrintStatus.QUEUED
    before = jobs.labels_for(session=session, run=original)
    after = jobs.labels_for(session=session, run=again)
    assert len(before) == 12
    shown = {display_code(c) for c in voided}
    assert [(x.uri, x.human_code) for x in after] == [
        (x.uri, x.human_code) for x in before if x.human_code not in shown
    ]
    assert len(codes_of(session, original)) == 12 and units_of(session, again) == []  # no new codes


def test_a_reprint_of_another_organisations_run_is_not_found(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 3)
    refused(
        "not_found",
        lambda: runs.reprint(
            session=session,
            actor=f.member(f.org(session)),
            run_id=run.id,  # type: ignore[arg-type]
            data=ReprintIn(),
        ),
        NotFound,
    )


def test_a_cancelled_run_cannot_be_reprinted(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 3)
    runs.cancel(session=session, actor=f.member(coop), run_id=run.id)  # type: ignore[arg-type]
    refused(
        "run_cancelled",
        lambda: runs.reprint(
            session=session,
            actor=f.member(coop),
            run_id=run.id,  # type: ignore[arg-type]
            data=ReprintIn(),
        ),
        Conflict,
    )


def test_cancelling_a_queued_run_voids_its_codes_through_the_log(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 6)
    codes = codes_of(session, run)
    cancelled = runs.cancel(session=session, actor=f.member(coop), run_id=run.id)  # type: ignore[arg-type]
    assert cancelled.status == PrintStatus.CANCELLED
    assert {u.status for u in units_of(session, run)} == {UnitStatus.VOID}
    log = list(session.exec(select(Event).where(Event.lot_id == lot.id, Event.type == EventType.DECOMMISSION)))
    assert len(log) == 1 and sorted(u["code"] for u in log[0].payload["units"]) == sorted(codes)
    assert used(session, lot).used == 0


def test_only_a_queued_run_can_be_cancelled(session: Session) -> None:
    coop, lot = printable_lot(session)
    rendering, done = new_run(session, coop, lot, 2), new_run(session, coop, lot, 2)
    assert jobs.claim(session=session, run_id=rendering.id, token=jobs.new_token(), lease_seconds=LEASE)  # type: ignore[arg-type]
    render(session, done)
    for run in (rendering, done):
        refused("not_queued", lambda r=run: runs.cancel(session=session, actor=f.member(coop), run_id=r.id), Conflict)  # type: ignore[misc]
        assert {u.status for u in units_of(session, run)} == {UnitStatus.ACTIVE}


def test_codes_of_another_run_cannot_be_voided_through_this_one(session: Session) -> None:
    coop, lot = printable_lot(session)
    one, two = new_run(session, coop, lot, 3), new_run(session, coop, lot, 3)
    stray = codes_of(session, two)[0]
    error = refused("not_in_run", lambda: void(session, coop, one, [codes_of(session, one)[0], stray]), RuleViolation)
    assert error.details["codes"] == [stray]
    assert {u.status for u in units_of(session, one) + units_of(session, two)} == {UnitStatus.ACTIVE}


def test_a_voided_code_reads_as_void_until_its_voiding_is_corrected(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 4)
    code = codes_of(session, run)[1]
    assert void(session, coop, run, [display_code(code).lower()]) == 1
    answer = check_code(session=session, code=code)
    assert (answer.valid, answer.status) == (False, "void")
    assert check_code(session=session, code=codes_of(session, run)[0]).valid
    refused("already_void", lambda: void(session, coop, run, [code]), Conflict)
    # the voiding was a mistake: correcting it makes the code valid again
    voiding = session.exec(select(Event).where(Event.lot_id == lot.id, Event.type == EventType.DECOMMISSION)).one()
    capture(
        session=session,
        actor=f.member(coop),
        items=[(EventType.CORRECTION, CorrectionIn(event_id=voiding.id, reason="incorrect_data"))],
    )
    answer = check_code(session=session, code=code)
    assert (answer.valid, answer.status) == (True, "valid")


def test_a_code_listed_twice_is_voided_and_counted_once(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 3)
    code = codes_of(session, run)[0]
    assert void(session, coop, run, [code, display_code(code).lower()]) == 1


# -- privacy -----------------------------------------------------------------------------------------


def test_serials_and_overrides_are_private_to_the_printing_organisation(session: Session) -> None:
    coop, lot = printable_lot(session, "1", "0.5")
    run = new_run(session, coop, lot, 3, override_reason=OVERRIDE)
    event = session.get(Event, run.event_id)
    assert event is not None
    mine = events_public(session=session, actor=f.member(coop), events=[event])[0].payload
    assert len(mine["serials_sha256"]) == 64 and mine["override"]["reason"] == OVERRIDE
    for reader in (f.member(f.org(session)), None):
        theirs = events_public(session=session, actor=reader, events=[event])[0].payload
        assert "serials_sha256" not in theirs and "override" not in theirs
        assert not any(u.serial in json.dumps(theirs) for u in units_of(session, run))


# -- the rendering worker's steps --------------------------------------------------------------------


def test_a_live_lease_keeps_other_workers_out_and_a_lapsed_one_lets_them_in(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 4)
    first, second = jobs.new_token(), jobs.new_token()
    claimed = jobs.claim(session=session, run_id=run.id, token=first, lease_seconds=LEASE)  # type: ignore[arg-type]
    assert claimed is not None and claimed.status == PrintStatus.RENDERING and claimed.attempts == 1
    assert jobs.claim(session=session, run_id=run.id, token=second, lease_seconds=LEASE) is None  # type: ignore[arg-type]
    assert jobs.heartbeat(session=session, run_id=run.id, token=first, done=2, lease_seconds=LEASE)  # type: ignore[arg-type]
    # the first worker dies; its lease runs out
    expire_lease(session, run)
    taken = jobs.claim(session=session, run_id=run.id, token=second, lease_seconds=LEASE)  # type: ignore[arg-type]
    assert taken is not None and taken.attempts == 2 and taken.done == 0
    assert not jobs.heartbeat(session=session, run_id=run.id, token=first, done=3, lease_seconds=LEASE)  # type: ignore[arg-type]
    assert not jobs.finish(
        session=session,
        run_id=run.id,
        token=first,
        content=io.BytesIO(b"late"),
        done=4,  # type: ignore[arg-type]
        media_type="application/pdf",
        filename="tem.pdf",
    )
    assert jobs.finish(
        session=session,
        run_id=run.id,
        token=second,
        content=io.BytesIO(b"on time"),
        done=4,  # type: ignore[arg-type]
        media_type="application/pdf",
        filename="tem.pdf",
    )
    stored = session.get(PrintArtefact, run.id)
    assert stored is not None and artefacts.read(session=session, artefact=stored) == b"on time" and stored.size == 7


def test_a_run_gets_one_file_however_often_it_is_finished(session: Session) -> None:
    coop, lot = printable_lot(session)
    run = new_run(session, coop, lot, 2)
    render(session, run, b"first")
    assert jobs.claim(session=session, run_id=run.id, token=jobs.new_token(), lease_seconds=LEASE) is None  # type: ignore[arg-type]
    # a renderer that somehow holds a fresh claim on a finished run still cannot store a second file
    session.execute(update(PrintRun).where(col(PrintRun.id) == run.id).values(status=PrintStatus.RENDERING))
    expire_lease(session, run)
    session.expunge_all()  # each worker step has a session of its own
    token = jobs.new_token()
    assert jobs.claim(session=session, run_id=run.id, token=token, lease_seconds=LEASE) is not None  # type: ignore[arg-type]
    jobs.finish(
        session=session,
        run_id=run.id,
        token=token,
        content=io.BytesIO(b"second"),
        done=2,  # type: ignore[arg-type]
        media_type="application/pdf",
        filename="tem.pdf",
    )
    files = list(session.exec(select(PrintArtefact).where(PrintArtefact.print_run_id == run.id)))
    assert [artefacts.read(session=session, artefact=a) for a in files] == [b"first"]
    assert session.get(PrintRun, run.id, populate_existing=True).status == PrintStatus.DONE  # type: ignore[union-attr]


def test_labels_carry_the_runs_own_base_url_and_read_back_to_its_units(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    coop, lot = printable_lot(session)
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", "https://cu.example.vn")
    get_settings.cache_clear()
    unit_run, lot_run = new_run(session, coop, lot, 5), new_run(session, coop, lot, 2, kind=PrintKind.LOT)
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", "https://moi.example.vn")
    get_settings.cache_clear()
    labels = jobs.labels_for(session=session, run=unit_run)
    assert [x.human_code for x in labels] == [display_code(u.code) for u in units_of(session, unit_run)]
    for label, unit in zip(labels, units_of(session, unit_run), strict=True):
        link = parse(label.uri, hosts=["cu.example.vn"])
        assert (link.gtin, link.lot, link.serial) == (lot.gtin, lot.lot_code, unit.serial)
    lot_labels = jobs.labels_for(session=session, run=lot_run)
    assert len(lot_labels) == 2
    link = parse(lot_labels[0].uri, hosts=["cu.example.vn"])
    assert (link.gtin, link.lot, link.serial) == (lot.gtin, lot.lot_code, None)


def test_due_lists_the_runs_a_worker_should_start(session: Session) -> None:
    coop, lot = printable_lot(session)
    queued, live, stale, done, cancelled = (new_run(session, coop, lot, 1) for _ in range(5))
    for run in (live, stale):
        assert jobs.claim(session=session, run_id=run.id, token=jobs.new_token(), lease_seconds=LEASE)  # type: ignore[arg-type]
    expire_lease(session, stale)
    render(session, done)
    runs.cancel(session=session, actor=f.member(coop), run_id=cancelled.id)  # type: ignore[arg-type]
    mine = {queued.id, live.id, stale.id, done.id, cancelled.id}
    assert set(jobs.due(session=session)) & mine == {queued.id, stale.id}
    # a queued run is only due once its message had time to arrive
    assert set(jobs.due(session=session, queued_for_seconds=600)) & mine == {stale.id}
    session.execute(
        update(PrintRun).where(col(PrintRun.id) == queued.id).values(created_at=utcnow() - timedelta(seconds=601))
    )
    assert set(jobs.due(session=session, queued_for_seconds=600)) & mine == {queued.id, stale.id}


def test_carton_labels_have_their_own_ceiling_beside_the_package_labels(session: Session) -> None:
    # given a lot whose every package is labelled
    coop, lot = printable_lot(session)
    room = capacity.capacity(session=session, lot=lot)
    new_run(session, coop, lot, room.left)
    # when its cartons are labelled too, up to one per package
    cartons = new_run(session, coop, lot, room.limit, kind=PrintKind.CARTON)
    # then no override was needed, and one carton more than there are packages is refused
    assert cartons.override_reason is None
    with pytest.raises(RuleViolation) as refused:
        new_run(session, coop, lot, 1, kind=PrintKind.CARTON)
    assert refused.value.code == "over_capacity" and "carton" in str(refused.value)
