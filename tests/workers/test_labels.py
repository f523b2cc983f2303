"""workers.labels in-process: a committed print run rendered, read back with a real QR decoder.

The worker opens its own sessions and commits, so these tests use a database of their own
(committed rows, not the rolled-back session of the rest of the suite).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

import labels
from tests import factories as f
from trace.access import Actor
from trace.lots import Lot
from trace.platform.config import get_settings
from trace.platform.db import make_engine, session_scope
from trace.platform.timeutil import utcnow
from trace.printing import artefacts, jobs, runs
from trace.printing.models import PrintArtefact, PrintRun, PrintStatus
from trace.units import Unit, UnitStatus
from workers import jobs as driver
from workers import labels as worker

BASE = "https://truyxuat.example.vn"
QR = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


@pytest.fixture(scope="module")
def committed(databases) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """One migrated database of the configured kind for this module's committed runs."""
    from tests.conftest import migrate

    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=3)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", BASE)
    monkeypatch.setenv("HYTRACE_PRINT_PROGRESS_EVERY", "10")
    monkeypatch.setenv("HYTRACE_PRINT_LEASE_SECONDS", "60")
    get_settings.cache_clear()


def _queue(engine: Engine, quantity: int = 40, fmt: str = "a4-4x10") -> tuple[int, Actor]:
    """Commit an organisation, a lot with room for the labels, and a queued run of them."""
    with session_scope(engine) as session:
        coop = f.org(session)
        lot_id = f.harvest(session, coop, str(quantity * 2)).lot_ids[0]
        actor = f.member(coop)
        run = runs.create_run(
            session=session, actor=actor, lot_id=lot_id, data=runs.PrintRunCreate(quantity=quantity, format=fmt)
        )
        assert run.id is not None
        return run.id, actor


def _run(engine: Engine, run_id: int) -> PrintRun:
    with Session(engine) as session:
        run = session.get(PrintRun, run_id)
        assert run is not None
        return run


def _artefacts(engine: Engine, run_id: int) -> list[PrintArtefact]:
    with Session(engine) as session:
        return list(session.execute(select(PrintArtefact).where(PrintArtefact.print_run_id == run_id)).scalars())  # type: ignore[arg-type]


def _file(engine: Engine, artefact: PrintArtefact) -> bytes:
    """The stored file, from its chunks, checked against its SHA-256."""
    with Session(engine) as session:
        return artefacts.read(session=session, artefact=artefact)


def _registered(engine: Engine, run_id: int, *, active_only: bool = False) -> list[str]:
    """The URIs of the units registered for a run, in registration order, built here by hand
    (GS1 Digital Link: /01/{GTIN}/10/{lot}/21/{serial}) rather than by the code under test."""
    with Session(engine) as session:
        query = (
            select(col(Unit.serial), col(Unit.status), col(Lot.gtin), col(Lot.lot_code))
            .join(Lot, col(Lot.id) == col(Unit.lot_id))
            .where(Unit.print_run_id == run_id)
        )  # type: ignore[arg-type]
        rows = session.execute(query.order_by(col(Unit.id))).all()
    return [
        f"{BASE}/01/{gtin}/10/{lot}/21/{serial}"
        for serial, status, gtin, lot in rows
        if not active_only or status == UnitStatus.ACTIVE
    ]


