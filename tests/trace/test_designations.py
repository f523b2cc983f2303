"""The designation registry, protected areas over pre-2025 units, and the holders' rights to use."""

from __future__ import annotations

import csv
import itertools
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from tests import factories as f
from trace.access import Actor, Role
from trace.designations import registry, rights
from trace.designations.models import (
    Designation,
    DesignationKind,
    InheritRule,
    RightStatus,
    RightToUse,
)
from trace.epcis import ids, render
from trace.errors import Conflict, Forbidden, NotFound, RuleViolation
from trace.events import chain
from trace.events.models import Event, EventType
from trace.locations import Location
from trace.organisations import Organisation
from trace.platform.timeutil import local_zone

FORMER_CSV = Path(__file__).resolve().parents[2] / "trace" / "data" / "former_communes.csv"
DECISIONS = itertools.count(1)
LONGAN_DISTRICTS = ["Thành phố Hưng Yên", "Khoái Châu", "Tiên Lữ", "Kim Động"]


def _former_rows() -> list[dict[str, str]]:
    with FORMER_CSV.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _registrar(session: Session) -> Actor:
    return f.member(f.org(session, "authority", name="Sở KH&CN thử nghiệm"), Role.ORG_ADMIN)


def _designation(session: Session, holder: Any | None = None, **extra: Any) -> Designation:
    holder = holder or f.org(session, "designation_holder", name="Hội nhãn lồng thử nghiệm")
    values: dict[str, Any] = {
        "kind": DesignationKind.GEOGRAPHICAL_INDICATION,
        "name_vi": "Nhãn lồng Hưng Yên",
        "holder_organisation_id": holder.id,
        "categories": ["longan_fresh"],
        "derived_categories": ["longan_dried"],
        "inherit_rule": InheritRule.ALL_INPUTS,
        "area_former_districts": LONGAN_DISTRICTS,
    }
    values.update(extra)
    return registry.create_designation(session=session, actor=f.ADMIN, data=registry.DesignationCreate(**values))


def _place(commune: str, former: str | None) -> Location:
    return Location(
        kind="growing_area", name="Vườn thử", commune_code=commune, former_commune_code=former, organisation_id=1
    )


# --------------------------------------------------------------------------- the protected area


def test_an_area_granted_over_former_districts_maps_to_their_communes_then_and_now(session: Session) -> None:
    # given the real district names of the longan GI, without and with their prefixes
    rows = [
        r
        for r in _former_rows()
        if r["district_name"] in {"Thành phố Hưng Yên", "Huyện Khoái Châu", "Huyện Tiên Lữ", "Huyện Kim Động"}
    ]
    # when
    gi = _designation(session)
    # then
    assert gi.area_former_districts == ["Thành phố Hưng Yên", "Huyện Khoái Châu", "Huyện Tiên Lữ", "Huyện Kim Động"]
    assert gi.area_former_communes == sorted(r["code"] for r in rows)
    assert gi.area_communes == sorted({c for r in rows for c in r["current_codes"].split("|")})
    assert "12208" in gi.area_former_communes  # Xã Đông Tảo, of Khoái Châu
    assert not any(r["province_name"] == "Tỉnh Thái Bình" for r in rows)


def test_a_khoai_chau_commune_is_inside_and_a_thai_binh_commune_is_not(session: Session) -> None:
    gi = _designation(session)
    dong_tao = _place("12070", "12208")  # today's Hoàn Long, formerly Đông Tảo of Khoái Châu
    dien_dien = _place("12826", "12826")  # Diêm Điền, formerly of Thái Thụy (Thái Bình)
    assert registry.in_area(gi, dong_tao) is True and registry.area_problem(gi, dong_tao) is None
    assert registry.in_area(gi, dien_dien) is False and registry.area_problem(gi, dien_dien) == "area_outside"


