"""Reports of the dashboard: the XLSX opens, its sheets and headings are Vietnamese and its figures are the
dashboard's; CSV has a BOM and never carries a formula; a report job records its progress and its file,
and the task run twice makes one file."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from tests import factories as f
from trace.access import Actor, Role
from trace.errors import Forbidden, RuleViolation
from trace.platform.db import make_engine, session_scope
from trace.platform.timeutil import today, utcnow
from trace.reports import dashboard, export, jobs
from trace.reports.models import ReportFormat, ReportJob, ReportStatus
from trace.reports.periods import year_period
from trace.users import User
from workers import jobs as driver
from workers import reports as worker

ADMIN = Actor(role=Role.ADMIN, organisation_id=None, user_id=None, name="test admin")
EVIL = '=HYPERLINK("http://evil.example","bấm")'


@pytest.fixture
def found(session: Session) -> dashboard.Dashboard:
    gi = f.gi_grower(session)
    f.designation(session, gi.holder, name_vi=EVIL, categories=["honey"])
    f.harvest(session, gi.grower, prod=gi.fresh, loc=gi.area, designation_ids=[gi.gi.id], days_ago=2)
    f.harvest(session, gi.grower, days_ago=3)
    f.org(session, "processor", commune_code="12364")
    return dashboard.province_dashboard(session=session, actor=ADMIN, period=year_period(today().year))


def test_the_workbook_has_a_vietnamese_sheet_per_section_and_the_dashboards_figures(found: dashboard.Dashboard) -> None:
    book = load_workbook(io.BytesIO(export.to_xlsx(export.sections(found))))
    assert book.sheetnames == [
        "Tổng hợp",
        "Tổ chức theo loại",
        "Tổ chức theo xã, phường",
        "Theo tháng",
        "Chỉ dẫn địa lý, nhãn hiệu",
        "Tăng trưởng so với mục tiêu",
    ]
    summary = {row[0]: row[1] for row in book["Tổng hợp"].iter_rows(min_row=2, values_only=True)}
    assert summary["Tổ chức trên hệ thống (cuối kỳ)"] == found.organisations
    assert summary["Lô hàng thu hoạch trong kỳ"] == found.total("lots_harvested") >= 2
    assert summary["Tem (mã) đã phát hành trong kỳ"] == found.total("labels")
    kinds = book["Tổ chức theo loại"]
    assert [c.value for c in kinds[1]] == ["Loại tổ chức", "Trên hệ thống (cuối kỳ)", "Mới tham gia trong kỳ"]
    assert {r[0]: r[1] for r in kinds.iter_rows(min_row=2, values_only=True)} == {
        export.ORG_KINDS[k.kind]: k.total for k in found.by_kind
    }
    months = book["Theo tháng"]
    assert [c.value for c in months[1]][:3] == ["Tháng", "Lô thu hoạch", "Lô chế biến"]
    rows = list(months.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == [f"{m.month:02d}/{m.year}" for m in found.months]
    assert [r[1] for r in rows] == [m.lots_harvested for m in found.months]
    assert months.cell(row=2, column=2).number_format == "#,##0" and months.freeze_panes == "A2"
    # text that looks like a formula stays text
    names = [c for c in book["Chỉ dẫn địa lý, nhãn hiệu"]["A"] if c.value == EVIL]
    assert names and all(c.data_type == "s" for c in names)


def test_a_csv_section_has_a_bom_vietnamese_headings_and_no_formula(found: dashboard.Dashboard) -> None:
    parts = {p.code: p for p in export.sections(found)}
    body = export.to_csv(parts["designations"])
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Chỉ dẫn địa lý, nhãn hiệu", "Loại", "Năm"]
    assert "'" + EVIL in [r[0] for r in rows] and EVIL not in [r[0] for r in rows]
    archive = zipfile.ZipFile(io.BytesIO(export.to_zip(list(parts.values()))))
    assert sorted(archive.namelist()) == sorted(p.filename for p in parts.values())
    assert archive.read("04-theo-thang.csv").startswith(b"\xef\xbb\xbf")


def test_a_report_is_asked_for_by_those_who_may_and_once_per_form(session: Session) -> None:
    gi = f.gi_grower(session)
    grower = f.member(gi.grower)
    holder = f.member(gi.holder)
    year = today().year
    data = jobs.ReportIn(scope="province", period_start=date(year, 1, 1), period_end=date(year, 12, 31))
    with pytest.raises(Forbidden):
        jobs.request_report(session=session, actor=holder, data=data)
    with pytest.raises(Forbidden):
        jobs.request_report(session=session, actor=grower, data=data.model_copy(update={"scope": "holder"}))
    mine = data.model_copy(update={"scope": "holder"})
    first = jobs.request_report(session=session, actor=holder, data=mine, idempotency_key="once")
    again = jobs.request_report(session=session, actor=holder, data=mine, idempotency_key="once")
    assert first.id == again.id and first.organisation_id == gi.holder.id
    assert len(session.exec(select(ReportJob)).all()) == 1
    with pytest.raises(RuleViolation) as refused:
        jobs.request_report(
            session=session,
            actor=holder,
            data=jobs.ReportIn(scope="holder", period_start=date(year, 5, 1), period_end=date(year, 4, 1)),
        )
    assert refused.value.code == "period_backwards"
    with pytest.raises(RuleViolation):
        jobs.request_report(
            session=session,
            actor=holder,
            data=jobs.ReportIn(
                scope="holder",
                period_start=date(year, 1, 1),
                period_end=date(year, 2, 1),
                format=ReportFormat.CSV,
                section="growth",
            ),
        )
    # the job is the holder's: another organisation does not find it; the administrator does
    with pytest.raises(Exception, match="not found"):
        jobs.get_job(session=session, actor=grower, job_id=first.id)  # type: ignore[arg-type]
    assert jobs.get_job(session=session, actor=ADMIN, job_id=first.id).id == first.id  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the task, on committed rows


@pytest.fixture(scope="module")
def committed(databases) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """A migrated database of its own: the task opens its own sessions and commits."""
    from tests.conftest import migrate

    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=3)
    yield engine
    engine.dispose()


def _admin_job(engine: Engine, fmt: ReportFormat = ReportFormat.XLSX) -> tuple[int, int]:
    with session_scope(engine) as session:
        gi = f.gi_grower(session)
        f.harvest(session, gi.grower, prod=gi.fresh, loc=gi.area, designation_ids=[gi.gi.id], days_ago=2)
        admin, _ = f.user(session, None, Role.ADMIN, password="")
        actor = Actor(role=Role.ADMIN, organisation_id=None, user_id=admin.id, name="admin")
        year = today().year
        job = jobs.request_report(
            session=session,
            actor=actor,
            data=jobs.ReportIn(period_start=date(year, 1, 1), period_end=date(year, 12, 31), format=fmt),
        )
        return job.id, admin.id  # type: ignore[return-value]


def test_the_task_records_progress_and_the_file_and_run_twice_makes_one_file(
    committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, _ = _admin_job(committed)
    seen: list[int] = []
    real = jobs.heartbeat

    def watch(**kwargs: object) -> bool:
        with Session(committed) as look:  # what another process reads while the job is built
            row = look.get(ReportJob, job_id)
            assert row is not None and row.status == ReportStatus.BUILDING
        ok = real(**kwargs)  # type: ignore[arg-type]
        with Session(committed) as look:
            seen.append(look.get(ReportJob, job_id).progress)  # type: ignore[union-attr]
        return ok

    monkeypatch.setattr(jobs, "heartbeat", watch)
    assert worker.build_report(job_id, engine=committed) == "done"
    assert seen and seen == sorted(seen) and 0 < seen[-1] < 100
    with Session(committed) as session:
        job = session.get(ReportJob, job_id)
        assert job is not None and job.status == ReportStatus.DONE and job.progress == 100
        first = job.content
        assert first and job.size == len(first) and job.filename and job.filename.endswith(".xlsx")
        assert load_workbook(io.BytesIO(first)).sheetnames[0] == "Tổng hợp"
    # delivered again (a retry, a redelivery): nothing is built, the one file stays
    assert worker.build_report(job_id, engine=committed) == "skipped"
    with Session(committed) as session:
        again = session.get(ReportJob, job_id)
        assert again is not None and again.content == first and again.attempts == 1


def test_a_requester_who_lost_the_right_gets_a_failed_job_not_a_file(committed: Engine) -> None:
    job_id, admin_id = _admin_job(committed, ReportFormat.ZIP)
    with session_scope(committed) as session:
        session.execute(update(User).where(col(User.id) == admin_id).values(role=Role.MEMBER))
    assert worker.build_report(job_id, engine=committed) == "failed"
    with Session(committed) as session:
        job = session.get(ReportJob, job_id)
        assert job is not None and job.status == ReportStatus.FAILED and job.content is None
        assert job.error and job.error.startswith("Forbidden")


def test_a_job_whose_builder_died_is_claimed_again_when_its_lease_runs_out(committed: Engine) -> None:
    job_id, _ = _admin_job(committed)
    with session_scope(committed) as session:
        assert jobs.claim(session=session, job_id=job_id, token="dead", lease_seconds=-1) is not None
    with Session(committed) as session:
        assert job_id in jobs.due(session=session)
    assert worker.build_report(job_id, engine=committed) == "done"


def test_a_job_whose_message_was_lost_is_sent_again_by_the_sweep(
    committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, _ = _admin_job(committed)
    new, _ = _admin_job(committed)
    with session_scope(committed) as session:
        session.execute(
            update(ReportJob)
            .where(col(ReportJob.id) == old)
            .values(created_at=utcnow() - timedelta(seconds=driver.IN_FLIGHT_SECONDS + 5))
        )
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(driver, "send", lambda kind, job_id: sent.append((kind, job_id)))
    monkeypatch.setattr(driver, "waiting_messages", lambda: 0)  # the broker's queue is empty
    assert old in driver.sweep(committed)["report"] and ("report", old) in sent and ("report", new) not in sent
