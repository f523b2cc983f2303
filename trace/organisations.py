"""Organisations: cooperatives, farms, processors, distributors, retailers, holders, authorities."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import field_validator
from sqlalchemy import Index, true
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, or_, select

from trace import admin_units, history
from trace.access import Actor, Role, require_admin, require_org_admin
from trace.errors import Conflict, NotFound, RuleViolation
from trace.idempotency import checked_key, insert_once, key_reused
from trace.identifiers import normalize_gln
from trace.platform.paging import Page, key_order, page, paged
from trace.platform.sqltypes import enum_type, in_chunks
from trace.platform.timeutil import utcnow


class OrgKind(StrEnum):
    """The kinds of party on the system."""

    COOPERATIVE = "cooperative"
    FARM = "farm"
    PROCESSOR = "processor"
    DISTRIBUTOR = "distributor"
    RETAILER = "retailer"
    DESIGNATION_HOLDER = "designation_holder"
    AUTHORITY = "authority"


class OrganisationBase(SQLModel):
    kind: OrgKind
    name: str = Field(min_length=2, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    tax_code: str = Field(min_length=10, max_length=14, description="Mã số thuế (10 or 10-3 digits)")
    gln: str | None = Field(default=None, max_length=13, description="GS1 GLN, optional")
    address: str = Field(default="", max_length=300)
    commune_code: str | None = Field(default=None, max_length=5, description="Today's commune/ward code")
    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=200)
    contact_person: str | None = Field(default=None, max_length=120, description="A person's name: personal data")
    personal_name_consent: bool = Field(
        default=False, description="Consent to show the person's name publicly (Decree 13/2023)"
    )
    practices_public: bool = Field(default=False, description="Show farming inputs to the public")


class Organisation(OrganisationBase, table=True):
    # Only the province onboards organisations: its keys share one scope, so a resent form registers once.
    __table_args__ = (Index("ix_organisation_request_key", "request_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    kind: OrgKind = Field(sa_type=enum_type(OrgKind))
    tax_code: str = Field(unique=True, index=True, max_length=14)
    gln: str | None = Field(default=None, unique=True, max_length=13)
    version: int = 1
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    request_key: str | None = Field(default=None, max_length=100, description="The creating request's idempotency key")


class OrganisationCreate(OrganisationBase):
    @field_validator("tax_code")
    @classmethod
    def _tax_code(cls, value: str) -> str:
        value = value.strip()
        digits = value.replace("-", "")
        if not digits.isdigit() or len(digits) not in (10, 13):
            raise ValueError("tax code must be 10 digits, or 10 digits - 3 digits for a branch")
        return value


class OrganisationUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    gln: str | None = Field(default=None, max_length=13)
    address: str | None = Field(default=None, max_length=300)
    commune_code: str | None = Field(default=None, max_length=5)
    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=200)
    contact_person: str | None = Field(default=None, max_length=120)
    personal_name_consent: bool | None = None
    practices_public: bool | None = None


class OrganisationPublic(OrganisationBase):
    id: int
    version: int
    active: bool
    commune_name: str | None = None
    tax_code: str | None = Field(default=None, description="Withheld from a household's redacted form")  # type: ignore[assignment]
    redacted: bool = Field(default=False, description="A household's identity withheld from this reader")


def _check_fields(*, session: Session, gln: str | None, commune_code: str | None, exclude_id: int | None) -> str | None:
    if commune_code is not None and admin_units.commune(commune_code) is None:
        raise RuleViolation(f"Unknown commune code {commune_code!r}", code="unknown_commune")
    if gln:
        gln = normalize_gln(gln)
        clash = session.exec(select(Organisation).where(Organisation.gln == gln)).first()
        if clash and clash.id != exclude_id:
            raise Conflict(f"GLN {gln} already belongs to another organisation", code="gln_taken")
    return gln or None


def to_public(org: Organisation, reader: Actor | None) -> OrganisationPublic:
    """The API shape of an organisation as ``reader`` may see it (with today's commune name)."""
    unit = admin_units.commune(org.commune_code) if org.commune_code else None
    shown = shown_party(org, reader)
    return OrganisationPublic.model_validate(
        org,
        update={
            "commune_name": unit.name if unit else None,
            "name": shown.name,
            "name_en": shown.name_en,
            "address": shown.address,
            "tax_code": shown.tax_code,
            "gln": shown.gln,
            "phone": shown.phone,
            "email": shown.email,
            "contact_person": shown.contact_person,
            "redacted": shown.redacted,
        },
    )


def _replay(session: Session, key: str, data: OrganisationCreate) -> Organisation | None:
    found = session.exec(select(Organisation).where(Organisation.request_key == key)).first()
    if found is not None:
        typed = data.model_dump(exclude={"gln"})
        if {name: getattr(found, name) for name in typed} != typed:
            raise key_reused("organisation")
    return found


def create_organisation(
    *, session: Session, actor: Actor, data: OrganisationCreate, idempotency_key: str | None = None
) -> Organisation:
    """Onboard an organisation (province admin only); a retry with the same key returns the first one."""
    require_admin(actor)
    key = checked_key(idempotency_key)
    if key is not None and (found := _replay(session, key, data)):
        return found
    if session.exec(select(Organisation).where(Organisation.tax_code == data.tax_code)).first():
        raise Conflict(f"An organisation with tax code {data.tax_code} exists", code="tax_code_taken")
    gln = _check_fields(session=session, gln=data.gln, commune_code=data.commune_code, exclude_id=None)
    org = Organisation.model_validate(data, update={"gln": gln, "request_key": key})
    stored = insert_once(session=session, row=org, replay=lambda: _replay(session, key, data) if key else None)
    if stored is not org:
        return stored  # the same form sent twice at once: the first one stands
    history.snapshot(session=session, entity="organisation", row=org, user_id=actor.user_id)
    return org


def get_organisation(*, session: Session, organisation_id: int) -> Organisation:
    """One organisation, or NotFound."""
    org = session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound(f"Organisation {organisation_id} not found")
    return org


def update_organisation(
    *, session: Session, actor: Actor, organisation_id: int, data: OrganisationUpdate
) -> Organisation:
    """Edit an organisation as a new version; past events keep citing the old one."""
    require_org_admin(actor, organisation_id)
    org = get_organisation(session=session, organisation_id=organisation_id)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        return org
    if "gln" in changes or "commune_code" in changes:
        changes["gln"] = _check_fields(
            session=session,
            gln=changes.get("gln", org.gln),
            commune_code=changes.get("commune_code", org.commune_code),
            exclude_id=org.id,
        )
    for key, value in changes.items():
        setattr(org, key, value)
    org.version += 1
    org.updated_at = utcnow()
    session.add(org)
    session.flush()
    history.snapshot(session=session, entity="organisation", row=org, user_id=actor.user_id)
    return org


ORGANISATION_ORDER = key_order("organisations", (col(Organisation.id), int, False))  # oldest first


def list_organisations(
    *,
    session: Session,
    kind: OrgKind | None = None,
    commune_code: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    offset: int = 0,
    limit: int = 50,
    reader: Actor | None = None,
) -> Page[Organisation]:
    """Organisations, filtered; a search by name finds a household only for a reader who may see its name."""
    query = select(Organisation).where(Organisation.active == True)  # noqa: E712
    if kind:
        query = query.where(Organisation.kind == kind)
    if commune_code:
        query = query.where(Organisation.commune_code == commune_code)
    if q:
        query = query.where(col(Organisation.name).contains(q), identifiable(reader))
    rows = session.exec(paged(query, ORGANISATION_ORDER, cursor=cursor, offset=offset, limit=limit))
    return page(rows, ORGANISATION_ORDER, limit=limit, key=lambda x: (x.id,))


# --------------------------------------------------------------------------- how a party is named to a reader
#
# A farm household (OrgKind.FARM) is a person: its name, street address, tax code (a household's is
# its owner's personal tax code, since 2025 the citizen's ID number), GLN, phone, e-mail and contact
# person are personal data (Decree 13/2023/ND-CP). Without its consent (personal_name_consent) they are
# shown only to readers with a right of their own:
#   - the household's own members (it is their data);
#   - the province administrator and market inspectors (Role.ADMIN, Role.INSPECTOR): state bodies
#     that process it for their legal duties (Decree 13, Art. 17: no consent needed), the ones who
#     hold a lot, start a recall or reach a producer.
# Nobody else has one: not a trading partner up or down the chain, not a designation holder (its
# register of grantees keeps the organisation id and the decision number), not a webhook's
# subscriber, not the national portal (it publishes what it receives), not the public. They see the
# redacted form: "Hộ sản xuất tại <commune>", the commune and province as the address, and no tax
# code, GLN, phone, e-mail or contact person. One exception, an identifier alone: the national
# portal (Role.PORTAL, a state system) files every organisation under its tax code (Circular
# 02/2024/TT-BKHCN), the key its products, places and trace codes are linked by; it gets a redacted
# household's tax code, never its name or street address.
# Cooperatives, companies and every other kind are legal persons: their names, addresses and tax
# codes are public; only a contact person's name (a person) waits for consent or a right.


class Party(Protocol):
    """What naming reads of an organisation (an Organisation row, or a lean row read for a trace)."""

    @property
    def id(self) -> int | None: ...
    @property
    def kind(self) -> OrgKind | str: ...
    @property
    def name(self) -> str: ...
    @property
    def commune_code(self) -> str | None: ...
    @property
    def personal_name_consent(self) -> bool: ...


@dataclass(frozen=True)
class PartyRow:
    """A party read without the ORM (a trace reads thousands of lots): the columns naming needs."""

    id: int | None
    kind: OrgKind | str
    name: str
    commune_code: str | None
    personal_name_consent: bool
    name_en: str | None = None
    address: str = ""
    tax_code: str | None = None
    gln: str | None = None
    phone: str | None = None
    email: str | None = None
    contact_person: str | None = None


@dataclass(frozen=True)
class PartyShown:
    """A party as one reader may see it."""

    id: int | None
    kind: OrgKind
    name: str
    name_en: str | None
    address: str
    commune_code: str | None
    tax_code: str | None
    gln: str | None
    phone: str | None
    email: str | None
    contact_person: str | None
    redacted: bool  # the household's identity is withheld from this reader


def may_identify(party: Party, reader: Actor | None) -> bool:
    """Whether ``reader`` (None: the public) may see who a party is (see the rule above)."""
    if OrgKind(party.kind) != OrgKind.FARM or party.personal_name_consent:
        return True
    return _has_right(reader, party.id)


def _has_right(reader: Actor | None, organisation_id: int | None) -> bool:
    if reader is None:
        return False
    if reader.reads_everything:  # the province administrator, market inspectors
        return True
    return organisation_id is not None and reader.organisation_id == organisation_id and reader.role != Role.PORTAL


def identifiable(reader: Actor | None) -> Any:
    """:func:`may_identify` as a SQL condition on Organisation (a search by name must not confirm a
    withheld one)."""
    if _has_right(reader, None):
        return true()
    own = reader.organisation_id if reader is not None and reader.role != Role.PORTAL else None
    return or_(
        col(Organisation.kind) != OrgKind.FARM,
        col(Organisation.personal_name_consent) == True,  # noqa: E712
        col(Organisation.id) == own,
    )


def household_name(commune_code: str | None) -> str:
    """The redacted name of a household: where it is, not who."""
    unit = admin_units.commune(commune_code) if commune_code else None
    return f"Hộ sản xuất tại {unit.name}" if unit else "Hộ sản xuất"


def shown_party(party: Party, reader: Actor | None) -> PartyShown:
    """How ``party`` is named to ``reader`` (an Actor, or None for the public): the one function every
    serialiser, page, export, webhook and EPCIS document names a party with."""
    kind = OrgKind(party.kind)
    if not may_identify(party, reader):
        unit = admin_units.commune(party.commune_code) if party.commune_code else None
        key = getattr(party, "tax_code", None) if reader is not None and reader.role == Role.PORTAL else None
        return PartyShown(
            id=party.id,
            kind=kind,
            name=household_name(party.commune_code),
            name_en=None,
            address=f"{unit.name}, {unit.province_name}" if unit else "",
            commune_code=party.commune_code,
            tax_code=key,
            gln=None,
            phone=None,
            email=None,
            contact_person=None,
            redacted=True,
        )
    person = party.personal_name_consent or _has_right(reader, party.id)
    return PartyShown(
        id=party.id,
        kind=kind,
        name=party.name,
        name_en=getattr(party, "name_en", None),
        address=getattr(party, "address", "") or "",
        commune_code=party.commune_code,
        tax_code=getattr(party, "tax_code", None),
        gln=getattr(party, "gln", None),
        phone=getattr(party, "phone", None),
        email=getattr(party, "email", None),
        contact_person=getattr(party, "contact_person", None) if person else None,
        redacted=False,
    )


def public_name(org: Party) -> str:
    """What the public may see as a party's name (:func:`shown_party` for no reader)."""
    return shown_party(org, None).name


def party_names(*, session: Session, ids: Iterable[int | None], reader: Actor | None) -> dict[int, str]:
    """Organisations' names by id as ``reader`` may see them (ids not on the register are left out)."""
    wanted = sorted({i for i in ids if i is not None})
    names: dict[int, str] = {}
    for chunk in in_chunks(wanted):
        rows = session.execute(sa_select(*_NAMING).where(col(Organisation.id).in_(chunk))).all()
        names.update((row[0], shown_party(PartyRow(*row), reader).name) for row in rows)
    return names


_NAMING = (
    col(Organisation.id),
    col(Organisation.kind),
    col(Organisation.name),
    col(Organisation.commune_code),
    col(Organisation.personal_name_consent),
)


def pick_label(party: Party, reader: Actor | None) -> str:
    """A party in a list to choose from: a withheld household carries its number, so that two in one
    commune can be told apart."""
    shown = shown_party(party, reader)
    return f"{shown.name} · #{shown.id}" if shown.redacted else shown.name