def test_a_place_is_judged_on_its_former_commune_when_todays_is_only_partly_inside(session: Session) -> None:
    # Today's Hoàn Long joined Đông Tảo (Khoái Châu, inside) with Đồng Than and Hoàn Long (Yên Mỹ, outside).
    gi = _designation(session)
    assert registry.in_area(gi, _place("12070", "12061")) is False
    assert registry.in_area(gi, _place("12070", None)) is None
    assert registry.area_problem(gi, _place("12070", None)) == "area_unknown_former_commune"


def test_a_todays_commune_wholly_made_of_granted_former_communes_is_inside_without_its_former(session: Session) -> None:
    # 11983 joined four communes of the former Hưng Yên city and part of Ngọc Thanh (Kim Động): all in the GI.
    gi = _designation(session)
    formers = {r["district_name"] for r in _former_rows() if "11983" in r["current_codes"].split("|")}
    assert formers <= {"Thành phố Hưng Yên", "Huyện Kim Động"}
    assert registry.in_area(gi, _place("11983", None)) is True


def test_a_split_former_commune_maps_to_both_of_todays_and_places_are_told_apart(session: Session) -> None:
    # Ngọc Thanh (12322) was split between today's 11983 and 12322.
    split = next(r for r in _former_rows() if r["code"] == "12322")
    assert split["current_codes"] == "11983|12322"
    mark = _designation(
        session,
        name_vi="Nhãn Ngọc Thanh",
        kind=DesignationKind.COLLECTIVE_TRADEMARK,
        area_former_districts=[],
        area_former_communes=["12322"],
    )
    assert mark.area_former_communes == ["12322"] and mark.area_communes == ["11983", "12322"]
    assert registry.in_area(mark, _place("11983", "12322")) is True
    assert registry.in_area(mark, _place("11983", "11950")) is False  # Lam Sơn: same commune today, not granted
    assert registry.area_problem(mark, _place("11983", None)) == "area_unknown_former_commune"


def test_a_grant_over_todays_communes_keeps_no_former_communes_and_judges_todays(session: Session) -> None:
    mark = _designation(
        session,
        name_vi="Mật ong thử",
        kind=DesignationKind.CERTIFICATION_TRADEMARK,
        area_former_districts=[],
        area_communes=["12070"],
        categories=["honey"],
        derived_categories=[],
        inherit_rule=InheritRule.NEVER,
    )
    assert mark.area_former_communes == [] and mark.area_former_districts == [] and mark.area_communes == ["12070"]
    assert registry.in_area(mark, _place("12070", "12061")) is True
    assert registry.in_area(mark, _place("11983", None)) is False


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"area_former_districts": ["Huyện Không Có"]}, "unknown_former_district"),
        ({"area_former_districts": [], "area_former_communes": ["99999"]}, "unknown_former_commune"),
        ({"area_former_districts": [], "area_communes": ["99999"]}, "unknown_commune"),
        ({"area_communes": ["12070"]}, "area_mixed"),
        ({"area_former_districts": []}, "area_required"),
        ({"categories": []}, "categories_required"),
        ({"derived_categories": []}, "derived_categories_required"),
        ({"holder_organisation_id": 10**9}, "unknown_holder"),
    ],
)
def test_a_designation_with_bad_data_is_refused_with_the_reason(
    session: Session, extra: dict[str, Any], code: str
) -> None:
    with pytest.raises(RuleViolation) as refused:
        _designation(session, **extra)
    assert refused.value.code == code
    assert session.exec(select(Designation)).first() is None


def test_the_same_designation_cannot_be_registered_twice(session: Session) -> None:
    first = _designation(session)
    with pytest.raises(Conflict) as refused:
        _designation(session, holder=session.get(Organisation, first.holder_organisation_id))
    assert refused.value.code == "designation_exists"


# --------------------------------------------------------------------------- who keeps the registry


