"""How many labels a lot may carry: its quantity in the product's packages, less what is printed."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import func, select
from sqlmodel import Session

from trace.errors import RuleViolation
from trace.lots import Lot
from trace.printing.models import PrintKind, PrintRun, PrintStatus
from trace.products import Product
from trace.units import Unit, UnitLevel, UnitStatus

_MASS = {"g": Decimal("0.001"), "kg": Decimal(1), "t": Decimal(1000)}


@dataclass(frozen=True)
class Capacity:
    """``limit`` packages in the lot, ``used`` labels already issued for it (void codes excluded)."""

    limit: int
    used: int

    @property
    def left(self) -> int:
        """Labels that may still be printed without an override."""
        return max(0, self.limit - self.used)


def _in_product_units(lot: Lot, product: Product) -> Decimal:
    if lot.unit == product.unit:
        return lot.quantity
    if lot.unit in _MASS and product.unit in _MASS:
        return lot.quantity * _MASS[lot.unit] / _MASS[product.unit]
    raise RuleViolation(
        f"Lot {lot.lot_code} is counted in {lot.unit}, its product in {product.unit}", code="unit_mismatch"
    )


def capacity(*, session: Session, lot: Lot, level: UnitLevel = UnitLevel.UNIT) -> Capacity:
    """The lot's package count (quantity ÷ the product's package size, one package per unit of
    measure when no size is set) and the labels issued at that level: active package codes plus
    lot labels, or active carton codes (a carton holds at least one package, so cartons have the
    same ceiling, counted apart: packages in cartons need both labels)."""
    product = session.get(Product, lot.product_id)
    assert product is not None
    packages = _in_product_units(lot, product) / (product.package_size or Decimal(1))
    limit = int(packages.to_integral_value(rounding=ROUND_FLOOR))
    codes = session.execute(
        select(func.count())
        .select_from(Unit)
        .where(Unit.lot_id == lot.id, Unit.status == UnitStatus.ACTIVE, Unit.level == level)  # type: ignore[arg-type]
    ).scalar_one()
    if level == UnitLevel.CARTON:
        return Capacity(limit=limit, used=int(codes))
    lot_labels = session.execute(
        select(func.coalesce(func.sum(PrintRun.quantity), 0)).where(
            PrintRun.lot_id == lot.id,  # type: ignore[arg-type]
            PrintRun.kind == PrintKind.LOT,  # type: ignore[arg-type]
            PrintRun.reprint_of_id.is_(None),  # type: ignore[union-attr]
            PrintRun.status != PrintStatus.CANCELLED,  # type: ignore[arg-type]
        )
    ).scalar_one()
    return Capacity(limit=limit, used=int(codes) + int(lot_labels))


def check(
    *, session: Session, lot: Lot, wanted: int, override_reason: str | None, level: UnitLevel = UnitLevel.UNIT
) -> Capacity:
    """Refuse ``wanted`` more labels beyond the lot's capacity unless an override reason is given."""
    room = capacity(session=session, lot=lot, level=level)
    if wanted > room.left and not override_reason:
        what = "carton labels" if level == UnitLevel.CARTON else "labels"
        raise RuleViolation(
            f"Lot {lot.lot_code} holds {room.limit} packages and {room.used} {what} are issued: "
            f"{room.left} more may be printed, not {wanted}. Give an override reason to print more.",
            code="over_capacity",
            limit=room.limit,
            used=room.used,
            left=room.left,
        )
    return room
