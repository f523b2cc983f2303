"""The packing page: a packer scans a carton's code and its packages' codes, one per line, and the pack is
recorded once; refused lines are named in Vietnamese with nothing recorded; forged forms, another
organisation's goods and accounts that may not pack are refused as the JSON API refuses them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import bearer, snapshot
from tests.api.web.helpers import PASSWORD, VI, form_token, sign_in
from trace.access import Role
from trace.events.ledger import capture
from trace.events.models import Event, EventType
from trace.events.query import list_events
from trace.events.schemas import CommissionIn
from trace.identifiers import gs1_check_digit
from trace.lots import Lot
from trace.platform.config import get_settings
from trace.units import Unit, display_code, new_code

SSCC_BODY = "09521234000000042"
SSCC = SSCC_BODY + gs1_check_digit(SSCC_BODY)


@dataclass
class Packer:
    """A processor holding 40 kg of a cooperative's lot, with ``units`` of it labelled; its user signed in."""

    coop: Any
    processor: Any
    user: Any
    lot: Lot
    units: list[Unit]

    def uri(self, unit: Unit) -> str:
        return f"{get_settings().public_base_url}/01/{self.lot.gtin}/10/{self.lot.lot_code}/21/{unit.serial}"


def _labelled(session: Session, org: Any, lot_id: int, count: int) -> list[Unit]:
    serials = capture(
        session=session,
        actor=f.member(org),
        items=[(EventType.COMMISSION, CommissionIn(lot_id=lot_id, count=count, event_time=f.when(1)))],
    ).serials
    found = {u.serial: u for u in session.execute(select(Unit).where(Unit.lot_id == lot_id)).scalars()}  # type: ignore[arg-type]
    return [found[s] for s in serials]


def _packer(client: TestClient, session: Session, kind: str = "processor", count: int = 4) -> Packer:
    coop, processor = f.org(session), f.org(session, kind)
    user, _ = f.user(session, processor, Role.MEMBER, password=PASSWORD)
    lot = session.get(Lot, f.harvest(session, coop, "100", lot_code="NL-2026-09").lot_ids[0])
    assert lot is not None
    f.receive(session, processor, f.ship(session, coop, lot.id, processor, "40").shipment_id)  # type: ignore[arg-type]
    units = _labelled(session, processor, lot.id, count)  # type: ignore[arg-type]
    session.commit()
    assert sign_in(client, user.email).status_code == 303  # type: ignore[attr-defined]
    return Packer(coop, processor, user, lot, units)


def _form(client: TestClient) -> dict[str, str]:
    page = client.get("/app/pack", headers=VI)
    assert page.status_code == 200, page.text
    idem = re.search(r'name="idem" value="([^"]+)"', page.text)
    assert idem
    return {"csrf": form_token(page.text), "idem": idem.group(1), "location_id": "", "day": ""}


def _post(client: TestClient, form: dict[str, str], **data: str) -> Any:
    return client.post("/app/pack", data={**form, **data}, headers=VI, follow_redirects=False)


def _written(session: Session) -> dict[str, Any]:
    """Every row but the sign-in sessions' (signing in and browsing touch those)."""
    return {table: rows for table, rows in snapshot(session).items() if table != "web_session"}


def _packs(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Event).where(Event.type == EventType.PACK)).scalar_one()  # type: ignore[arg-type]


def _packed(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Unit).where(Unit.parent_id.is_not(None))).scalar_one()  # type: ignore[union-attr]


# --- the happy path ------------------------------------------------------------------------------------


def test_a_packer_scans_a_carton_and_its_packages_and_sees_what_went_in(client: TestClient, session: Session) -> None:
    p = _packer(client, session)
    # given the menu offers packing
    home = client.get("/app", headers=VI).text
    assert 'href="/app/pack">Đóng gói</a>' in home
    # when the carton and four packages are scanned (a phone scanner: code + Enter) or typed
    codes = (
        "\r\n".join(
            [
                p.uri(p.units[0]),
                display_code(p.units[1].code),
                p.units[2].code.lower(),
                f"(01){p.lot.gtin}(10){p.lot.lot_code}(21){p.units[3].serial}",
            ]
        )
        + "\r\n"
    )
    answer = _post(client, _form(client), parent=f"(00){SSCC}\r\n", codes=codes)  # the scanner's Enter too
    # then one pack is recorded and the page shows the carton, how many, of which lot
    assert answer.status_code == 303 and answer.headers["location"].startswith("/app/pack/")
    event_id = answer.headers["location"].rsplit("/", 1)[1]
    done = client.get(answer.headers["location"], headers=VI)
    assert done.status_code == 200
    assert "Đã đóng gói: 4 gói hàng" in done.text and f"SSCC (00) {SSCC}" in done.text
    assert "NL-2026-09" in done.text and '<td class="num">4</td>' in done.text
    assert f'href="/app/pack?parent={SSCC}"' in done.text
    more = client.get(f"/app/pack?parent={SSCC}", headers=VI).text  # packing more into it starts from the carton
    assert re.search(rf'name="parent"[^>]*>{SSCC}</textarea>', more)
    # and the JSON API's read of the lot's events shows the aggregation, with every unit in the carton
    events = list_events(session=session, actor=f.member(p.processor), event_type=EventType.PACK, lot_id=p.lot.id)
    assert [e.id for e in events] == [event_id] and events[0].action == "ADD"
    assert events[0].payload["parent_id"] == SSCC
    assert events[0].payload["children"] == [{"lot_id": p.lot.id, "serial": u.serial} for u in p.units]
    inside = session.execute(select(Unit.serial).where(Unit.parent_id == SSCC)).scalars().all()  # type: ignore[arg-type]
    assert sorted(inside) == sorted(u.serial for u in p.units)