def test_the_admin_or_an_authoritys_administrator_registers_designations(session: Session) -> None:
    holder = f.org(session, "designation_holder")
    data = registry.DesignationCreate(
        kind=DesignationKind.COLLECTIVE_TRADEMARK,
        name_vi="Gà Đông Tảo",
        holder_organisation_id=holder.id,
        categories=["chicken_live"],  # type: ignore[arg-type]
        area_former_communes=["12208"],
    )
    made = registry.create_designation(session=session, actor=_registrar(session), data=data)
    assert made.id is not None and made.name_vi == "Gà Đông Tảo"


@pytest.mark.parametrize("who", ["authority_member", "holder_admin", "cooperative_admin", "inspector"])
def test_others_may_not_write_the_registry(session: Session, who: str) -> None:
    gi = _designation(session)
    actor = {
        "authority_member": lambda: f.member(f.org(session, "authority"), Role.MEMBER),
        "holder_admin": lambda: Actor(role=Role.ORG_ADMIN, organisation_id=gi.holder_organisation_id),
        "cooperative_admin": lambda: f.member(f.org(session), Role.ORG_ADMIN),
        "inspector": lambda: f.member(f.org(session, "authority"), Role.INSPECTOR),
    }[who]()
    with pytest.raises(Forbidden) as refused:
        registry.update_designation(
            session=session,
            actor=actor,
            designation_id=gi.id,  # type: ignore[arg-type]
            data=registry.DesignationUpdate(name_vi="Nhãn khác"),
        )
    assert refused.value.code == "registrar_only"
    with pytest.raises(Forbidden):
        registry.create_designation(
            session=session,
            actor=actor,
            data=registry.DesignationCreate(
                kind=DesignationKind.COLLECTIVE_TRADEMARK,
                name_vi="Tỏi Thái Thụy",
                holder_organisation_id=gi.holder_organisation_id,
                categories=["garlic"],
            ),
        )
    session.refresh(gi)
    assert gi.name_vi == "Nhãn lồng Hưng Yên"


def test_an_update_maps_a_new_area_and_keeps_the_rest(session: Session) -> None:
    gi = _designation(session)
    # when
    changed = registry.update_designation(
        session=session,
        actor=f.ADMIN,
        designation_id=gi.id,  # type: ignore[arg-type]
        data=registry.DesignationUpdate(area_former_districts=["Thái Thụy"], rules_text="Vùng mới"),
    )
    # then
    thai_thuy = [r for r in _former_rows() if r["district_name"] == "Huyện Thái Thụy"]
    assert changed.area_former_districts == ["Huyện Thái Thụy"]
    assert changed.area_former_communes == sorted(r["code"] for r in thai_thuy)
    assert changed.name_vi == "Nhãn lồng Hưng Yên" and changed.rules_text == "Vùng mới"
    with pytest.raises(RuleViolation) as refused:
        registry.update_designation(
            session=session,
            actor=f.ADMIN,
            designation_id=gi.id,  # type: ignore[arg-type]
            data=registry.DesignationUpdate(categories=None),
        )
    assert refused.value.code == "required_field"


def test_the_registry_lists_and_filters_and_unknown_ids_are_not_found(session: Session) -> None:
    gi = _designation(session)
    honey = _designation(
        session,
        holder=None,
        name_vi="Mật ong hoa nhãn Hưng Yên",
        categories=["honey"],
        derived_categories=[],
        inherit_rule=InheritRule.NEVER,
        kind=DesignationKind.CERTIFICATION_TRADEMARK,
    )
    assert [d.id for d in registry.list_designations(session=session, category="longan_dried")] == [gi.id]
    assert [
        d.id for d in registry.list_designations(session=session, kind=DesignationKind.CERTIFICATION_TRADEMARK)
    ] == [honey.id]
    with pytest.raises(NotFound):
        registry.get_designation(session=session, designation_id=10**9)


# --------------------------------------------------------------------------- rights to use


def _local(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=local_zone())


def _world(session: Session) -> dict[str, Any]:
    holder = f.org(session, "designation_holder", name="Hội nhãn lồng thử nghiệm")
    gi = _designation(session, holder=holder)
    coop = f.org(session)
    inside = f.location(session, coop, commune_code="12070", former_commune_code="12208")
    fresh = f.product(session, coop, category="longan_fresh")
    return {
        "holder": holder,
        "gi": gi,
        "coop": coop,
        "inside": inside,
        "fresh": fresh,
        "admin": f.member(holder, Role.ORG_ADMIN),
        "member": f.member(holder, Role.MEMBER),
    }


