"""Locations an organisation uses: growing areas, packing facilities, warehouses, shops."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, Session, SQLModel, col, select

from trace import admin_units, history
from trace.access import Actor, require_member_of
from trace.errors import Conflict, NotFound, RuleViolation
from trace.idempotency import insert_once
from trace.identifiers import normalize_gln
from trace.platform.paging import Page, key_order, page, paged
from trace.platform.sqltypes import enum_type, in_chunks
from trace.platform.timeutil import utcnow


class LocationKind(StrEnum):
    GROWING_AREA = "growing_area"
    PACKING_FACILITY = "packing_facility"
    WAREHOUSE = "warehouse"
    SHOP = "shop"
    FARM = "farm"  # livestock farm (chicken)


class LocationBase(SQLModel):
    kind: LocationKind
    name: str = Field(min_length=2, max_length=200)
    code: str | None = Field(
        default=None, max_length=40, description="Planting-area code (mã số vùng trồng) or packing-facility code"
    )
    commune_code: str = Field(max_length=5, description="Today's commune/ward code")
    former_commune_code: str | None = Field(
        default=None, max_length=5, description="The pre-2025 commune code (designations were granted over old units)"
    )
    address: str = Field(default="", max_length=300)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    area_ha: float | None = Field(default=None, ge=0, le=100000)
    gln: str | None = Field(default=None, max_length=13)


class Location(LocationBase, table=True):
    # A retried request (double tap, timeout) finds the location its first attempt made.
    __table_args__ = (Index("ix_location_organisation_id_request_key", "organisation_id", "request_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    kind: LocationKind = Field(sa_type=enum_type(LocationKind))
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    version: int = 1
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    request_key: str | None = Field(default=None, max_length=100, description="The creating request's idempotency key")


class LocationCreate(LocationBase):
    organisation_id: int | None = Field(default=None, description="Defaults to the caller's organisation")


class LocationUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    code: str | None = Field(default=None, max_length=40)
    commune_code: str | None = Field(default=None, max_length=5)
    former_commune_code: str | None = Field(default=None, max_length=5)
    address: str | None = Field(default=None, max_length=300)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    area_ha: float | None = Field(default=None, ge=0, le=100000)
    active: bool | None = None


class LocationPublic(LocationBase):
    id: int
    organisation_id: int
    version: int
    active: bool
    commune_name: str | None = None
    former_commune_name: str | None = None


def to_public(location: Location) -> LocationPublic:
    """The API shape of a location with its commune names."""
    now = admin_units.commune(location.commune_code)
    old = admin_units.former_commune(location.former_commune_code) if location.former_commune_code else None
    return LocationPublic.model_validate(
        location,
        update={
            "commune_name": now.name if now else None,
            "former_commune_name": f"{old.name}, {old.district_name}" if old else None,
        },
    )


def _validate(kind: LocationKind, code: str | None, commune: str, former: str | None, gln: str | None) -> str | None:
    if admin_units.commune(commune) is None:
        raise RuleViolation(f"Unknown commune code {commune!r}", code="unknown_commune")
    if former is not None:
        old = admin_units.former_commune(former)
        if old is None:
            raise RuleViolation(f"Unknown pre-2025 commune code {former!r}", code="unknown_former_commune")
        if commune not in old.current_codes:
            raise RuleViolation(
                f"Former commune {old.name} did not become part of {commune}", code="former_commune_mismatch"
            )
    if kind == LocationKind.GROWING_AREA and not code:
        raise RuleViolation("A growing area needs its planting-area code", code="planting_code_required")
    return normalize_gln(gln) if gln else None


def _replay(session: Session, org_id: int, key: str, data: LocationCreate) -> Location | None:
    found = session.exec(
        select(Location).where(Location.organisation_id == org_id, Location.request_key == key)
    ).first()
    if found is not None and (found.kind, found.name, found.code) != (data.kind, data.name, data.code):
        raise Conflict("This idempotency key was used for a different location", code="idempotency_key_reused")
    return found


def create_location(
    *, session: Session, actor: Actor, data: LocationCreate, idempotency_key: str | None = None
) -> Location:
    """Register a location for the caller's organisation; a retry with the same key returns the first one."""
    org_id = data.organisation_id or actor.organisation_id
    if org_id is None:
        raise RuleViolation("organisation_id is required", code="organisation_required")
    require_member_of(actor, org_id)
    if idempotency_key is not None and (found := _replay(session, org_id, idempotency_key, data)):
        return found
    gln = _validate(data.kind, data.code, data.commune_code, data.former_commune_code, data.gln)
    if (
        data.code
        and session.exec(select(Location).where(Location.code == data.code, Location.kind == data.kind)).first()
    ):
        raise Conflict(f"Location code {data.code} is already registered", code="location_code_taken")
    location = Location.model_validate(
        data, update={"organisation_id": org_id, "gln": gln, "request_key": idempotency_key}
    )
    key = idempotency_key
    stored = insert_once(
        session=session, row=location, replay=lambda: _replay(session, org_id, key, data) if key is not None else None
    )
    if stored is not location:
        return stored  # the same form sent twice at once: the first one stands
    history.snapshot(session=session, entity="location", row=location, user_id=actor.user_id)
    return location


def get_location(*, session: Session, location_id: int) -> Location:
    """One location, or NotFound."""
    location = session.get(Location, location_id)
    if location is None:
        raise NotFound(f"Location {location_id} not found")
    return location


def location_names(*, session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Places' names by id (ids of no place are left out), for pages that name where things happened."""
    wanted = sorted({i for i in ids if i is not None})
    names: dict[int, str] = {}
    for chunk in in_chunks(wanted):
        rows = session.exec(select(col(Location.id), col(Location.name)).where(col(Location.id).in_(chunk)))
        names.update((row_id, name) for row_id, name in rows)  # type: ignore[misc]
    return names


def update_location(*, session: Session, actor: Actor, location_id: int, data: LocationUpdate) -> Location:
    """Edit a location as a new version."""
    location = get_location(session=session, location_id=location_id)
    require_member_of(actor, location.organisation_id)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        return location
    merged = location.model_copy(update=changes)
    _validate(merged.kind, merged.code, merged.commune_code, merged.former_commune_code, merged.gln)
    for key, value in changes.items():
        setattr(location, key, value)
    location.version += 1
    session.add(location)
    session.flush()
    history.snapshot(session=session, entity="location", row=location, user_id=actor.user_id)
    return location


LOCATION_ORDER = key_order("locations", (col(Location.id), int, False))  # oldest first


def list_locations(
    *,
    session: Session,
    organisation_id: int | None = None,
    kind: LocationKind | None = None,
    cursor: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[Location]:
    """Locations, filtered, a page after ``cursor``."""
    query = select(Location)
    if organisation_id is not None:
        query = query.where(Location.organisation_id == organisation_id)
    if kind is not None:
        query = query.where(Location.kind == kind)
    rows = session.exec(paged(query, LOCATION_ORDER, cursor=cursor, offset=offset, limit=limit))
    return page(rows, LOCATION_ORDER, limit=limit, key=lambda x: (x.id,))
