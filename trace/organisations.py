"""Organisations: cooperatives, farms, processors, distributors, retailers, holders, authorities."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import field_validator
from sqlalchemy import Index
from sqlmodel import Field, Session, SQLModel, col, select

from trace import admin_units, history
from trace.access import Actor, require_admin, require_org_admin
from trace.errors import Conflict, NotFound, RuleViolation
from trace.idempotency import checked_key, insert_once, key_reused
from trace.identifiers import normalize_gln
from trace.sqltypes import enum_type
from trace.timeutil import utcnow


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
    personal_name_consent: bool = Field(default=False, description="Consent to show the person's name publicly (Decree 13/2023)")
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


def _check_fields(*, session: Session, gln: str | None, commune_code: str | None, exclude_id: int | None) -> str | None:
    if commune_code is not None and admin_units.commune(commune_code) is None:
        raise RuleViolation(f"Unknown commune code {commune_code!r}", code="unknown_commune")
    if gln:
        gln = normalize_gln(gln)
        clash = session.exec(select(Organisation).where(Organisation.gln == gln)).first()
        if clash and clash.id != exclude_id:
            raise Conflict(f"GLN {gln} already belongs to another organisation", code="gln_taken")
    return gln or None


def to_public(org: Organisation) -> OrganisationPublic:
    """The API shape of an organisation (with today's commune name)."""
    unit = admin_units.commune(org.commune_code) if org.commune_code else None
    return OrganisationPublic.model_validate(
        org, update={"commune_name": unit.name if unit else None}
    )


def _replay(session: Session, key: str, data: OrganisationCreate) -> Organisation | None:
    found = session.exec(select(Organisation).where(Organisation.request_key == key)).first()
    if found is not None:
        typed = data.model_dump(exclude={"gln"})
        if {name: getattr(found, name) for name in typed} != typed:
            raise key_reused("organisation")
    return found


def create_organisation(*, session: Session, actor: Actor, data: OrganisationCreate,
                        idempotency_key: str | None = None) -> Organisation:
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


def list_organisations(
    *, session: Session, kind: OrgKind | None = None, commune_code: str | None = None,
    q: str | None = None, offset: int = 0, limit: int = 50,
) -> list[Organisation]:
    """Organisations, filtered; the directory is public information (no private fields)."""
    query = select(Organisation).where(Organisation.active == True)  # noqa: E712
    if kind:
        query = query.where(Organisation.kind == kind)
    if commune_code:
        query = query.where(Organisation.commune_code == commune_code)
    if q:
        query = query.where(col(Organisation.name).contains(q))
    return list(session.exec(query.order_by(Organisation.id).offset(offset).limit(limit)))  # type: ignore[arg-type]


def public_name(org: Organisation) -> str:
    """What the public may see as the producer: a household's personal name only with consent."""
    if org.kind == OrgKind.FARM and not org.personal_name_consent:
        unit = admin_units.commune(org.commune_code) if org.commune_code else None
        return f"Hộ sản xuất tại {unit.name}" if unit else "Hộ sản xuất"
    return org.name
