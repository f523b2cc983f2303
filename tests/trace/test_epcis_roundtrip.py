"""Round trip: a lot's chain exported as EPCIS, captured into a fresh instance holding the same master
data (each organisation capturing its own events), exported again: the same events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from tests import factories as f
from tests.conftest import migrate
from tests.trace.test_epcis import build_chain, gs1_validator
from trace import locations, organisations, products
from trace.epcis import document
from trace.epcis import query as epcis_query
from trace.epcis.capture import capture_document
from trace.events import chain as ledger_chain
from trace.lots import Lot
from trace.units import Unit


@pytest.fixture
def other(fresh: tuple[str, Engine]) -> Iterator[Session]:
    """A second instance: its own, freshly migrated database."""
    url, engine = fresh
    migrate(url)
    with Session(engine, expire_on_commit=False) as session:
        yield session


def _copy_master(source: Session, target: Session, orgs: list[organisations.Organisation]) -> dict[str, Any]:
    """The same organisations, places and products (same tax codes, GLNs, codes, GTINs) in the other instance."""
    copies = {}
    for org in orgs:
        data = organisations.OrganisationCreate.model_validate(org, from_attributes=True)
        copy = organisations.create_organisation(session=target, actor=f.ADMIN, data=data)
        copies[org.tax_code] = copy
        for place in source.exec(select(locations.Location).where(locations.Location.organisation_id == org.id)):
            locations.create_location(
                session=target,
                actor=f.member(copy),
                data=locations.LocationCreate.model_validate(
                    place, from_attributes=True, update={"organisation_id": copy.id}
                ),
            )
        for product in source.exec(select(products.Product).where(products.Product.organisation_id == org.id)):
            products.create_product(
                session=target,
                actor=f.member(copy),
                data=products.ProductCreate.model_validate(
                    product, from_attributes=True, update={"organisation_id": copy.id}
                ),
            )
    return copies


def _export(session: Session, lot_id: int) -> list[dict[str, Any]]:
    body = json.loads(b"".join(document.stream(epcis_query.lot_chain(session=session, actor=f.ADMIN, lot_id=lot_id))))
    assert list(gs1_validator().iter_errors(body)) == []
    return body["epcisBody"]["eventList"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("units", [False, True], ids=["lots", "with_units"])
def test_export_capture_export_gives_the_same_events(session: Session, other: Session, units: bool) -> None:
    # given a chain of two organisations, with a loss declared erroneous (and labelled units packed in a carton)
    chain = build_chain(session, units=units)
    first = _export(session, chain.lot_id)
    kinds = {event["hytrace:eventType"] for event in first}
    assert ({"commission", "pack"} <= kinds) is units
    copies = _copy_master(session, other, [chain.grower, chain.processor])
    other.commit()
    # when each organisation captures its own run of the chain into the other instance, in order
    runs: list[tuple[str, list[dict[str, Any]]]] = []
    for event in first:
        owner = event["hytrace:organisation"].rsplit("/", 1)[-1]
        if runs and runs[-1][0] == owner:
            runs[-1][1].append(event)
        else:
            runs.append((owner, [event]))
    assert [owner for owner, _ in runs] == [chain.grower.tax_code, chain.processor.tax_code]
    for owner, events in runs:
        outcome = capture_document(session=other, actor=f.member(copies[owner]), document=document.document(events))
        assert outcome.recorded + outcome.corrections == len(events)
    other.commit()
    # then exporting the same lot there gives the same events (the record times are the new instance's own)
    fresh_lot = session.get(Lot, chain.lot_id)
    assert fresh_lot is not None
    copy_lot = other.exec(select(Lot).where(Lot.gtin == fresh_lot.gtin, Lot.lot_code == fresh_lot.lot_code)).one()
    second = _export(other, copy_lot.id)  # type: ignore[arg-type]
    for event in (*first, *second):
        event.pop("recordTime")
    assert second == first
    # and the other instance's chains are sound
    assert ledger_chain.verify(session=other).ok
    if units:
        # with the same units (lot and serial), each with a new human code of its own, packed alike
        def held(db: Session) -> dict[tuple[str, str, str], tuple[str | None, str]]:
            rows = db.exec(
                select(Lot.gtin, Lot.lot_code, Unit.serial, Unit.parent_id, Unit.code)  # type: ignore[call-overload]
                .select_from(Unit)
                .join(Lot, Lot.id == Unit.lot_id)
            ).all()
            assert len(rows) == len({(gtin, lot, serial) for gtin, lot, serial, _, _ in rows})
            return {(gtin, lot, serial): (parent, code) for gtin, lot, serial, parent, code in rows}

        mine, theirs = held(session), held(other)
        assert len(mine) == 3 and set(theirs) == set(mine)
        assert {k: v[0] for k, v in theirs.items()} == {k: v[0] for k, v in mine.items()}
        assert all(theirs[k][1] != mine[k][1] for k in mine)