def _grant(session: Session, w: dict[str, Any], **extra: Any) -> RightToUse:
    values: dict[str, Any] = {
        "organisation_id": w["coop"].id,
        "decision_number": f"{next(DECISIONS)}/QĐ-HNL",
        "valid_from": date(2026, 1, 1),
        "valid_to": date(2028, 12, 31),
    }
    values.update(extra)
    return rights.grant_right(
        session=session, actor=w["member"], designation_id=w["gi"].id, data=rights.RightCreate(**values)
    )


def _right_events(session: Session, holder_id: int) -> list[Event]:
    return list(
        session.exec(
            select(Event)
            .where(Event.organisation_id == holder_id, Event.type == EventType.RIGHT)
            .order_by(col(Event.seq))
        )
    )


def test_a_rights_lifecycle_is_written_in_the_holders_chain(session: Session) -> None:
    w = _world(session)
    today = date.today()
    # when: granted a year ago, suspended a week ago, reinstated three days ago, revoked today
    right = _grant(
        session,
        w,
        decision_number="12/QĐ-HNL",
        annual_label_quota=5000,
        product_ids=[w["fresh"].id],
        event_time=_local(today - timedelta(days=365)),
    )
    reason = rights.RightChange(reason="Kiểm tra vùng trồng", event_time=_local(today - timedelta(days=7)))
    rights.change_right(session=session, actor=w["admin"], right_id=right.id, action="suspend", data=reason)  # type: ignore[arg-type]
    rights.change_right(
        session=session,
        actor=w["member"],
        right_id=right.id,
        action="reinstate",  # type: ignore[arg-type]
        data=rights.RightChange(reason="Đã khắc phục", event_time=_local(today - timedelta(days=3))),
    )
    rights.change_right(
        session=session,
        actor=w["admin"],
        right_id=right.id,
        action="revoke",  # type: ignore[arg-type]
        data=rights.RightChange(reason="Vi phạm quy chế"),
    )
    # then
    events = _right_events(session, w["holder"].id)
    assert [e.payload["action"] for e in events] == ["grant", "suspend", "reinstate", "revoke"]
    grant = events[0].payload
    assert grant == {
        "action": "grant",
        "right_id": right.id,
        "designation_id": w["gi"].id,
        "grantee": w["coop"].id,
        "decision_number": "12/QĐ-HNL",
        "validity": {"from": "2026-01-01", "to": "2028-12-31"},
        "quota": 5000,
        "reason": None,
    }
    assert [e.payload["reason"] for e in events[1:]] == ["Kiểm tra vùng trồng", "Đã khắc phục", "Vi phạm quy chế"]
    assert all(e.destination_organisation_id == w["coop"].id for e in events)
    assert events[1].event_time.date() <= today - timedelta(days=7)
    assert right.status == RightStatus.REVOKED and right.status_reason == "Vi phạm quy chế"
    report = chain.verify(session=session, organisation_id=w["holder"].id)
    assert report.ok and report.events == 4
    # and each event got its EPCIS id as it was sealed: the one computed from the database afterwards
    recorded = [e.id for e in events]
    session.expire_all()
    found = session.connection().execute(render.SELECT.where(render.EVENTS.c.id.in_(recorded)))
    rows = render.rows(list(found.keys()), found.all())
    stored = {row["id"]: row["epcis_id"] for row in rows}
    assert len(stored) == 4 and None not in stored.values()
    assert stored == ids.compute(session.connection(), rows)


