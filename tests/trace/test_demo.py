"""The demo data set: a whole longan season through the domain rules, loaded once, never twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from tests import factories as f
from trace import admin_units, demo
from trace.events import chain
from trace.events.models import Event, EventType
from trace.identifiers import gs1_prefix_country, is_valid_gtin, normalize_gtin
from trace.lineage import Direction, trace
from trace.locations import Location, LocationKind
from trace.lots import Lot, Shipment, ShipmentStatus
from trace.organisations import Organisation, OrgKind, public_name
from trace.products import Product
from trace.users import authenticate

Loaded = tuple[Session, demo.DemoSummary, int]  # the session, the first load's summary, organisations before


@pytest.fixture(scope="module")
def loaded(engine: Engine) -> Iterator[Loaded]:
    """One load for the whole module (the season takes a second or two), rolled back at the end.

    Tests here only read, or write inside a savepoint they roll back, so they stay independent.
    """
    connection = engine.connect()
    transaction = connection.begin()
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as sess:
        before = sess.exec(select(func.count()).select_from(Organisation)).one()
        yield sess, demo.load_demo(session=sess), before
    transaction.rollback()
    connection.close()


def _demo_orgs(session: Session) -> list[Organisation]:
    return list(session.exec(select(Organisation).where(col(Organisation.tax_code).startswith(demo.TAX_PREFIX))))


def _demo_events(session: Session) -> list[Event]:
    ids = [o.id for o in _demo_orgs(session)]
    return list(session.exec(select(Event).where(col(Event.organisation_id).in_(ids))))


def test_loading_an_empty_database_records_a_season_of_every_kind_of_event(loaded: Loaded) -> None:
    session, summary, orgs_before = loaded
    events = _demo_events(session)
    assert orgs_before == 0 and summary.created
    assert summary.organisations == len(_demo_orgs(session)) == len(demo.ORGS)
    assert 200 <= summary.events == len(events) <= 450
    assert summary.added_events == len(events)
    assert {e.type for e in events} == set(EventType)  # harvest … correction, all of them
    assert summary.users >= summary.organisations + 1  # every organisation has a user, plus the admin
    assert summary.lots >= 30 and summary.products == len(demo.PRODUCTS)


def test_every_event_is_in_the_past_and_harvests_fall_in_the_longan_season(loaded: Loaded) -> None:
    session, _, _ = loaded
    events = _demo_events(session)
    assert max(e.event_time for e in events) < datetime.now(UTC)
    fresh = session.exec(select(Product).where(Product.gtin == demo.demo_gtin("fresh"))).one()
    season = [e for e in events if e.type == EventType.HARVEST and e.payload["gtin"] == fresh.gtin]
    assert season and {e.event_time.month for e in season} <= {7, 8}
    if datetime.now(UTC) > datetime(2026, 10, 15, tzinfo=UTC):  # the 2026 season is over: it is the one shown
        assert {e.event_time.year for e in season} == {2026}


def test_the_hash_chain_of_the_demo_verifies(loaded: Loaded) -> None:
    session, _, _ = loaded
    report = chain.verify(session=session)
    assert report.ok, report.reason
    assert report.events >= 200


def test_demo_gtins_use_the_gs1_demonstration_prefix_952(loaded: Loaded) -> None:
    session, summary, _ = loaded
    ids = [o.id for o in _demo_orgs(session)]
    gtins = list(session.exec(select(Product.gtin).where(col(Product.organisation_id).in_(ids))))
    assert len(gtins) == len(demo.PRODUCTS)
    for gtin in [*gtins, summary.showcase_gtin]:
        assert gtin.startswith("0952") and is_valid_gtin(gtin) and normalize_gtin(gtin) == gtin
        assert gs1_prefix_country(gtin) == "DEMO"


def test_organisations_and_locations_sit_in_real_communes(loaded: Loaded) -> None:
    session, _, _ = loaded
    orgs = _demo_orgs(session)
    places = list(session.exec(select(Location).where(col(Location.organisation_id).in_([o.id for o in orgs]))))
    assert all(admin_units.commune(o.commune_code) is not None for o in orgs)  # type: ignore[arg-type]
    for place in places:
        assert admin_units.commune(place.commune_code) is not None
        if place.former_commune_code:
            former = admin_units.former_commune(place.former_commune_code)
            assert former is not None and place.commune_code in former.current_codes
    areas = [p for p in places if p.kind == LocationKind.GROWING_AREA]
    assert 3 <= len(areas) <= 4 and all(p.code and p.former_commune_code and p.area_ha for p in areas)
    # Nhãn lồng Hưng Yên's GI covers the former Hưng Yên city, Khoái Châu, Tiên Lữ and Kim Động.
    gi_districts = {"Thành phố Hưng Yên", "Huyện Khoái Châu", "Huyện Tiên Lữ", "Huyện Kim Động"}
    assert all(admin_units.former_commune(p.former_commune_code).district_name in gi_districts for p in areas)  # type: ignore[arg-type, union-attr]
    assert all(abs(p.latitude - 20.65) < 0.1 and abs(p.longitude - 106.05) < 0.1 for p in areas)  # type: ignore[operator]


def test_showcase_lot_traces_back_to_harvests_at_two_growing_areas(loaded: Loaded) -> None:
    session, summary, _ = loaded
    result = trace(session=session, actor=f.ADMIN, lot_id=summary.showcase_lot_id, direction=Direction.BACKWARD)
    root = next(lot for lot in result.lots if lot.id == summary.showcase_lot_id)
    origins = {lot.planting_area_code for lot in result.lots if lot.id != root.id}
    assert root.gtin == demo.demo_gtin("dried") and root.lot_code == summary.showcase_lot_code
    assert len(origins) == 2 and origins <= set(summary.growing_area_codes)
    assert {e.parent_lot_id for e in result.edges} == {lot.id for lot in result.lots if lot.id != root.id}
    assert any(e.type == EventType.TRANSFORM and e.payload["conversion"] for e in result.events)


def test_the_farm_household_name_is_hidden_from_the_public(loaded: Loaded) -> None:
    session, _, _ = loaded
    farm = next(o for o in _demo_orgs(session) if o.kind == OrgKind.FARM)
    shown = public_name(farm)
    assert not farm.personal_name_consent and farm.contact_person
    assert farm.contact_person not in shown and shown != farm.name
    assert "Hoàn Long" in shown


def test_the_mistaken_shipment_is_declared_erroneous_and_recorded_again(loaded: Loaded) -> None:
    session, _, _ = loaded
    correction = next(e for e in _demo_events(session) if e.type == EventType.CORRECTION)
    wrong = session.get(Event, correction.corrects_event_id)
    assert wrong is not None and wrong.type == EventType.SHIP
    cancelled = session.exec(select(Shipment).where(Shipment.event_id == wrong.id)).one()
    again = session.exec(select(Shipment).where(Shipment.lot_id == wrong.lot_id, Shipment.id != cancelled.id)).all()
    assert cancelled.status == ShipmentStatus.CANCELLED
    assert [s.status for s in again if s.from_organisation_id == wrong.organisation_id] == [ShipmentStatus.RECEIVED]


def test_loading_again_adds_nothing_and_reports_what_is_there(loaded: Loaded) -> None:
    session, first, _ = loaded
    # when
    second = demo.load_demo(session=session)
    # then
    assert not second.created and second.added_events == 0
    assert (second.organisations, second.users, second.lots, second.events) == (
        first.organisations,
        first.users,
        first.lots,
        first.events,
    )
    assert second.showcase_lot_id == first.showcase_lot_id
    assert "already present" in second.describe()


def test_reload_adds_recent_harvests_and_keeps_every_event(loaded: Loaded) -> None:
    session, first, _ = loaded
    before = {e.id for e in _demo_events(session)}
    nested = session.begin_nested()
    try:
        # when
        again = demo.load_demo(session=session, reload=True)
        # then
        after = _demo_events(session)
        new = [e for e in after if e.id not in before]
        assert before <= {e.id for e in after}
        assert again.added_events == len(new) > 0 and again.events == first.events + len(new)
        assert {e.type for e in new} == {EventType.HARVEST}
        assert all((datetime.now(UTC) - e.event_time).days < 1 for e in new)
        assert chain.verify(session=session).ok
    finally:
        nested.rollback()


def test_the_summary_names_the_showcase_and_working_demo_logins(loaded: Loaded) -> None:
    session, summary, _ = loaded
    text = summary.describe()
    lot = session.get(Lot, summary.showcase_lot_id)
    assert lot is not None and (lot.gtin, lot.lot_code) == (summary.showcase_gtin, summary.showcase_lot_code)
    assert f"/api/v1/lots/{lot.id}/trace?direction=backward" in text
    assert summary.showcase_gtin in text and summary.showcase_lot_code in text
    email, _, password = next(login for login in summary.logins if login[1] == "inspector")
    assert authenticate(session=session, email=email, password=password).role == "inspector"


def test_the_demo_is_refused_on_a_production_instance(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from trace.errors import RuleViolation
    from trace.platform.config import get_settings

    monkeypatch.setenv("HYTRACE_ENVIRONMENT", "production")
    monkeypatch.setenv("HYTRACE_SECRET_KEY", "Vq3r8ZtN1pLk6WsD0yHc4XbM7aJf2GuE")  # production takes no weak one
    get_settings.cache_clear()
    with pytest.raises(RuleViolation) as refused:
        demo.load_demo(session=session)
    assert refused.value.code == "demo_in_production"


def test_the_showcase_carries_the_longan_gi_inherited_from_its_harvests(loaded: Loaded) -> None:
    session, summary, _ = loaded
    from trace.designations.claims import claims_for_lot

    showcase = session.get(Lot, summary.showcase_lot_id)
    assert showcase is not None
    claims = claims_for_lot(session=session, lot=showcase, on=showcase.production_date)
    assert [(c.name, c.number, c.source.value, c.valid_at_harvest) for c in claims] == [
        ("Nhãn lồng Hưng Yên", "00055", "inherited", True)
    ]


def test_the_showcase_shows_the_certificates_its_makers_held_at_harvest(loaded: Loaded) -> None:
    session, summary, _ = loaded
    from trace.origin import build

    showcase = session.get(Lot, summary.showcase_lot_id)
    assert showcase is not None
    facts = build(session=session, lot=showcase, unit=None)
    shown = {(c.kind.value, c.stars, c.holder, c.valid_at_harvest) for c in facts.certificates}
    coop, proc = (
        session.exec(select(Organisation.name).where(Organisation.tax_code == demo.TAX_PREFIX + key)).one()
        for key in ("02", "04")
    )
    # the cooperative's VietGAP for the fresh longan it harvested, and the processor's OCOP for the dried
    assert shown == {("vietgap", None, coop, True), ("ocop", 4, proc, True)}
