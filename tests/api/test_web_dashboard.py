"""The dashboard's pages: the province's for its administrator, a read-only one for a designation holder,
refused to a cooperative; the administrator's targets form (forged forms refused, a double submit recorded
once); reports asked for, built and downloaded only by the organisation that asked (or the administrator)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session, col, select

from tests import factories as f
from tests.api.helpers import jobs_sent, snapshot
from tests.api.test_web_auth import PASSWORD, VI, form_token, sign_in
from trace.access import Role
from trace.organisations import Organisation
from trace.platform.timeutil import local_zone, today
from trace.reports import jobs
from trace.reports.models import Indicator, PlanTarget, ReportJob, ReportStatus
from trace.users import User


@dataclass
class People:
    admin: User
    holder: Organisation
    holder_user: User
    other_holder_user: User
    grower_user: User
    gi: f.GiGrower
    sent: list[int]


@pytest.fixture
def people(client: TestClient, session: Session) -> People:
    gi = f.gi_grower(session)
    f.harvest(session, gi.grower, prod=gi.fresh, loc=gi.area, designation_ids=[gi.gi.id], days_ago=2)
    f.harvest(session, gi.grower, days_ago=3)
    admin, _ = f.user(session, None, Role.ADMIN, password=PASSWORD)
    holder_user, _ = f.user(session, gi.holder, Role.MEMBER, password=PASSWORD)
    other = f.org(session, "designation_holder", name="Hội Gà Đông Tảo (thử nghiệm)")
    f.designation(session, other, name_vi="Gà Đông Tảo (thử)", categories=["chicken_live"])
    other_user, _ = f.user(session, other, Role.ORG_ADMIN, password=PASSWORD)
    grower_user, _ = f.user(session, gi.grower, Role.ORG_ADMIN, password=PASSWORD)
    session.commit()
    sent = jobs_sent(client, "report")
    return People(admin, gi.holder, holder_user, other_user, grower_user, gi, sent)


def as_user(client: TestClient, user: User) -> None:
    client.cookies.clear()
    assert sign_in(client, user.email).status_code == 303  # type: ignore[attr-defined]


def idem(page: str) -> str:
    found = re.search(r'name="idem" value="([^"]+)"', page)
    assert found, "the form has no once-only key"
    return found.group(1)


def figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">([^<]*)<', page)
    assert found, name
    return found.group(1)


def test_the_administrator_sees_the_province_dashboard_with_charts_and_tables(
    client: TestClient, session: Session, people: People
) -> None:
    as_user(client, people.admin)
    page = client.get("/app/dashboard", headers=VI)
    assert page.status_code == 200
    assert "Bảng điều khiển của tỉnh" in page.text and page.text.count("<svg") >= 4 + 4
    assert 'role="img"' in page.text and "<title" in page.text and "<table" in page.text
    # figures counted here: the lots harvested this year and the active organisations
    from trace.lots import Lot

    year = today().year
    lots = [lt for lt in session.exec(select(Lot)).all() if lt.created_at.astimezone(local_zone()).year == year]
    assert figure(page.text, "lots") == str(len(lots))
    orgs = session.exec(select(Organisation).where(col(Organisation.active).is_(True))).all()
    assert figure(page.text, "organisations") == f"{len(orgs)}"
    assert people.gi.gi.name_vi in page.text
    # the menu offers it
    assert 'href="/app/dashboard"' in page.text
    # a year and a period chosen; a period backwards is refused with words
    assert client.get(f"/app/dashboard?year={year - 1}", headers=VI).status_code == 200
    bad = client.get("/app/dashboard?from=2026-05-01&to=2026-04-01", headers=VI)
    assert bad.status_code == 422 and "Kỳ báo cáo kết thúc trước khi bắt đầu." in bad.text
    assert client.get("/app/dashboard?year=abc", headers=VI).status_code == 422
    half = client.get("/app/dashboard?from=&to=2026-01-01", headers=VI)
    assert half.status_code == 422 and "Hãy chọn cả hai ngày của kỳ báo cáo." in half.text
    english = client.get("/app/dashboard?lang=en")
    assert "Province dashboard" in english.text


def test_a_holder_sees_its_own_designations_read_only_and_is_sent_there_from_the_province_page(
    client: TestClient, people: People
) -> None:
    as_user(client, people.holder_user)
    away = client.get("/app/dashboard", headers=VI, follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/app/dashboard/designations"
    page = client.get("/app/dashboard/designations", headers=VI)
    assert page.status_code == 200 and people.gi.gi.name_vi in page.text and "Gà Đông Tảo (thử)" not in page.text
    assert figure(page.text, "lots") == "1"  # the lot claiming the GI, not the plain one
    assert '<form method="post"' not in page.text.split("</nav>", 1)[1]  # read-only: no form that writes
    as_user(client, people.other_holder_user)
    other = client.get("/app/dashboard/designations", headers=VI)
    assert "Gà Đông Tảo (thử)" in other.text and people.gi.gi.name_vi not in other.text


def test_a_cooperative_is_refused_every_dashboard_page_in_vietnamese(client: TestClient, people: People) -> None:
    as_user(client, people.grower_user)
    for path in ("/app/dashboard", "/app/dashboard/designations", "/app/dashboard/targets", "/app/reports"):
        answer = client.get(path, headers=VI, follow_redirects=False)
        assert answer.status_code == 403, path
        assert "Không được phép" in answer.text or "Chỉ" in answer.text
    client.cookies.clear()
    assert client.get("/app/dashboard", follow_redirects=False).status_code == 303  # not signed in: to /login


def _target_form(client: TestClient, **over: Any) -> dict[str, Any]:
    page = client.get("/app/dashboard/targets", headers=VI)
    assert page.status_code == 200
    return {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "indicator": "labels",
        "year": str(today().year),
        "value": "1.500",
        "note": "KH 197/KH-UBND",
        **over,
    }


def test_the_administrator_sets_a_target_once_and_the_growth_chart_draws_its_line(
    client: TestClient, session: Session, people: People
) -> None:
    as_user(client, people.admin)
    before = client.get("/app/dashboard", headers=VI).text
    assert before.count('class="target"') == 0  # no target entered: no target line
    form = _target_form(client)
    first = client.post("/app/dashboard/targets", data=form, headers=VI, follow_redirects=False)
    again = client.post("/app/dashboard/targets", data=form, headers=VI, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    rows = session.exec(select(PlanTarget)).all()
    assert [(r.indicator, r.value, r.set_by_user_id) for r in rows] == [(Indicator.LABELS, 1500, people.admin.id)]
    page = client.get(first.headers["location"], headers=VI).text
    block = page.split('data-indicator="labels"', 1)[1].split("data-indicator=", 1)[0]
    assert "1.500" in block and 'class="target"' not in block  # one year with a target: a mark, no line yet
    assert "<rect" in block and "Chỉ tiêu" in block
    # a second year's target makes a line
    client.post(
        "/app/dashboard/targets", data=_target_form(client, year=str(today().year - 1), value="900"), headers=VI
    )
    page = client.get("/app/dashboard", headers=VI).text
    block = page.split('data-indicator="labels"', 1)[1].split("data-indicator=", 1)[0]
    assert 'class="target"' in block and "900" in block
    # a value that is not a whole number is refused beside the field, nothing written
    bad = client.post("/app/dashboard/targets", data=_target_form(client, value="1,5"), headers=VI)
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    assert len(session.exec(select(PlanTarget)).all()) == 2


def test_a_forged_targets_form_is_refused_and_writes_nothing(
    client: TestClient, session: Session, people: People
) -> None:
    as_user(client, people.admin)
    form = _target_form(client, csrf="forged")
    before = snapshot(session)
    answer = client.post("/app/dashboard/targets", data=form, headers=VI, follow_redirects=False)
    assert answer.status_code == 403
    assert snapshot(session) == before
    # and a holder's genuine form is refused too: targets are the administrator's
    as_user(client, people.holder_user)
    page = client.get("/app/reports", headers=VI)
    answer = client.post(
        "/app/dashboard/targets",
        data={"csrf": form_token(page.text), "idem": "x", "indicator": "labels", "year": "2026", "value": "1"},
        headers=VI,
    )
    assert answer.status_code == 403 and session.exec(select(PlanTarget)).all() == []


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


def test_a_chart_scales_to_a_phone_names_itself_and_writes_numbers_the_vietnamese_way() -> None:
    from api.web import charts

    svg = charts.grouped(
        "Lô hàng theo tháng",
        ["1/26", "2/26"],
        [charts.Series("Thu hoạch", [1234, 0]), charts.Series("Chế biến", [5, None])],
        "vi",
    )
    assert 'viewBox="0 0 360 200"' in svg and 'width="100%"' in svg and 'aria-label="Lô hàng theo tháng"' in svg
    assert "<title>Thu hoạch, 1/26: 1.234</title>" in svg and "<title>Chế biến, 2/26: 0</title>" in svg
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
    # no target set anywhere: no target line and no legend for one
    line = charts.against_target(
        "Tem", ["2025", "2026"], charts.Series("Thực hiện", [10, 20]), charts.Series("Chỉ tiêu", [None, None]), "vi"
    )
    assert 'class="target"' not in line and "Chỉ tiêu" not in line and 'class="actual"' in line
    # a gap in the targets is not bridged: two separate marks, no line invented between them
    gap = charts.against_target(
        "Tem",
        ["2024", "2025", "2026"],
        charts.Series("Thực hiện", [1, 2, 3]),
        charts.Series("Chỉ tiêu", [5, None, 7]),
        "vi",
    )
    assert 'class="target"' not in gap and gap.count("<title>Chỉ tiêu") == 2
    assert (
        "<" not in str(charts.bars("<b>", ["x"], [1], "vi")).split("<title", 1)[1].split(">", 1)[1].split("</title>")[0]
    )