def test_a_revoked_right_is_final(session: Session) -> None:
    w = _world(session)
    right = _grant(session, w)
    rights.change_right(
        session=session,
        actor=w["admin"],
        right_id=right.id,
        action="revoke",  # type: ignore[arg-type]
        data=rights.RightChange(reason="Vi phạm"),
    )
    for action in ("reinstate", "suspend", "revoke"):
        with pytest.raises(Conflict) as refused:
            rights.change_right(
                session=session,
                actor=w["admin"],
                right_id=right.id,
                action=action,  # type: ignore[arg-type]
                data=rights.RightChange(reason="Thử lại"),
            )
        assert refused.value.code == "right_revoked"
    assert len(_right_events(session, w["holder"].id)) == 2


def test_only_a_suspended_right_is_reinstated_and_only_an_active_one_suspended(session: Session) -> None:
    w = _world(session)
    right = _grant(session, w)
    with pytest.raises(Conflict) as refused:
        rights.change_right(
            session=session,
            actor=w["admin"],
            right_id=right.id,
            action="reinstate",  # type: ignore[arg-type]
            data=rights.RightChange(reason="Không bị đình chỉ"),
        )
    assert refused.value.code == "right_active"
    rights.change_right(
        session=session,
        actor=w["admin"],
        right_id=right.id,
        action="suspend",  # type: ignore[arg-type]
        data=rights.RightChange(reason="Tạm dừng"),
    )
    with pytest.raises(Conflict) as again:
        rights.change_right(
            session=session,
            actor=w["admin"],
            right_id=right.id,
            action="suspend",  # type: ignore[arg-type]
            data=rights.RightChange(reason="Tạm dừng lần nữa"),
        )
    assert again.value.code == "right_suspended"


def test_the_changes_offered_for_a_right_are_those_its_status_allows_and_none_once_revoked(session: Session) -> None:
    assert rights.allowed_changes(RightStatus.ACTIVE) == ["suspend", "revoke"]
    assert rights.allowed_changes(RightStatus.SUSPENDED) == ["reinstate", "revoke"]
    assert rights.allowed_changes(RightStatus.REVOKED) == []
    # and each one offered is one change_right makes: a suspended right is reinstated as offered
    w = _world(session)
    right = _grant(session, w)
    for action in ("suspend", "reinstate"):
        assert action in rights.allowed_changes(right.status)
        right = rights.change_right(
            session=session,
            actor=w["admin"],
            right_id=right.id,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
            data=rights.RightChange(reason="Kiểm tra định kỳ"),
        )
    assert right.status == RightStatus.ACTIVE


def test_a_change_dated_before_the_last_one_is_refused_and_writes_nothing(session: Session) -> None:
    w = _world(session)
    right = _grant(session, w, event_time=_local(date.today() - timedelta(days=2)))
    with pytest.raises(RuleViolation) as refused:
        rights.change_right(
            session=session,
            actor=w["admin"],
            right_id=right.id,
            action="suspend",  # type: ignore[arg-type]
            data=rights.RightChange(reason="Lùi ngày", event_time=_local(date.today() - timedelta(days=5))),
        )
    assert refused.value.code == "change_before_last"
    session.refresh(right)
    assert right.status == RightStatus.ACTIVE and len(_right_events(session, w["holder"].id)) == 1


@pytest.mark.parametrize("who", ["grantee_admin", "other_org_admin", "province_admin", "inspector", "holder_inspector"])
def test_only_the_holders_people_grant_and_change_rights(session: Session, who: str) -> None:
    w = _world(session)
    right = _grant(session, w)
    actor = {
        "grantee_admin": lambda: f.member(w["coop"], Role.ORG_ADMIN),
        "other_org_admin": lambda: f.member(f.org(session, "designation_holder"), Role.ORG_ADMIN),
        "province_admin": lambda: f.ADMIN,
        "inspector": lambda: f.member(f.org(session, "authority"), Role.INSPECTOR),
        "holder_inspector": lambda: f.member(w["holder"], Role.INSPECTOR),
    }[who]()
    with pytest.raises(Forbidden) as refused:
        rights.grant_right(
            session=session,
            actor=actor,
            designation_id=w["gi"].id,
            data=rights.RightCreate(organisation_id=w["coop"].id, decision_number="99/QĐ", valid_from=date(2026, 1, 1)),
        )
    assert refused.value.code == "not_designation_holder"
    for action in ("suspend", "revoke"):
        with pytest.raises(Forbidden) as changed:
            rights.change_right(
                session=session,
                actor=actor,
                right_id=right.id,
                action=action,  # type: ignore[arg-type]
                data=rights.RightChange(reason="Không phải chủ sở hữu"),
            )
        assert changed.value.code == "not_designation_holder"  # not the lot's not_holder
    session.refresh(right)
    assert right.status == RightStatus.ACTIVE and len(_right_events(session, w["holder"].id)) == 1