def test_a_date_and_a_place_go_with_the_pack(client: TestClient, session: Session) -> None:
    p = _packer(client, session, count=1)
    place = f.location(session, p.processor, kind="packing_facility", name="Xưởng đóng gói Phố Hiến")
    session.commit()
    future = _post(client, {**_form(client), "day": "2099-01-01"}, parent=SSCC, codes=p.units[0].code)
    assert future.status_code == 422 and "Ngày đã chọn nằm trong tương lai." in future.text and _packs(session) == 0
    yesterday = f.when(1).astimezone().date().isoformat()
    form = {**_form(client), "location_id": str(place.id), "day": yesterday}
    answer = _post(client, form, parent=SSCC, codes=p.units[0].code)
    assert answer.status_code == 303, answer.text
    event = session.get(Event, answer.headers["location"].rsplit("/", 1)[1])
    assert event is not None and event.location_id == place.id


# --- refusals ------------------------------------------------------------------------------------------


def test_a_bad_line_is_named_in_vietnamese_and_nothing_is_recorded(client: TestClient, session: Session) -> None:
    p = _packer(client, session)
    before = _written(session)
    unknown = new_code()
    codes = f"{p.units[0].code}\n{display_code(unknown)}\n{p.units[1].code}\n{p.units[0].code}"
    answer = _post(client, _form(client), parent=SSCC, codes=codes)
    assert answer.status_code == 422
    assert "2 trên 4 dòng không đóng gói được: chưa ghi nhận gì." in answer.text
    rows = re.findall(
        r'<tr data-code="([a-z_]+)"><td class="num">Dòng (\d+)</td><td[^>]*>([^<]*)</td><td class="error">([^<]*)</td>',
        answer.text,
    )
    assert rows == [
        (
            "unknown_unit",
            "2",
            display_code(unknown),
            "Hệ thống chưa từng cấp mã này: nhãn có thể không phải hàng thật.",
        ),
        ("duplicate", "4", p.units[0].code, "Trùng với gói ở dòng 1."),
    ]
    assert f">{codes}</textarea>" in answer.text  # what was scanned stays, to be corrected
    # a wrong SSCC check digit is said beside the carton's field
    wrong = SSCC[:17] + str((int(SSCC[17]) + 1) % 10)
    answer = _post(client, _form(client), parent=wrong, codes=p.units[0].code)
    assert answer.status_code == 422 and "Chữ số cuối (số kiểm tra) của mã SSCC không khớp" in answer.text
    empty = _post(client, _form(client), parent=SSCC, codes=" \r\n ")
    assert empty.status_code == 422 and "Hãy quét hoặc gõ ít nhất một mã, mỗi dòng một mã." in empty.text
    assert _written(session) == before


def test_a_forged_form_is_refused_and_records_nothing(client: TestClient, session: Session) -> None:
    p = _packer(client, session)
    answer = client.post(
        "/app/pack",
        data={"csrf": "0" * 64, "idem": "k1", "parent": SSCC, "codes": p.units[0].code},
        headers=VI,
        follow_redirects=False,
    )
    assert answer.status_code == 403 and "Bị từ chối" in answer.text
    assert _packs(session) == 0 and _packed(session) == 0


def test_a_form_sent_twice_packs_once(client: TestClient, session: Session) -> None:
    p = _packer(client, session)
    form = _form(client)
    codes = "\n".join(u.code for u in p.units)
    first = _post(client, form, parent=SSCC, codes=codes)
    again = _post(client, form, parent=SSCC, codes=codes)
    assert first.status_code == again.status_code == 303 and first.headers["location"] == again.headers["location"]
    assert _packs(session) == 1 and _packed(session) == len(p.units)
    # a fresh form with the same codes is refused: they are in the carton already
    later = _post(client, _form(client), parent=SSCC, codes=codes)
    assert later.status_code == 422 and f"Đã được đóng vào thùng {SSCC}." in later.text and _packs(session) == 1


