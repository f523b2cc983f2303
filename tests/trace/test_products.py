"""Products: GTINs given (any length, stored as GTIN-14) or assigned from the instance's prefix."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import Session

from tests import factories as f
from trace import products
from trace.errors import Conflict, Forbidden, InvalidIdentifier, RuleViolation
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import HarvestIn, TransformIn, TransformInput, TransformOutput
from trace.organisations import Organisation
from trace.platform.config import get_settings


def check_digit(body: str) -> str:
    """GS1 mod-10, written out independently: weights 3,1,3,... from the right of the body."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def valid(number: str) -> bool:
    return number.isdigit() and len(number) == 14 and check_digit(number[:-1]) == number[-1]


def create(session: Session, o: Organisation, gtin: str | None = None, unit: str = "kg") -> products.Product:
    data = products.ProductCreate(name_vi="Mật ong hoa nhãn", category="honey", unit=unit, gtin=gtin)
    return products.create_product(session=session, actor=f.member(o), data=data)


@pytest.mark.parametrize(
    "body", ["9521234", "95212345678", "952123456789", "1952123456789"], ids=["gtin8", "gtin12", "gtin13", "gtin14"]
)
def test_a_given_gtin_of_any_length_is_stored_as_gtin14(session: Session, body: str) -> None:
    given = body + check_digit(body)
    product = create(session, f.org(session), given)
    assert product.gtin == given.rjust(14, "0") and not product.gtin_assigned
    assert products.product_by_gtin(session=session, gtin=given).id == product.id


def wrong_check(body: str) -> str:
    return body + str((int(check_digit(body)) + 1) % 10)


@pytest.mark.parametrize(
    ("gtin", "code"),
    [
        (wrong_check("952123456789"), "gtin_check_digit"),
        (wrong_check("9521234"), "gtin_check_digit"),
        ("95212345678", "gtin_length"),
        ("95212345678A", "gtin_not_digits"),
    ],
)
def test_a_malformed_gtin_is_refused_with_its_code(session: Session, gtin: str, code: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        create(session, f.org(session), gtin)
    assert info.value.code == code


def test_a_gtin_is_registered_once_whatever_its_written_length(session: Session) -> None:
    body = "952123456700"
    gtin13 = body + check_digit(body)
    create(session, f.org(session), gtin13)
    for again in (gtin13, "0" + gtin13):
        with pytest.raises(Conflict) as info:
            create(session, f.org(session), again)
        assert info.value.code == "gtin_taken"


def test_assigned_gtins_come_from_the_configured_prefix_valid_and_distinct(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an instance prefix, with the first two numbers under it already registered by hand
    prefix = "95299887"
    monkeypatch.setenv("HYTRACE_GTIN_COMPANY_PREFIX", prefix)
    get_settings.cache_clear()
    coop = f.org(session)
    taken = {create(session, coop, f"{prefix}{ref:04d}" + check_digit(f"{prefix}{ref:04d}")).gtin for ref in (0, 1)}
    # when many products are created without a GTIN
    made = [create(session, coop) for _ in range(40)]
    # then every GTIN is valid, under the prefix, assigned, and never repeats a registered one
    gtins = [p.gtin for p in made]
    assert all(valid(g) and g.startswith("0" + prefix) for g in gtins)
    assert all(p.gtin_assigned for p in made)
    assert len(set(gtins)) == len(gtins) and not taken & set(gtins)


def test_assignment_stops_when_the_prefix_is_full(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    # a 12-digit company prefix numbers exactly one trade item
    monkeypatch.setenv("HYTRACE_GTIN_COMPANY_PREFIX", "952998877665")
    get_settings.cache_clear()
    coop = f.org(session)
    assert valid(create(session, coop).gtin)
    with pytest.raises(RuleViolation) as info:
        create(session, coop)
    assert info.value.code == "gtin_capacity_exhausted"


def test_unknown_units_are_refused(session: Session) -> None:
    with pytest.raises(RuleViolation) as info:
        create(session, f.org(session), unit="bushel")
    assert info.value.code == "unknown_unit"


def test_a_product_is_created_only_for_ones_own_organisation(session: Session) -> None:
    mine, theirs = f.org(session), f.org(session)
    data = products.ProductCreate(name_vi="Tỏi Thái Thụy", category="garlic", organisation_id=theirs.id)
    with pytest.raises(Forbidden) as info:
        products.create_product(session=session, actor=f.member(mine), data=data)
    assert info.value.code == "not_your_organisation"


def test_a_lot_of_another_organisations_product_is_refused(session: Session) -> None:
    # given a cooperative and a product registered by someone else
    coop, brand = f.org(session), f.org(session)
    foreign = f.product(session, brand)
    harvest = HarvestIn(
        product_id=foreign.id, lot_code="X1", quantity=Decimal(1), location_id=f.location(session, coop).id
    )  # type: ignore[arg-type]
    with pytest.raises(Forbidden) as info:
        capture(session=session, actor=f.member(coop), items=[(EventType.HARVEST, harvest)])
    assert info.value.code == "not_your_product"
    # nor as the output of a transformation
    lot_id = f.harvest(session, coop, "10").lot_ids[0]
    transform = TransformIn(
        inputs=[TransformInput(lot_id=lot_id, quantity=Decimal(1))],
        outputs=[TransformOutput(product_id=foreign.id, lot_code="X2", quantity=Decimal(1))],
    )  # type: ignore[arg-type]
    with pytest.raises(Forbidden) as info:
        capture(session=session, actor=f.member(coop), items=[(EventType.TRANSFORM, transform)])
    assert info.value.code == "not_your_product"


def test_products_by_id_reads_the_products_asked_for_and_leaves_out_ids_of_none(session: Session) -> None:
    org = f.org(session)
    made = [f.product(session, org) for _ in range(3)]
    ids = [p.id for p in made]
    found = products.products_by_id(session=session, ids=[ids[0], ids[1], ids[1], None, ids[2] + 10_000])  # type: ignore[operator]
    assert sorted(found) == sorted(ids[:2]) and all(found[i].id == i for i in found)
    assert products.products_by_id(session=session, ids=[]) == {}