@pytest.mark.parametrize(
    "case",
    [
        "foreign_product",
        "uncovered_category",
        "foreign_location",
        "outside_location",
        "unknown_former_location",
        "backwards",
        "unknown_grantee",
    ],
)
def test_a_grant_with_a_bad_scope_is_refused_and_writes_nothing(session: Session, case: str) -> None:
    w = _world(session)
    other = f.org(session)
    extra, code = {
        "foreign_product": lambda: ({"product_ids": [f.product(session, other).id]}, "product_not_grantees"),
        "uncovered_category": lambda: (
            {"product_ids": [f.product(session, w["coop"], category="garlic").id]},
            "category_not_covered",
        ),
        "foreign_location": lambda: ({"location_ids": [f.location(session, other).id]}, "location_not_grantees"),
        "outside_location": lambda: (
            {"location_ids": [f.location(session, w["coop"], commune_code="12826", former_commune_code="12826").id]},
            "area_outside",
        ),
        "unknown_former_location": lambda: (
            {"location_ids": [f.location(session, w["coop"], commune_code="12070").id]},
            "area_unknown_former_commune",
        ),
        "backwards": lambda: ({"valid_from": date(2027, 1, 1), "valid_to": date(2026, 12, 31)}, "invalid_validity"),
        "unknown_grantee": lambda: ({"organisation_id": 10**9}, "unknown_grantee"),
    }[case]()
    with pytest.raises(RuleViolation) as refused:
        _grant(session, w, **extra)
    assert refused.value.code == code
    assert session.exec(select(RightToUse)).first() is None and _right_events(session, w["holder"].id) == []


def test_one_decision_grants_one_right(session: Session) -> None:
    w = _world(session)
    _grant(session, w, decision_number="7/QĐ-HNL")
    with pytest.raises(Conflict) as refused:
        _grant(session, w, decision_number="7/QĐ-HNL")
    assert refused.value.code == "right_exists"


def test_no_right_is_granted_over_an_inactive_designation(session: Session) -> None:
    w = _world(session)
    registry.update_designation(
        session=session, actor=f.ADMIN, designation_id=w["gi"].id, data=registry.DesignationUpdate(active=False)
    )
    with pytest.raises(RuleViolation) as refused:
        _grant(session, w)
    assert refused.value.code == "designation_inactive"


# --------------------------------------------------------------------------- validity


def _check(session: Session, w: dict[str, Any], on: date, **extra: Any) -> tuple[RightToUse | None, str | None]:
    args = {"session": session, "designation_id": w["gi"].id, "organisation_id": w["coop"].id, "on": on, **extra}
    return rights.valid_right(**args), rights.right_problem(**args)


@pytest.mark.parametrize(
    ("on", "problem"),
    [
        (date(2025, 12, 31), "right_not_yet_valid"),
        (date(2026, 1, 1), None),
        (date(2028, 12, 31), None),
        (date(2029, 1, 1), "right_expired"),
    ],
)
def test_a_right_covers_its_first_and_last_day_and_nothing_outside(
    session: Session, on: date, problem: str | None
) -> None:
    w = _world(session)
    right = _grant(session, w)
    found, why = _check(session, w, on)
    assert why == problem
    assert (found.id if found else None) == (None if problem else right.id)