def _slot(result: zxingcpp.Result, spec: labels.Template) -> int:
    """Which label of its page a QR belongs to, from where its centre lies on the page."""
    corners = (
        result.position.top_left,
        result.position.top_right,
        result.position.bottom_left,
        result.position.bottom_right,
    )
    x_mm = sum(p.x for p in corners) / 4 * 25.4 / 300
    y_mm = sum(p.y for p in corners) / 4 * 25.4 / 300
    column = int((x_mm - spec.margin_left_mm) // (spec.label_mm[0] + spec.gap_x_mm))
    row = int((y_mm - spec.margin_top_mm) // (spec.label_mm[1] + spec.gap_y_mm))
    return row * spec.columns + column


def _pdf_uris(pdf: bytes, template: str) -> list[str]:
    """Every QR of a PDF at 300 dpi, in label order (page by page, slot by slot)."""
    spec, read = labels.TEMPLATES[template], []
    document = pdfium.PdfDocument(pdf)
    try:
        for page in document:
            found = zxingcpp.read_barcodes(page.render(scale=300 / 72, grayscale=True).to_pil(), formats=QR)
            slots = {_slot(result, spec): result.text for result in found}
            assert len(slots) == len(found)
            read += [slots[slot] for slot in sorted(slots)]
    finally:
        document.close()
    return read


def _wrap_heartbeat(monkeypatch: pytest.MonkeyPatch, after: Callable[[Session, int, int], None]) -> None:
    """Replace jobs.heartbeat by the real one followed by ``after(session, run_id, done)``, in the
    same transaction (a second writer beside the worker's would wait on SQLite's write lock)."""
    real = jobs.heartbeat

    def wrapped(*, session: Session, run_id: int, done: int, **rest: Any) -> bool:
        alive = real(session=session, run_id=run_id, done=done, **rest)
        after(session, run_id, done)
        return alive

    monkeypatch.setattr(jobs, "heartbeat", wrapped)


# --- a run rendered ----------------------------------------------------------------------------


def test_a_queued_run_renders_once_into_one_file_whose_qr_codes_are_its_registered_units(
    committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a committed run of 40 unit labels on an A4 4×10 sheet, progress every 10 labels
    run_id, _ = _queue(committed, 40)
    seen: list[tuple[int, int]] = []

    def observe(session: Session, run_id: int, done: int) -> None:
        # what another process (the API) sees: the last committed progress
        with Session(committed) as reader:
            seen.append((done, reader.execute(select(col(PrintRun.done)).where(PrintRun.id == run_id)).scalar_one()))  # type: ignore[arg-type]

    _wrap_heartbeat(monkeypatch, observe)
    # when
    outcome = worker.render_run(run_id, engine=committed)
    # then it is done, with every label counted
    run = _run(committed, run_id)
    assert outcome == "done"
    assert (run.status, run.done, run.quantity, run.attempts) == (PrintStatus.DONE, 40, 40, 1)
    assert run.lease_until is None and run.finished_at is not None and run.error is None
    # and progress went up in steps of the setting to the total, each step committed before the next
    assert [done for done, _ in seen] == [10, 20, 30, 40]
    assert [committed_before for _, committed_before in seen] == [0, 10, 20, 30]
    # and one PDF whose QR codes are exactly the run's registered URIs, in order
    [artefact] = _artefacts(committed, run_id)
    assert artefact.media_type == "application/pdf" and artefact.size == len(_file(committed, artefact))
    registered = _registered(committed, run_id)
    assert len(registered) == 40 == len(set(registered))
    assert _pdf_uris(_file(committed, artefact), "a4-4x10") == registered


def test_rendering_a_finished_run_again_is_skipped_and_keeps_its_one_file(committed: Engine) -> None:
    run_id, _ = _queue(committed, 12)
    assert worker.render_run(run_id, engine=committed) == "done"
    [first] = _artefacts(committed, run_id)
    # when the task is delivered again (a broker redelivery, a sweep)
    outcome = worker.render_run(run_id, engine=committed)
    # then
    assert outcome == "skipped"
    [again] = _artefacts(committed, run_id)
    assert again.sha256 == first.sha256 and _file(committed, again) == _file(committed, first)
    assert _run(committed, run_id).attempts == 1


def test_a_cancelled_run_is_skipped_and_never_rendered(committed: Engine) -> None:
    run_id, actor = _queue(committed, 12)
    with session_scope(committed) as session:
        runs.cancel(session=session, actor=actor, run_id=run_id)
    assert worker.render_run(run_id, engine=committed) == "skipped"
    run = _run(committed, run_id)
    assert (run.status, run.attempts, run.done) == (PrintStatus.CANCELLED, 0, 0)
    assert _artefacts(committed, run_id) == []


def test_an_unknown_run_is_skipped(committed: Engine) -> None:
    assert worker.render_run(987_654_321, engine=committed) == "skipped"


# --- a lease taken over -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("taken_at", "reported"),
    [(10, [10, 20]), (40, [10, 20, 30, 40])],
    ids=["after-the-first-chunk", "after-the-last-report"],
)
def test_a_worker_whose_lease_was_taken_over_stops_and_stores_nothing(
    committed: Engine, monkeypatch: pytest.MonkeyPatch, taken_at: int, reported: list[int]
) -> None:
    # given a run another attempt claims while this one renders (its lease ran out meanwhile)
    run_id, _ = _queue(committed, 40)
    reports: list[int] = []

    def take_over(session: Session, run_id: int, done: int) -> None:
        reports.append(done)
        if done == taken_at:
            session.execute(
                update(PrintRun)
                .where(PrintRun.id == run_id)  # type: ignore[arg-type]
                .values(lease_token="thief", attempts=PrintRun.attempts + 1)
            )

    _wrap_heartbeat(monkeypatch, take_over)
    # when
    outcome = worker.render_run(run_id, engine=committed)
    # then the loser says so, stops at its next report, and leaves the run to the new holder
    assert outcome == "lost"
    assert reports == reported
    run = _run(committed, run_id)
    assert (run.status, run.lease_token, run.attempts) == (PrintStatus.RENDERING, "thief", 2)
    assert run.done == taken_at  # the loser's later reports were refused
    assert _artefacts(committed, run_id) == []


# --- a fault while rendering --------------------------------------------------------------------


def test_a_rendering_fault_marks_the_run_failed_with_the_error(
    committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, _ = _queue(committed, 12)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the template broke")

    monkeypatch.setattr(labels, "render_to", broken)
    # when
    outcome = worker.render_run(run_id, engine=committed)
    # then
    assert outcome == "failed"
    run = _run(committed, run_id)
    assert run.status == PrintStatus.FAILED and run.error == "RuntimeError: the template broke"
    assert run.finished_at is not None and run.lease_until is None
    assert _artefacts(committed, run_id) == []
    # and a failed run is not taken again by a redelivered task
    monkeypatch.undo()
    assert worker.render_run(run_id, engine=committed) == "skipped"
    assert _run(committed, run_id).status == PrintStatus.FAILED


# --- reprint ------------------------------------------------------------------------------------


def test_a_reprint_renders_the_same_codes_without_the_voided_ones(committed: Engine) -> None:
    # given a finished run of 40 with two labels voided since (a smudged sheet)
    run_id, actor = _queue(committed, 40)
    assert worker.render_run(run_id, engine=committed) == "done"
    [original] = _artefacts(committed, run_id)
    registered = _registered(committed, run_id)
    with Session(committed) as session:
        codes = list(
            session.execute(select(col(Unit.code)).where(Unit.print_run_id == run_id).order_by(col(Unit.id))).scalars()
        )  # type: ignore[arg-type]
    with session_scope(committed) as session:
        voided = runs.void_codes(
            session=session,
            actor=actor,
            run_id=run_id,
            data=runs.VoidIn(codes=[codes[2], codes[17]], reason="smudged on the press"),
        )
        reprint = runs.reprint(session=session, actor=actor, run_id=run_id, data=runs.ReprintIn())
        reprint_id = reprint.id
    assert voided == 2 and reprint_id is not None
    # when
    outcome = worker.render_run(reprint_id, engine=committed)
    # then the reprint holds the original codes in the original order, less the two voided
    assert outcome == "done"
    [again] = _artefacts(committed, reprint_id)
    expected = [uri for index, uri in enumerate(registered) if index not in (2, 17)]
    assert expected == _registered(committed, run_id, active_only=True)
    assert _pdf_uris(_file(committed, again), "a4-4x10") == expected
    rerun = _run(committed, reprint_id)
    assert (rerun.status, rerun.done, rerun.quantity) == (PrintStatus.DONE, 38, 38)
    # and the original file is untouched and no code was registered twice
    assert [a.sha256 for a in _artefacts(committed, run_id)] == [original.sha256]
    with Session(committed) as session:
        lot_id = _run(committed, run_id).lot_id
        units = session.execute(select(func.count()).select_from(Unit).where(Unit.lot_id == lot_id)).scalar_one()  # type: ignore[arg-type]
    assert units == 40


# --- the sweeper --------------------------------------------------------------------------------


def test_sweep_sends_stale_and_forgotten_runs_only(fresh: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import migrate

    # given a database of its own holding a run in every state
    url, engine = fresh
    migrate(url)
    lease = get_settings().print_lease_seconds
    names = ["queued_old", "queued_new", "stale", "live", "done", "cancelled", "failed"]
    ids: dict[str, int] = {}
    actors: dict[str, Actor] = {}
    for name in names:
        ids[name], actors[name] = _queue(engine, 5)
    now = utcnow()
    states: dict[str, dict[str, Any]] = {
        "queued_old": {"created_at": now - timedelta(seconds=2 * lease)},
        "stale": {
            "status": PrintStatus.RENDERING,
            "lease_token": "dead",
            "lease_until": now - timedelta(seconds=1),
            "created_at": now - timedelta(seconds=3 * lease),
        },
        "live": {
            "status": PrintStatus.RENDERING,
            "lease_token": "busy",
            "lease_until": now + timedelta(seconds=lease),
            "created_at": now - timedelta(seconds=3 * lease),
        },
        "done": {"status": PrintStatus.DONE, "created_at": now - timedelta(seconds=3 * lease)},
        "failed": {"status": PrintStatus.FAILED, "created_at": now - timedelta(seconds=3 * lease)},
    }
    with session_scope(engine) as session:
        for name, values in states.items():
            session.execute(update(PrintRun).where(PrintRun.id == ids[name]).values(**values))  # type: ignore[arg-type]
        runs.cancel(session=session, actor=actors["cancelled"], run_id=ids["cancelled"])
        session.execute(
            update(PrintRun)
            .where(PrintRun.id == ids["cancelled"])  # type: ignore[arg-type]
            .values(created_at=now - timedelta(seconds=3 * lease))
        )
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(driver, "send", lambda kind, job_id: sent.append((kind, job_id)))
    # when a sweep finds the broker's queue empty
    monkeypatch.setattr(driver, "waiting_messages", lambda: 0)
    due = driver.sweep(engine)
    # then only the run whose message was lost and the one whose worker died are sent, once each
    assert due["print_run"] == sorted([ids["queued_old"], ids["stale"]])
    assert sorted(sent) == [("print_run", ids["queued_old"]), ("print_run", ids["stale"])]
    # and when messages wait in the queue (the queued run's may be among them), only the dead attempt is
    # sent again; when the broker is down, nothing is
    sent.clear()
    monkeypatch.setattr(driver, "waiting_messages", lambda: 3)
    assert driver.sweep(engine)["print_run"] == [ids["stale"]] and sent == [("print_run", ids["stale"])]
    sent.clear()
    monkeypatch.setattr(driver, "waiting_messages", lambda: None)
    assert driver.sweep(engine) == {} and sent == []
