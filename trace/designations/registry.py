"""The public registry of designations, and whether a place lies in a designation's protected area.

A protected area was granted over the units of its day: most over pre-2025 districts and communes,
which the 2025 rearrangement merged and, in three cases, split. The grant is kept as written
(``area_former_districts``, ``area_former_communes``) and mapped to today's communes
(``area_communes``); a place is judged on its pre-2025 commune whenever the grant was written
over old units, because a today's commune may be only partly inside.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import field_validator
from sqlmodel import Field, Session, SQLModel, col, select

from trace import admin_units
from trace.access import Actor, Role
from trace.designations.models import Designation, DesignationBase, DesignationKind, InheritRule
from trace.errors import Conflict, Forbidden, NotFound, RuleViolation
from trace.idempotency import checked_key, insert_once, key_reused
from trace.locations import Location
from trace.organisations import Organisation, OrgKind, public_name
from trace.platform.paging import Page, key_order, slice_page
from trace.web_urls import ShownUrl, WebUrl

AREA_FIELDS = ("area_former_districts", "area_former_communes", "area_communes")


def _clean_list(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))


class DesignationCreate(DesignationBase):
    """A designation as the registrar types it; the area is given over old units or today's communes."""

    @field_validator(
        "categories", "derived_categories", "area_former_districts", "area_former_communes", "area_communes"
    )
    @classmethod
    def _lists(cls, value: list[str]) -> list[str]:
        return _clean_list(value)