def test_an_open_ended_right_never_expires(session: Session) -> None:
    w = _world(session)
    _grant(session, w, valid_to=None)
    assert _check(session, w, date(2099, 1, 1))[1] is None


def test_no_right_at_all_is_named(session: Session) -> None:
    w = _world(session)
    assert _check(session, w, date(2026, 6, 1)) == (None, "no_right")


@pytest.mark.parametrize("action", ["suspend", "revoke"])
def test_a_suspension_or_revocation_counts_from_its_day_not_before(session: Session, action: str) -> None:
    w = _world(session)
    today = date.today()
    right = _grant(session, w, valid_from=today - timedelta(days=100), event_time=_local(today - timedelta(days=30)))
    rights.change_right(
        session=session,
        actor=w["admin"],
        right_id=right.id,
        action=action,  # type: ignore[arg-type]
        data=rights.RightChange(reason="Vi phạm", event_time=_local(today - timedelta(days=4), 9)),
    )
    code = "right_suspended" if action == "suspend" else "right_revoked"
    assert _check(session, w, today - timedelta(days=5)) == (right, None)  # the day before: the harvest stands
    assert _check(session, w, today - timedelta(days=4)) == (None, code)
    assert _check(session, w, today) == (None, code)


def test_a_right_scoped_to_products_and_places_names_what_falls_outside(session: Session) -> None:
    w = _world(session)
    other_place = f.location(session, w["coop"], commune_code="12070", former_commune_code="12208")
    dried = f.product(session, w["coop"], category="longan_dried")
    _grant(session, w, product_ids=[w["fresh"].id], location_ids=[w["inside"].id])
    on = date(2026, 7, 14)
    assert _check(session, w, on, product_id=w["fresh"].id, location_id=w["inside"].id)[1] is None
    assert _check(session, w, on, product_id=dried.id, location_id=w["inside"].id) == (None, "product_not_in_right")
    assert _check(session, w, on, product_id=w["fresh"].id, location_id=other_place.id) == (None, "area_not_in_right")
    assert _check(session, w, on)[1] is None  # nothing to scope: the right itself is valid


def test_with_several_rights_any_valid_one_counts_and_else_the_closest_reason_is_named(session: Session) -> None:
    w = _world(session)
    old = _grant(session, w, decision_number="1/QĐ", valid_from=date(2020, 1, 1), valid_to=date(2022, 12, 31))
    new = _grant(session, w, decision_number="2/QĐ", valid_from=date(2026, 1, 1), product_ids=[w["fresh"].id])
    assert _check(session, w, date(2021, 5, 1)) == (old, None)
    assert _check(session, w, date(2026, 5, 1), product_id=w["fresh"].id) == (new, None)
    other = f.product(session, w["coop"], category="longan_fresh")
    # the old right expired, the new one covers the date but not this product: the nearer miss is named
    assert _check(session, w, date(2026, 5, 1), product_id=other.id) == (None, "product_not_in_right")
    # between the two: the producer's right has lapsed (the next one has not begun yet)
    assert _check(session, w, date(2024, 5, 1)) == (None, "right_expired")


def test_another_organisations_right_does_not_count(session: Session) -> None:
    w = _world(session)
    _grant(session, w)
    args = {
        "session": session,
        "designation_id": w["gi"].id,
        "organisation_id": f.org(session).id,
        "on": date(2026, 7, 1),
    }
    assert rights.valid_right(**args) is None and rights.right_problem(**args) == "no_right"


