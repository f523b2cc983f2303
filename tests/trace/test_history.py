"""Master data keeps its history: edits make new versions, events and lots cite the version of their time."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from tests import factories as f
from trace import history, locations, organisations, products
from trace.access import Role
from trace.errors import Forbidden
from trace.events.models import Event
from trace.lots import Lot


def test_editing_an_organisation_stores_a_new_version_and_keeps_the_old(session: Session) -> None:
    coop = f.org(session, name="HTX Nhãn lồng Tân Hưng")
    old_name = coop.name
    organisations.update_organisation(
        session=session,
        actor=f.member(coop, Role.ORG_ADMIN),
        organisation_id=coop.id,  # type: ignore[arg-type]
        data=organisations.OrganisationUpdate(name="HTX Nhãn lồng Tân Hưng mới", practices_public=True),
    )
    assert coop.version == 2
    versions = history.history(session=session, entity="organisation", entity_id=coop.id)  # type: ignore[arg-type]
    assert [v.version for v in versions] == [1, 2]
    old = history.version_at(session=session, entity="organisation", entity_id=coop.id, version=1)  # type: ignore[arg-type]
    assert (old["name"], old["practices_public"]) == (old_name, False)
    assert (
        history.version_at(session=session, entity="organisation", entity_id=coop.id, version=2)["name"]
        == "HTX Nhãn lồng Tân Hưng mới"
    )  # type: ignore[arg-type]
    assert history.version_at(session=session, entity="organisation", entity_id=coop.id, version=3) == {}  # type: ignore[arg-type]


def test_events_keep_the_location_version_of_their_time(session: Session) -> None:
    # given a harvest at a growing area, which is then renamed and recoded, then a second harvest
    coop = f.org(session)
    prod, area = f.product(session, coop), f.location(session, coop, name="Vườn nhãn cũ", code="VN-HY-OLD01")
    before = f.harvest(session, coop, "10", prod=prod, loc=area)
    locations.update_location(
        session=session,
        actor=f.member(coop),
        location_id=area.id,  # type: ignore[arg-type]
        data=locations.LocationUpdate(name="Vườn nhãn mới", code="VN-HY-NEW01"),
    )
    after = f.harvest(session, coop, "10", prod=prod, loc=area, days_ago=1)
    # then each event cites the version it happened under, and that version's data is kept
    assert [e.location_version for e in (before.events[0], after.events[0])] == [1, 2]
    stored = session.get(Event, before.events[0].id)
    assert stored is not None and stored.location_version == 1
    old = history.version_at(session=session, entity="location", entity_id=area.id, version=stored.location_version)  # type: ignore[arg-type]
    assert (old["name"], old["code"]) == ("Vườn nhãn cũ", "VN-HY-OLD01")
    assert area.version == 2 and area.code == "VN-HY-NEW01"


def test_lots_keep_the_product_version_they_were_made_under(session: Session) -> None:
    coop = f.org(session)
    prod = f.product(session, coop, name_vi="Nhãn lồng Hưng Yên loại 1")
    lot_id = f.harvest(session, coop, "10", prod=prod).lot_ids[0]
    products.update_product(
        session=session,
        actor=f.member(coop),
        product_id=prod.id,  # type: ignore[arg-type]
        data=products.ProductUpdate(name_vi="Nhãn lồng Hưng Yên thượng hạng"),
    )
    lot = session.get(Lot, lot_id)
    assert lot is not None and (lot.product_version, prod.version) == (1, 2)
    old = history.version_at(session=session, entity="product", entity_id=prod.id, version=lot.product_version)  # type: ignore[arg-type]
    assert old["name_vi"] == "Nhãn lồng Hưng Yên loại 1" and old["gtin"] == prod.gtin


def test_an_empty_edit_makes_no_new_version(session: Session) -> None:
    coop = f.org(session)
    prod = f.product(session, coop)
    products.update_product(session=session, actor=f.member(coop), product_id=prod.id, data=products.ProductUpdate())  # type: ignore[arg-type]
    assert prod.version == 1
    assert len(history.history(session=session, entity="product", entity_id=prod.id)) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("entity", ["organisation", "location", "product"])
def test_only_the_owning_organisation_may_edit_its_master_data(session: Session, entity: str) -> None:
    owner, other = f.org(session), f.org(session)
    intruder = f.member(other, Role.ORG_ADMIN)
    with pytest.raises(Forbidden):
        if entity == "organisation":
            organisations.update_organisation(
                session=session,
                actor=intruder,
                organisation_id=owner.id,  # type: ignore[arg-type]
                data=organisations.OrganisationUpdate(name="Đổi tên"),
            )
        elif entity == "location":
            area = f.location(session, owner)
            locations.update_location(
                session=session, actor=intruder, location_id=area.id, data=locations.LocationUpdate(name="Đổi tên")
            )  # type: ignore[arg-type]
        else:
            prod = f.product(session, owner)
            products.update_product(
                session=session, actor=intruder, product_id=prod.id, data=products.ProductUpdate(name_vi="Đổi tên")
            )  # type: ignore[arg-type]
    assert len(history.history(session=session, entity="organisation", entity_id=owner.id)) == 1  # type: ignore[arg-type]


def test_a_plain_member_cannot_edit_the_organisation(session: Session) -> None:
    coop = f.org(session)
    with pytest.raises(Forbidden) as info:
        organisations.update_organisation(
            session=session,
            actor=f.member(coop),
            organisation_id=coop.id,  # type: ignore[arg-type]
            data=organisations.OrganisationUpdate(name="Đổi tên"),
        )
    assert info.value.code == "org_admin_only"
