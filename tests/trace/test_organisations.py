"""How a party is named to a reader (trace.organisations.shown_party), reader by reader."""

from __future__ import annotations

import pytest

from trace.access import Actor, Role
from trace.organisations import OrgKind, PartyRow, pick_label, shown_party

HOUSEHOLD = PartyRow(
    id=4,
    kind=OrgKind.FARM,
    name="Hộ ông Nguyễn Văn Riêng",
    commune_code="12070",
    personal_name_consent=False,
    name_en="Mr Rieng's farm",
    address="Số 9 ngõ Kín",
    tax_code="0101010101",
    gln="9520000000174",
    phone="0912000000",
    email="rieng@example.com",
    contact_person="Nguyễn Văn Riêng",
)
COMPANY = PartyRow(
    id=5,
    kind=OrgKind.PROCESSOR,
    name="Công ty TNHH Mẫu",
    commune_code="12070",
    personal_name_consent=False,
    address="Số 1 đường Mẫu",
    tax_code="0202020202",
    contact_person="Lê Thị Liên",
)
READERS: dict[str, Actor | None] = {
    "public": None,
    "household member": Actor(role=Role.MEMBER, organisation_id=4),
    "household admin": Actor(role=Role.ORG_ADMIN, organisation_id=4),
    "buyer": Actor(role=Role.ORG_ADMIN, organisation_id=5),
    "holder": Actor(role=Role.ORG_ADMIN, organisation_id=9),
    "inspector": Actor(role=Role.INSPECTOR, organisation_id=2),
    "admin": Actor(role=Role.ADMIN, organisation_id=None),
    "portal": Actor(role=Role.PORTAL, organisation_id=1),
}
RIGHTFUL = {"household member", "household admin", "inspector", "admin"}


@pytest.mark.parametrize("reader", READERS)
def test_a_household_without_consent_is_named_only_to_its_members_and_officials(
    reader: str,
) -> None:
    shown = shown_party(HOUSEHOLD, READERS[reader])
    if reader in RIGHTFUL:
        assert (
            shown.name,
            shown.address,
            shown.tax_code,
            shown.gln,
            shown.contact_person,
            shown.redacted,
        ) == (
            HOUSEHOLD.name,
            HOUSEHOLD.address,
            HOUSEHOLD.tax_code,
            HOUSEHOLD.gln,
            HOUSEHOLD.contact_person,
            False,
        )
        return
    assert shown.redacted and shown.name == "Hộ sản xuất tại Xã Hoàn Long"
    assert shown.address == "Xã Hoàn Long, Tỉnh Hưng Yên" and shown.commune_code == "12070"
    assert (shown.name_en, shown.gln, shown.phone, shown.email, shown.contact_person) == (None,) * 5
    # the portal files it under its tax code (its record key), nobody else learns it
    assert shown.tax_code == (HOUSEHOLD.tax_code if reader == "portal" else None)
    assert pick_label(HOUSEHOLD, READERS[reader]) == "Hộ sản xuất tại Xã Hoàn Long · #4"


@pytest.mark.parametrize("reader", READERS)
def test_with_consent_a_household_is_named_to_everyone(reader: str) -> None:
    consenting = PartyRow(**{**HOUSEHOLD.__dict__, "personal_name_consent": True})
    shown = shown_party(consenting, READERS[reader])
    assert (shown.name, shown.address, shown.tax_code, shown.contact_person, shown.redacted) == (
        HOUSEHOLD.name,
        HOUSEHOLD.address,
        HOUSEHOLD.tax_code,
        HOUSEHOLD.contact_person,
        False,
    )


@pytest.mark.parametrize("reader", READERS)
def test_a_legal_person_is_named_to_everyone_but_its_contact_person_waits_for_consent(
    reader: str,
) -> None:
    shown = shown_party(COMPANY, READERS[reader])
    assert (shown.name, shown.address, shown.tax_code, shown.redacted) == (
        COMPANY.name,
        COMPANY.address,
        COMPANY.tax_code,
        False,
    )
    own = reader == "buyer"  # the company's own administrator
    assert shown.contact_person == (COMPANY.contact_person if own or reader in ("inspector", "admin") else None)


def test_a_household_of_no_recorded_commune_is_a_household_of_nowhere_in_particular() -> None:
    shown = shown_party(
        PartyRow(id=7, kind="farm", name="Hộ bà Kín", commune_code=None, personal_name_consent=False),
        None,
    )
    assert (shown.name, shown.address) == ("Hộ sản xuất", "")
