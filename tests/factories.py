"""Builders for test data, going through the domain functions (so the rules apply)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from trace import auth, locations, organisations, products, users
from trace.access import Actor, Role
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

ADMIN = Actor(role=Role.ADMIN, organisation_id=None, user_id=None, name="test admin")
_n = itertools.count(1)
COMMUNE = "12070"  # Xã Hoàn Long, a real Hưng Yên commune code (see trace/data/communes.csv)


def tax_code() -> str:
    return f"{9000000000 + next(_n) * 7919 % 999999999:010d}"


def org(session: Session, kind: str = "cooperative", name: str | None = None, **extra: Any) -> organisations.Organisation:
    data = organisations.OrganisationCreate(kind=kind, name=name or f"HTX thử nghiệm {next(_n)}", tax_code=tax_code(),  # type: ignore[arg-type]
                                            commune_code=extra.pop("commune_code", COMMUNE), **extra)
    return organisations.create_organisation(session=session, actor=ADMIN, data=data)


def member(o: organisations.Organisation, role: Role = Role.MEMBER) -> Actor:
    return Actor(role=role, organisation_id=o.id, user_id=None, name=f"member of {o.name}")


def user(session: Session, o: organisations.Organisation | None, role: Role = Role.MEMBER,
         password: str = "correct horse battery") -> tuple[users.User, str]:
    """A user with a password, and a bearer token for them."""
    u = users.create_user(session=session, email=f"user{next(_n)}@example.test", full_name="Người dùng thử",
                          role=role, organisation_id=o.id if o else None, password=password)
    return u, auth.issue_token(u).access_token


def location(session: Session, o: organisations.Organisation, kind: str = "growing_area", **extra: Any) -> locations.Location:
    code = extra.pop("code", f"VN-HY-{next(_n):05d}" if kind == "growing_area" else None)
    data = locations.LocationCreate(kind=kind, name=extra.pop("name", f"Vườn {next(_n)}"), code=code,  # type: ignore[arg-type]
                                    commune_code=extra.pop("commune_code", COMMUNE), **extra)
    return locations.create_location(session=session, actor=member(o), data=data)


def product(session: Session, o: organisations.Organisation, unit: str = "kg", **extra: Any) -> products.Product:
    data = products.ProductCreate(name_vi=extra.pop("name_vi", f"Nhãn lồng tươi {next(_n)}"), category=extra.pop("category", "longan_fresh"),
                                  unit=unit, **extra)
    return products.create_product(session=session, actor=member(o), data=data)


def when(days_ago: float = 1) -> datetime:
    return datetime.now(UTC) - timedelta(days=days_ago)


def harvest(session: Session, o: organisations.Organisation, qty: str = "100", *, prod: products.Product | None = None,
            loc: locations.Location | None = None, days_ago: float = 5, **extra: Any) -> CaptureResult:
    prod = prod or product(session, o)
    loc = loc or location(session, o)
    data = HarvestIn(product_id=prod.id, lot_code=extra.pop("lot_code", f"L{next(_n):06d}"), quantity=Decimal(qty),  # type: ignore[arg-type]
                     location_id=loc.id, event_time=when(days_ago), **extra)
    return capture(session=session, actor=member(o), items=[(EventType.HARVEST, data)])


def ship(session: Session, sender: organisations.Organisation, lot_id: int, to: organisations.Organisation,
         qty: str, days_ago: float = 4) -> CaptureResult:
    data = ShipIn(lot_id=lot_id, quantity=Decimal(qty), destination_organisation_id=to.id, event_time=when(days_ago))  # type: ignore[arg-type]
    return capture(session=session, actor=member(sender), items=[(EventType.SHIP, data)])


def receive(session: Session, receiver: organisations.Organisation, shipment_id: int, qty: str | None = None,
            days_ago: float = 3) -> CaptureResult:
    data = ReceiveIn(shipment_id=shipment_id, quantity=Decimal(qty) if qty else None, event_time=when(days_ago))
    return capture(session=session, actor=member(receiver), items=[(EventType.RECEIVE, data)])


def transform(session: Session, o: organisations.Organisation, inputs: list[tuple[int, str]],
              outputs: list[tuple[products.Product, str]], days_ago: float = 2) -> CaptureResult:
    data = TransformIn(
        inputs=[TransformInput(lot_id=lid, quantity=Decimal(q)) for lid, q in inputs],
        outputs=[TransformOutput(product_id=p.id, lot_code=f"T{next(_n):06d}", quantity=Decimal(q)) for p, q in outputs],  # type: ignore[arg-type]
        event_time=when(days_ago),
    )
    return capture(session=session, actor=member(o), items=[(EventType.TRANSFORM, data)])


def today() -> date:
    return date.today()
