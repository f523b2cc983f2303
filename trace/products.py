"""Products (trade items) identified by GTIN; the instance can assign GTINs from its prefix."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import update
from sqlmodel import Field, Session, SQLModel, col, select

from trace import history
from trace.access import Actor, require_member_of
from trace.errors import Conflict, NotFound, RuleViolation
from trace.identifiers import gtin_capacity, gtin_from_company_prefix, normalize_gtin
from trace.platform.config import get_settings
from trace.platform.paging import Page, key_order, page, paged
from trace.platform.sqltypes import in_chunks
from trace.platform.timeutil import utcnow
from trace.web_urls import ShownUrl, WebUrl

UNITS = ("kg", "g", "t", "head", "piece", "box", "bag", "l")


class ProductBase(SQLModel):
    name_vi: str = Field(min_length=2, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    category: str = Field(min_length=2, max_length=60, description="e.g. longan_fresh, longan_dried, chicken_live")
    unit: str = Field(default="kg", max_length=10, description="Unit lots of this product are counted in")
    package_size: Decimal | None = Field(
        default=None, gt=0, max_digits=12, decimal_places=3, description="Quantity (in unit) one labelled package holds"
    )
    image_url: WebUrl | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=2000)


class Product(ProductBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    gtin: str = Field(unique=True, index=True, max_length=14)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    gtin_assigned: bool = False
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow)


class ProductCreate(ProductBase):
    gtin: str | None = Field(default=None, description="GTIN-8/12/13/14; omit to have the instance assign one")
    organisation_id: int | None = None


class ProductUpdate(SQLModel):
    name_vi: str | None = Field(default=None, min_length=2, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, min_length=2, max_length=60)
    package_size: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=3)
    image_url: WebUrl | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=2000)


class ProductPublic(ProductBase):
    image_url: ShownUrl = None
    id: int
    gtin: str
    organisation_id: int
    gtin_assigned: bool
    version: int


class GtinCounter(SQLModel, table=True):
    """The next item reference to hand out under a company prefix (never reused)."""

    __tablename__ = "gtin_counter"

    company_prefix: str = Field(primary_key=True, max_length=12)
    next_item_reference: int = 0


def _assign_gtin(session: Session) -> str:
    prefix = get_settings().gtin_company_prefix
    if session.get(GtinCounter, prefix) is None:
        session.add(GtinCounter(company_prefix=prefix))
        session.flush()
    # An atomic increment: two writers can never read the same reference.
    while True:
        row = session.exec(
            update(GtinCounter)
            .where(GtinCounter.company_prefix == prefix)  # type: ignore[arg-type]
            .values(next_item_reference=GtinCounter.next_item_reference + 1)
            .returning(GtinCounter.next_item_reference)  # type: ignore[call-overload]
        ).one()
        reference = row[0] - 1
        if reference >= gtin_capacity(prefix):
            raise RuleViolation(f"Company prefix {prefix} has no GTINs left", code="gtin_capacity_exhausted")
        gtin = gtin_from_company_prefix(prefix, reference)
        if session.exec(select(Product.id).where(Product.gtin == gtin)).first() is None:
            return gtin


def create_product(*, session: Session, actor: Actor, data: ProductCreate) -> Product:
    """Register a trade item for the caller's organisation, with its GTIN given or assigned."""
    org_id = data.organisation_id or actor.organisation_id
    if org_id is None:
        raise RuleViolation("organisation_id is required", code="organisation_required")
    require_member_of(actor, org_id)
    if data.unit not in UNITS:
        raise RuleViolation(f"Unknown unit {data.unit!r}; use one of {', '.join(UNITS)}", code="unknown_unit")
    if data.gtin:
        gtin = normalize_gtin(data.gtin)
        if session.exec(select(Product.id).where(Product.gtin == gtin)).first() is not None:
            raise Conflict(f"GTIN {gtin} is already registered", code="gtin_taken")
        assigned = False
    else:
        gtin, assigned = _assign_gtin(session), True
    product = Product.model_validate(data, update={"gtin": gtin, "organisation_id": org_id, "gtin_assigned": assigned})
    session.add(product)
    session.flush()
    history.snapshot(session=session, entity="product", row=product, user_id=actor.user_id)
    return product


def get_product(*, session: Session, product_id: int) -> Product:
    """One product, or NotFound."""
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"Product {product_id} not found")
    return product


def products_by_id(*, session: Session, ids: Iterable[int | None]) -> dict[int, Product]:
    """Products by id (ids of no product are left out): one read for the products a page names."""
    wanted = sorted({i for i in ids if i is not None})
    found: dict[int, Product] = {}
    for chunk in in_chunks(wanted):
        found.update((p.id, p) for p in session.exec(select(Product).where(col(Product.id).in_(chunk))))  # type: ignore[misc]
    return found


def product_by_gtin(*, session: Session, gtin: str) -> Product:
    """A product by any GTIN form, or NotFound."""
    product = session.exec(select(Product).where(Product.gtin == normalize_gtin(gtin))).first()
    if product is None:
        raise NotFound(f"No product with GTIN {gtin}")
    return product


def update_product(*, session: Session, actor: Actor, product_id: int, data: ProductUpdate) -> Product:
    """Edit a product as a new version (printed labels and past events keep the old one)."""
    product = get_product(session=session, product_id=product_id)
    require_member_of(actor, product.organisation_id)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        return product
    for key, value in changes.items():
        setattr(product, key, value)
    product.version += 1
    session.add(product)
    session.flush()
    history.snapshot(session=session, entity="product", row=product, user_id=actor.user_id)
    return product


PRODUCT_ORDER = key_order("products", (col(Product.id), int, False))  # oldest first


def list_products(
    *,
    session: Session,
    organisation_id: int | None = None,
    category: str | None = None,
    cursor: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page[Product]:
    """Products, filtered (the catalogue is public), a page after ``cursor``."""
    query = select(Product)
    if organisation_id is not None:
        query = query.where(Product.organisation_id == organisation_id)
    if category:
        query = query.where(Product.category == category)
    rows = session.exec(paged(query, PRODUCT_ORDER, cursor=cursor, offset=offset, limit=limit))
    return page(rows, PRODUCT_ORDER, limit=limit, key=lambda x: (x.id,))
