"""Report files: queued once, built by the worker, downloaded only by the right people; bad forms refused."""

from __future__ import annotations

import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session, select

from tests.api.web.helpers import VI, form_token
from tests.api.web.people import People, as_user, idem
from trace.platform.timeutil import today
from trace.reports import jobs
from trace.reports.models import ReportJob, ReportStatus


def _build(session: Session, job_id: int) -> None:
    """What the worker does, in the test's transaction (workers.reports runs the same steps in its own)."""
    token = jobs.new_token()
    job = jobs.claim(session=session, job_id=job_id, token=token)
    assert job is not None
    built = jobs.build(
        session=session,
        job=job,
        on_progress=lambda p: jobs.heartbeat(session=session, job_id=job_id, token=token, progress=p),
    )
    assert jobs.finish(session=session, job_id=job_id, token=token, built=built)
    session.commit()


def _ask(client: TestClient, **over: Any) -> Any:
    page = client.get("/app/reports", headers=VI)
    year = today().year
    form = {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "from": f"{year}-01-01",
        "to": f"{year}-12-31",
        "format": "xlsx",
        "section": "summary",
        **over,
    }
    return client.post("/app/reports", data=form, headers=VI, follow_redirects=False), form


def test_a_report_is_queued_once_built_by_the_worker_and_downloaded_only_by_the_right_people(
    client: TestClient, session: Session, people: People
) -> None:
    as_user(client, people.holder_user)
    answer, form = _ask(client)
    assert answer.status_code == 303
    twice = client.post("/app/reports", data=form, headers=VI, follow_redirects=False)
    assert twice.headers["location"] == answer.headers["location"]
    job_id = int(answer.headers["location"].rsplit("/", 1)[1])
    assert people.sent == [job_id, job_id] and len(session.exec(select(ReportJob)).all()) == 1
    waiting = client.get(f"/app/reports/{job_id}", headers=VI)
    assert 'http-equiv="refresh"' in waiting.text and "đang chờ" in waiting.text
    assert client.get(f"/app/reports/{job_id}/file", headers=VI).status_code == 409

    _build(session, job_id)
    done = client.get(f"/app/reports/{job_id}", headers=VI)
    assert 'http-equiv="refresh"' not in done.text and f'href="/app/reports/{job_id}/file"' in done.text
    file = client.get(f"/app/reports/{job_id}/file", headers=VI)
    assert file.status_code == 200 and "attachment" in file.headers["content-disposition"]
    book = load_workbook(io.BytesIO(file.content))
    assert book.sheetnames == ["Tổng hợp", "Theo tháng", "Chỉ dẫn địa lý, nhãn hiệu"]

    # another holder and a cooperative cannot see it or download it; the administrator can
    for user in (people.other_holder_user, people.grower_user):
        as_user(client, user)
        assert client.get(f"/app/reports/{job_id}", headers=VI).status_code in (403, 404)
        assert client.get(f"/app/reports/{job_id}/file", headers=VI).status_code in (403, 404)
    as_user(client, people.admin)
    assert client.get(f"/app/reports/{job_id}/file", headers=VI).status_code == 200


def test_a_report_form_with_a_bad_period_or_no_section_for_a_csv_is_refused_and_writes_nothing(
    client: TestClient, session: Session, people: People
) -> None:
    as_user(client, people.admin)
    answer, _ = _ask(client, **{"from": "2026-05-01", "to": "2026-04-01"})
    assert answer.status_code == 422 and "Kỳ báo cáo kết thúc trước khi bắt đầu." in answer.text
    answer, _ = _ask(client, format="csv", section="")
    assert answer.status_code == 422
    answer, _ = _ask(client, csrf="forged")
    assert answer.status_code == 403
    assert session.exec(select(ReportJob)).all() == [] and people.sent == []
    # a CSV section for the province, built: a BOM, Vietnamese headings
    answer, _ = _ask(client, format="csv", section="organisations_by_kind")
    job_id = int(answer.headers["location"].rsplit("/", 1)[1])
    _build(session, job_id)
    file = client.get(f"/app/reports/{job_id}/file", headers=VI)
    assert file.content.startswith(b"\xef\xbb\xbf") and "Loại tổ chức" in file.content.decode("utf-8-sig")
    assert session.get(ReportJob, job_id).status == ReportStatus.DONE  # type: ignore[union-attr]