def test_the_public_view_hides_the_terms_from_strangers(session: Session) -> None:
    w = _world(session)
    right = _grant(session, w, annual_label_quota=800, product_ids=[w["fresh"].id])
    rights.change_right(
        session=session,
        actor=w["admin"],
        right_id=right.id,
        action="suspend",  # type: ignore[arg-type]
        data=rights.RightChange(reason="Kiểm tra"),
    )
    stranger = rights.to_public(session=session, right=right, actor=None)
    grantee = rights.to_public(session=session, right=right, actor=f.member(w["coop"]))
    holder = rights.to_public(session=session, right=right, actor=w["member"])
    other = rights.to_public(session=session, right=right, actor=f.member(f.org(session)))
    assert (stranger.grantee_name, stranger.decision_number, stranger.status) == (
        w["coop"].name,
        right.decision_number,
        RightStatus.SUSPENDED,
    )
    assert stranger.annual_label_quota is None and stranger.status_reason is None and stranger.product_ids is None
    assert other.annual_label_quota is None
    assert grantee.annual_label_quota == holder.annual_label_quota == 800
    assert holder.status_reason == "Kiểm tra" and holder.product_ids == [w["fresh"].id]


# --------------------------------------------------------------------------- the demo's real designations


def test_the_demo_carries_the_five_real_designations_and_rights_covering_its_harvests(session: Session) -> None:
    from trace import demo
    from trace.lots import Lot

    # given
    demo.load_demo(session=session)
    by_name = {d.name_vi: d for d in session.exec(select(Designation))}
    # then: the registry holds PRODUCT.md's five, with their public numbers and dates
    assert set(by_name) == {
        "Nhãn lồng Hưng Yên",
        "Gà Đông Tảo",
        "Mật ong hoa nhãn Hưng Yên",
        "Giò chả Trai Trang",
        "Tỏi Thái Thụy",
    }
    longan = by_name["Nhãn lồng Hưng Yên"]
    assert (longan.kind, longan.registration_number, longan.decision_number, longan.decision_date) == (
        DesignationKind.GEOGRAPHICAL_INDICATION,
        "00055",
        "186/QĐ-SHTT",
        date(2017, 1, 23),
    )
    assert longan.area_former_districts == ["Thành phố Hưng Yên", "Huyện Khoái Châu", "Huyện Tiên Lữ", "Huyện Kim Động"]
    assert (longan.inherit_rule, longan.derived_categories) == (InheritRule.ALL_INPUTS, ["longan_dried"])
    assert (
        by_name["Mật ong hoa nhãn Hưng Yên"].decision_number,
        by_name["Mật ong hoa nhãn Hưng Yên"].decision_date,
    ) == ("34713/QĐ-SHTT", date(2016, 6, 13))
    assert (by_name["Giò chả Trai Trang"].registration_number, by_name["Giò chả Trai Trang"].decision_number) == (
        "422823",
        "41357/QĐ-SHTT",
    )
    assert by_name["Gà Đông Tảo"].area_former_communes == ["12208"]
    thai_thuy = {r["code"] for r in _former_rows() if r["district_name"] == "Huyện Thái Thụy"}
    assert set(by_name["Tỏi Thái Thụy"].area_former_communes) == thai_thuy
    holders = [session.get(Organisation, d.holder_organisation_id) for d in by_name.values()]
    assert all(h is not None and "(dữ liệu mẫu)" in h.name for h in holders)
    # and every demo harvest was made under a valid right, at a place inside the protected area
    lots = session.exec(
        select(Lot).join(Event, col(Event.id) == Lot.created_event_id).where(Event.type == EventType.HARVEST)
    ).all()
    chicken = by_name["Gà Đông Tảo"]
    assert len(lots) >= 20
    for lot in lots:
        mark = chicken if lot.unit == "head" else longan
        place = session.get(Location, lot.origin_location_id)
        assert place is not None and registry.in_area(mark, place) is True
        assert (
            rights.right_problem(
                session=session,
                designation_id=mark.id,
                organisation_id=lot.producer_organisation_id,  # type: ignore[arg-type]
                on=lot.production_date,
                product_id=lot.product_id,
                location_id=lot.origin_location_id,
            )
            is None
        ), lot.lot_code
    coop_right = session.exec(
        select(RightToUse).where(RightToUse.designation_id == longan.id).order_by(col(RightToUse.id))
    ).first()
    assert coop_right is not None and coop_right.annual_label_quota
    assert chain.verify(session=session, organisation_id=longan.holder_organisation_id).ok