class DesignationUpdate(SQLModel):
    """Fields to change; any area field given replaces the whole area (the others count as empty)."""

    kind: DesignationKind | None = None
    name_vi: str | None = Field(default=None, min_length=2, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    registration_number: str | None = Field(default=None, max_length=60)
    decision_number: str | None = Field(default=None, max_length=60)
    decision_date: date | None = None
    authority: str | None = Field(default=None, max_length=200)
    holder_organisation_id: int | None = None
    categories: list[str] | None = None
    derived_categories: list[str] | None = None
    inherit_rule: InheritRule | None = None
    area_former_districts: list[str] | None = None
    area_former_communes: list[str] | None = None
    area_communes: list[str] | None = None
    rules_text: str | None = Field(default=None, max_length=20000)
    logo_url: WebUrl | None = Field(default=None, max_length=500)
    active: bool | None = None

    @field_validator(
        "categories", "derived_categories", "area_former_districts", "area_former_communes", "area_communes"
    )
    @classmethod
    def _lists(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _clean_list(value)


class DesignationPublic(DesignationBase):
    """What anyone may read about a designation."""

    logo_url: ShownUrl = None
    id: int
    active: bool
    holder_name: str
    area_commune_names: list[str] = Field(default_factory=list)


def to_public(*, session: Session, designation: Designation) -> DesignationPublic:
    """The API shape of a designation, with its holder's and today's communes' names."""
    holder = session.get(Organisation, designation.holder_organisation_id)
    names = [c.name for c in (admin_units.commune(code) for code in designation.area_communes) if c]
    return DesignationPublic.model_validate(
        designation, update={"holder_name": public_name(holder) if holder else "", "area_commune_names": names}
    )


# --------------------------------------------------------------------------- the protected area


def area_from(*, districts: list[str], former_communes: list[str], communes: list[str]) -> dict[str, list[str]]:
    """The three area fields from what a grant names: old districts and/or old communes, or today's communes."""
    if communes and (districts or former_communes):
        raise RuleViolation(
            "Give the protected area either over pre-2025 units or over today's communes, not both", code="area_mixed"
        )
    if communes:
        unknown = [c for c in communes if admin_units.commune(c) is None]
        if unknown:
            raise RuleViolation(f"Unknown commune code(s): {', '.join(unknown)}", code="unknown_commune", codes=unknown)
        return {
            "area_former_districts": [],
            "area_former_communes": [],
            "area_communes": sorted(admin_units.commune(c).code for c in communes),  # type: ignore[union-attr]
        }
    named: list[str] = []
    formers: dict[str, admin_units.FormerCommune] = {}
    for name in districts:
        found = admin_units.former_communes_in_district(name)
        full = {f.district_name for f in found}
        if len(full) != 1:
            raise RuleViolation(
                f"{name!r} is not one pre-2025 district of Hưng Yên or Thái Bình",
                code="unknown_former_district",
                district=name,
                matches=sorted(full),
            )
        named.append(full.pop())
        formers.update((f.code, f) for f in found)
    unknown = []
    for code in former_communes:
        former = admin_units.former_commune(code)
        if former is None:
            unknown.append(code)
        else:
            formers[former.code] = former
    if unknown:
        raise RuleViolation(
            f"Unknown pre-2025 commune code(s): {', '.join(unknown)}", code="unknown_former_commune", codes=unknown
        )
    today = {c for f in formers.values() for c in f.current_codes}
    return {
        "area_former_districts": list(dict.fromkeys(named)),
        "area_former_communes": sorted(formers),
        "area_communes": sorted(today),
    }


def in_area(designation: Designation, location: Location) -> bool | None:
    """Whether the place lies in the protected area; None when that cannot be told (see ``area_problem``)."""
    if not designation.area_communes and not designation.area_former_communes:
        return True  # a mark with no protected area (some certification marks) is not tied to a place
    if not designation.area_former_communes:
        return location.commune_code in designation.area_communes
    granted = set(designation.area_former_communes)
    if location.former_commune_code:
        return location.former_commune_code in granted
    # Without the place's old commune, today's commune decides only if it is wholly in or wholly out.
    inside = {f.code in granted for f in admin_units.formers_for_current(location.commune_code)}
    if inside == {True}:
        return True
    if True in inside:
        return None
    return False


def area_problem(designation: Designation, location: Location) -> str | None:
    """``area_outside``, ``area_unknown_former_commune`` (today's commune only partly inside and the
    place's pre-2025 commune not recorded), or None when the place lies in the protected area."""
    verdict = in_area(designation, location)
    if verdict is None:
        return "area_unknown_former_commune"
    return None if verdict else "area_outside"


# --------------------------------------------------------------------------- the registry


def require_registrar(*, session: Session, actor: Actor) -> None:
    """The province administrator, or an administrator of a provincial authority, keeps the registry."""
    if actor.is_admin:
        return
    if actor.role == Role.ORG_ADMIN and actor.organisation_id is not None:
        org = session.get(Organisation, actor.organisation_id)
        if org is not None and org.kind == OrgKind.AUTHORITY and org.active:
            return
    raise Forbidden(
        "Only the province administrator or an authority keeps the designation registry", code="registrar_only"
    )


def _check(*, session: Session, values: dict[str, Any], exclude_id: int | None) -> None:
    holder = session.get(Organisation, values["holder_organisation_id"])
    if holder is None or not holder.active:
        raise RuleViolation(
            f"Organisation {values['holder_organisation_id']} is not an active organisation", code="unknown_holder"
        )
    if not values["categories"]:
        raise RuleViolation("A designation covers at least one product category", code="categories_required")
    if values["inherit_rule"] != InheritRule.NEVER and not values["derived_categories"]:
        raise RuleViolation(
            "An inheritance rule needs the categories a transformation may carry it into",
            code="derived_categories_required",
        )
    if values["kind"] == DesignationKind.GEOGRAPHICAL_INDICATION and not values["area_communes"]:
        raise RuleViolation("A geographical indication has a protected area", code="area_required")
    clash = select(Designation.id).where(Designation.kind == values["kind"], Designation.name_vi == values["name_vi"])
    if exclude_id is not None:
        clash = clash.where(Designation.id != exclude_id)
    if session.exec(clash).first() is not None:
        raise Conflict(f"A {values['kind']} named {values['name_vi']!r} is registered", code="designation_exists")


def _replay(session: Session, key: str, data: DesignationCreate) -> Designation | None:
    found = session.exec(select(Designation).where(Designation.request_key == key)).first()
    if found is not None:
        # The area is stored mapped to today's communes: the rest of the form tells a resend from another one.
        typed = data.model_dump(exclude=set(AREA_FIELDS))
        if {name: getattr(found, name) for name in typed} != typed:
            raise key_reused("designation")
    return found


def create_designation(
    *, session: Session, actor: Actor, data: DesignationCreate, idempotency_key: str | None = None
) -> Designation:
    """Register a designation (its area mapped from the units it was granted over); a retry with the same key
    returns the first one."""
    require_registrar(session=session, actor=actor)
    key = checked_key(idempotency_key)
    if key is not None and (found := _replay(session, key, data)):
        return found
    values = data.model_dump()
    values.update(
        area_from(
            districts=data.area_former_districts, former_communes=data.area_former_communes, communes=data.area_communes
        )
    )
    _check(session=session, values=values, exclude_id=None)
    designation = Designation.model_validate(values, update={"request_key": key})
    return insert_once(session=session, row=designation, replay=lambda: _replay(session, key, data) if key else None)


def update_designation(*, session: Session, actor: Actor, designation_id: int, data: DesignationUpdate) -> Designation:
    """Change a designation's record; an area given anew is mapped again."""
    require_registrar(session=session, actor=actor)
    designation = get_designation(session=session, designation_id=designation_id)
    changes = data.model_dump(exclude_unset=True)
    for name in (
        "kind",
        "name_vi",
        "authority",
        "holder_organisation_id",
        "categories",
        "derived_categories",
        "inherit_rule",
        "active",
    ):
        if name in changes and changes[name] is None:
            raise RuleViolation(f"{name} cannot be emptied", code="required_field", field=name)
    values = designation.model_dump() | changes
    if any(name in changes for name in AREA_FIELDS):
        values.update(
            area_from(
                districts=changes.get("area_former_districts") or [],
                former_communes=changes.get("area_former_communes") or [],
                communes=changes.get("area_communes") or [],
            )
        )
    _check(session=session, values=values, exclude_id=designation.id)
    for name, value in values.items():
        if name not in ("id", "created_at"):
            setattr(designation, name, value)
    session.add(designation)
    session.flush()
    return designation


def get_designation(*, session: Session, designation_id: int) -> Designation:
    """One designation, or NotFound."""
    designation = session.get(Designation, designation_id)
    if designation is None:
        raise NotFound(f"Designation {designation_id} not found")
    return designation


DESIGNATION_ORDER = key_order("designations", (col(Designation.id), int, False))


def list_designations(
    *,
    session: Session,
    kind: DesignationKind | None = None,
    category: str | None = None,
    holder_organisation_id: int | None = None,
    active: bool | None = None,
    cursor: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> Page[Designation]:
    """The registry, filtered; the category filter matches what a designation covers or carries into."""
    query = select(Designation).order_by(col(Designation.id))  # the registry is small: a few hundred at most
    if kind is not None:
        query = query.where(Designation.kind == kind)
    if holder_organisation_id is not None:
        query = query.where(Designation.holder_organisation_id == holder_organisation_id)
    if active is not None:
        query = query.where(Designation.active == active)
    rows = list(session.exec(query))
    if category:  # JSON lists: filtered here, the registry is small
        rows = [d for d in rows if category in d.categories or category in d.derived_categories]
    return slice_page(rows, DESIGNATION_ORDER, cursor=cursor, offset=offset, limit=limit, key=lambda d: (d.id,))
