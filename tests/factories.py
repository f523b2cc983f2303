"""Builders for test data, going through the domain functions (so the rules apply)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from trace import admin_units, auth, locations, organisations, products, users
from trace.access import Actor, Role
from trace.designations.models import Designation, DesignationKind, InheritRule, RightToUse
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import (
    CaptureResult,
    HarvestIn,
    ReceiveIn,
    ShipIn,
    TransformIn,
    TransformInput,
    TransformOutput,
)
from trace.platform import timeutil
from trace.platform.timeutil import local_zone
from trace.reports import tally_check

ADMIN = Actor(role=Role.ADMIN, organisation_id=None, user_id=None, name="test admin")
_n = itertools.count(1)
COMMUNE = "12070"  # Xã Hoàn Long, a real Hưng Yên commune code (see trace/data/communes.csv)


def tax_code() -> str:
    return f"{9000000000 + next(_n) * 7919 % 999999999:010d}"


def org(
    session: Session, kind: str = "cooperative", name: str | None = None, **extra: Any
) -> organisations.Organisation:
    data = organisations.OrganisationCreate(
        kind=kind,
        name=name or f"HTX thử nghiệm {next(_n)}",
        tax_code=tax_code(),  # type: ignore[arg-type]
        commune_code=extra.pop("commune_code", COMMUNE),
        **extra,
    )
    return organisations.create_organisation(session=session, actor=ADMIN, data=data)


def member(o: organisations.Organisation, role: Role = Role.MEMBER) -> Actor:
    return Actor(role=role, organisation_id=o.id, user_id=None, name=f"member of {o.name}")


def user(
    session: Session,
    o: organisations.Organisation | None,
    role: Role = Role.MEMBER,
    password: str = "correct horse battery",
) -> tuple[users.User, str]:
    """A user with a password, and a bearer token for them."""
    u = users.create_user(
        session=session,
        email=f"user{next(_n)}@example.test",
        full_name="Người dùng thử",
        role=role,
        organisation_id=o.id if o else None,
        password=password,
    )
    return u, auth.issue_token(u).access_token


def location(
    session: Session, o: organisations.Organisation, kind: str = "growing_area", **extra: Any
) -> locations.Location:
    code = extra.pop("code", f"VN-HY-{next(_n):05d}" if kind == "growing_area" else None)
    data = locations.LocationCreate(
        kind=kind,
        name=extra.pop("name", f"Vườn {next(_n)}"),
        code=code,  # type: ignore[arg-type]
        commune_code=extra.pop("commune_code", COMMUNE),
        **extra,
    )
    return locations.create_location(session=session, actor=member(o), data=data)


def product(session: Session, o: organisations.Organisation, unit: str = "kg", **extra: Any) -> products.Product:
    data = products.ProductCreate(
        name_vi=extra.pop("name_vi", f"Nhãn lồng tươi {next(_n)}"),
        category=extra.pop("category", "longan_fresh"),
        unit=unit,
        **extra,
    )
    return products.create_product(session=session, actor=member(o), data=data)


def when(days_ago: float = 1) -> datetime:
    """An instant ``days_ago`` before now, stamped with the province's offset as its phones send it.

    The domain reads an event's day in the event's own offset; a UTC stamp would put the event on
    another day than ``today()`` for seven hours of every day (17:00-24:00 UTC).
    """
    return datetime.now(local_zone()) - timedelta(days=days_ago)


def harvest(
    session: Session,
    o: organisations.Organisation,
    qty: str = "100",
    *,
    prod: products.Product | None = None,
    loc: locations.Location | None = None,
    days_ago: float = 5,
    **extra: Any,
) -> CaptureResult:
    prod = prod or product(session, o)
    loc = loc or location(session, o)
    data = HarvestIn(
        product_id=prod.id,
        lot_code=extra.pop("lot_code", f"L{next(_n):06d}"),
        quantity=Decimal(qty),  # type: ignore[arg-type]
        location_id=loc.id,
        event_time=when(days_ago),
        **extra,
    )
    return capture(session=session, actor=member(o), items=[(EventType.HARVEST, data)])


def ship(
    session: Session,
    sender: organisations.Organisation,
    lot_id: int,
    to: organisations.Organisation,
    qty: str,
    days_ago: float = 4,
) -> CaptureResult:
    data = ShipIn(lot_id=lot_id, quantity=Decimal(qty), destination_organisation_id=to.id, event_time=when(days_ago))  # type: ignore[arg-type]
    return capture(session=session, actor=member(sender), items=[(EventType.SHIP, data)])


def receive(
    session: Session,
    receiver: organisations.Organisation,
    shipment_id: int,
    qty: str | None = None,
    days_ago: float = 3,
) -> CaptureResult:
    data = ReceiveIn(shipment_id=shipment_id, quantity=Decimal(qty) if qty else None, event_time=when(days_ago))
    return capture(session=session, actor=member(receiver), items=[(EventType.RECEIVE, data)])


def transform(
    session: Session,
    o: organisations.Organisation,
    inputs: list[tuple[int, str]],
    outputs: list[tuple[products.Product, str]],
    days_ago: float = 2,
) -> CaptureResult:
    data = TransformIn(
        inputs=[TransformInput(lot_id=lid, quantity=Decimal(q)) for lid, q in inputs],
        outputs=[
            TransformOutput(product_id=p.id, lot_code=f"T{next(_n):06d}", quantity=Decimal(q)) for p, q in outputs
        ],  # type: ignore[arg-type]
        event_time=when(days_ago),
    )
    return capture(session=session, actor=member(o), items=[(EventType.TRANSFORM, data)])


def today() -> date:
    """Today where the goods are, as the domain counts it."""
    return timeutil.today()


# --------------------------------------------------------------------------- designations

GI_DISTRICTS = ["Thành phố Hưng Yên", "Huyện Khoái Châu", "Huyện Tiên Lữ", "Huyện Kim Động"]
# Today's Xã Hoàn Long (12070) joined the old Đông Tảo (12208, Khoái Châu: inside the longan GI)
# with the old Hoàn Long (12070) and Đồng Than (12061) of Yên Mỹ (outside it).
HOAN_LONG, DONG_TAO = "12070", "12208"


def gi_area() -> dict[str, list[str]]:
    """The longan GI's protected area: four old districts, their old communes and today's communes."""
    formers = [c for d in GI_DISTRICTS for c in admin_units.former_communes_in_district(d)]
    return {
        "area_former_districts": GI_DISTRICTS,
        "area_former_communes": sorted(c.code for c in formers),
        "area_communes": sorted({code for c in formers for code in c.current_codes}),
    }


def designation(session: Session, holder: organisations.Organisation, **over: Any) -> Designation:
    """The Hưng Yên longan geographical indication (or, with ``over``, another designation)."""
    values: dict[str, Any] = {
        "kind": DesignationKind.GEOGRAPHICAL_INDICATION,
        "name_vi": "Nhãn lồng Hưng Yên",
        "name_en": "Hung Yen longan",
        "registration_number": "00055",
        "decision_number": "186/QĐ-SHTT",
        "decision_date": date(2017, 1, 23),
        "holder_organisation_id": holder.id,
        "categories": ["longan_fresh"],
        "derived_categories": ["longan_dried"],
        "inherit_rule": InheritRule.ALL_INPUTS,
        **gi_area(),
        **over,
    }
    row = Designation(**values)
    session.add(row)
    session.flush()
    return row


def grant(session: Session, d: Designation, o: organisations.Organisation, **over: Any) -> RightToUse:
    """A right to use ``d``, valid from a year ago to a year ahead."""
    today_there = datetime.now(local_zone()).date()
    values: dict[str, Any] = {
        "designation_id": d.id,
        "organisation_id": o.id,
        "decision_number": f"{next(_n)}/QĐ-HNL",
        "valid_from": today_there - timedelta(days=365),
        "valid_to": today_there + timedelta(days=365),
        **over,
    }
    row = RightToUse(**values)
    session.add(row)
    session.flush()
    return row


@dataclass
class GiGrower:
    """The longan GI's holder; a cooperative with a right, a growing area in the old Đông Tảo and a
    fresh-longan product packed in 0.5 kg bags."""

    holder: organisations.Organisation
    gi: Designation
    grower: organisations.Organisation
    right: RightToUse
    area: locations.Location
    fresh: products.Product


def gi_grower(session: Session, grower: organisations.Organisation | None = None, **area: Any) -> GiGrower:
    """A GI, its holder and a cooperative with the right to use it (``area``: the growing area's name, code...)."""
    holder = org(session, "designation_holder", name="Sở Khoa học và Công nghệ (thử nghiệm)")
    gi = designation(session, holder)
    grower = grower or org(session)
    place = location(session, grower, commune_code=HOAN_LONG, former_commune_code=DONG_TAO, **area)
    fresh = product(session, grower, name_vi="Nhãn lồng tươi", package_size=Decimal("0.5"))
    return GiGrower(holder, gi, grower, grant(session, gi, grower), place, fresh)


def backdated(session: Session) -> None:
    """After a test moved lots or codes in time (or changed their status) straight in the database: the
    dashboard's buckets made again from the rows, as if the rows had been written that way."""
    session.flush()
    tally_check.rebuild(connection=session.connection())