def test_another_organisations_packages_and_pages_are_refused(client: TestClient, session: Session) -> None:
    p = _packer(client, session)
    done = _post(client, _form(client), parent=SSCC, codes=p.units[0].code)
    assert done.status_code == 303
    # another processor with labels of its own signs in on the same browser
    other = f.org(session, "processor")
    stranger, _ = f.user(session, other, Role.MEMBER, password=PASSWORD)
    own = f.harvest(session, other, "10").lot_ids[0]
    mine = _labelled(session, other, own, 1)  # type: ignore[arg-type]
    session.commit()
    client.cookies.clear()
    assert sign_in(client, stranger.email).status_code == 303  # type: ignore[attr-defined]
    before = _written(session)
    answer = _post(
        client,
        _form(client),
        parent=f"{SSCC_BODY[:-1]}9{gs1_check_digit(SSCC_BODY[:-1] + '9')}",
        codes=f"{mine[0].code}\n{p.units[1].code}",
    )
    assert answer.status_code == 422 and "Gói này thuộc lô mà tổ chức của bạn không giữ." in answer.text
    assert "Dòng 2" in answer.text and "Dòng 1" not in answer.text
    # nor may it add its goods to the first processor's carton
    answer = _post(client, _form(client), parent=SSCC, codes=mine[0].code)
    assert answer.status_code == 422 and "Thùng này đang chứa hàng của tổ chức khác." in answer.text
    assert _written(session) == before
    page = client.get(done.headers["location"], headers=VI)
    assert page.status_code == 404 and "NL-2026-09" not in page.text


def test_who_may_not_pack_is_refused_as_by_the_json_api(client: TestClient, session: Session) -> None:
    p = _packer(client, session)
    # given the cooperative shipped the rest of its lot too: it holds none of what the processor labelled
    rest = f.ship(session, p.coop, p.lot.id, p.processor, "60", days_ago=0.5).shipment_id  # type: ignore[arg-type]
    f.receive(session, p.processor, rest, days_ago=0.4)  # type: ignore[arg-type]
    member, token = f.user(session, p.coop, Role.MEMBER, password=PASSWORD)
    inspector, inspector_token = f.user(session, f.org(session, "authority"), Role.INSPECTOR, password=PASSWORD)
    session.commit()
    body = {"parent_id": SSCC, "children": [{"lot_id": p.lot.id, "serial": p.units[0].serial}]}
    before = _written(session)
    # when a cooperative member signs in: no packing in the menu, and the processor's packages are refused
    client.cookies.clear()
    assert sign_in(client, member.email).status_code == 303  # type: ignore[attr-defined]
    assert 'href="/app/pack"' not in client.get("/app", headers=VI).text
    answer = _post(client, _form(client), parent=SSCC, codes=p.units[0].code)
    assert answer.status_code == 422 and "Gói này thuộc lô mà tổ chức của bạn không giữ." in answer.text
    api = client.post("/api/v1/events/pack", headers=bearer(token), json=body)
    assert api.status_code == 403 and api.json()["code"] == "not_holder"
    # and an inspector, who records no events for an organisation, is refused as the API refuses
    client.cookies.clear()
    assert sign_in(client, inspector.email).status_code == 303  # type: ignore[attr-defined]
    answer = _post(client, _form(client), parent=SSCC, codes=p.units[0].code)
    assert answer.status_code == 403 and "Tài khoản của bạn không được ghi sự kiện cho tổ chức." in answer.text
    api = client.post("/api/v1/events/pack", headers=bearer(inspector_token), json=body)
    assert api.status_code == 403 and api.json()["code"] == "not_a_writer"
    assert _written(session) == before


def test_a_cooperative_may_pack_its_own_labelled_goods_as_the_json_api_allows(
    client: TestClient, session: Session
) -> None:
    # the page decides nothing of its own: a cooperative packing packages of a lot it holds is accepted
    p = _packer(client, session)
    member, _ = f.user(session, p.coop, Role.MEMBER, password=PASSWORD)
    own = _labelled(session, p.coop, p.lot.id, 2)  # type: ignore[arg-type]
    session.commit()
    client.cookies.clear()
    assert sign_in(client, member.email).status_code == 303  # type: ignore[attr-defined]
    answer = _post(client, _form(client), parent=SSCC, codes="\n".join(u.code for u in own))
    assert answer.status_code == 303 and _packs(session) == 1 and _packed(session) == 2
