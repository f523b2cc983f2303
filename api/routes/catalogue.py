"""Locations, products and the administrative units (communes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import CurrentActor, IdempotencyKey, SessionDep
from api.paging import PAGED, Cursor, Offset, announce
from trace import admin_units, locations, products
from trace.errors import NotFound
from trace.locations import LocationKind

router = APIRouter(tags=["master data"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post("/locations", status_code=201, response_model=locations.LocationPublic)
def create_location(
    session: SessionDep, actor: CurrentActor, data: locations.LocationCreate, idempotency_key: IdempotencyKey = None
) -> locations.LocationPublic:
    """Register a growing area, packing facility, warehouse or shop (a retry with the same key registers it once)."""
    return locations.to_public(
        locations.create_location(session=session, actor=actor, data=data, idempotency_key=idempotency_key)
    )


@router.get("/locations", response_model=list[locations.LocationPublic], responses=PAGED)
def list_locations(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    organisation_id: int | None = None,
    kind: LocationKind | None = None,
    cursor: Cursor = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> list[locations.LocationPublic]:
    """Locations (filter by organisation and kind)."""
    rows = locations.list_locations(
        session=session, organisation_id=organisation_id, kind=kind, cursor=cursor, offset=offset, limit=limit
    )
    announce(request, response, rows)
    return [locations.to_public(x) for x in rows]


@router.get("/locations/{location_id}", response_model=locations.LocationPublic)
def get_location(session: SessionDep, actor: CurrentActor, location_id: int) -> locations.LocationPublic:
    """One location."""
    return locations.to_public(locations.get_location(session=session, location_id=location_id))


@router.patch("/locations/{location_id}", response_model=locations.LocationPublic)
def update_location(
    session: SessionDep, actor: CurrentActor, location_id: int, data: locations.LocationUpdate
) -> locations.LocationPublic:
    """Edit a location (a new version)."""
    return locations.to_public(
        locations.update_location(session=session, actor=actor, location_id=location_id, data=data)
    )


@router.post("/products", status_code=201, response_model=products.ProductPublic)
def create_product(session: SessionDep, actor: CurrentActor, data: products.ProductCreate) -> products.ProductPublic:
    """Register a product with its GTIN, or have the instance assign one from its company prefix."""
    return products.ProductPublic.model_validate(products.create_product(session=session, actor=actor, data=data))


@router.get("/products", response_model=list[products.ProductPublic], responses=PAGED)
def list_products(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    organisation_id: int | None = None,
    category: str | None = None,
    cursor: Cursor = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> list[products.ProductPublic]:
    """Products (filter by organisation, category)."""
    rows = products.list_products(
        session=session, organisation_id=organisation_id, category=category, cursor=cursor, offset=offset, limit=limit
    )
    announce(request, response, rows)
    return [products.ProductPublic.model_validate(p) for p in rows]


@router.get("/products/{product_id}", response_model=products.ProductPublic)
def get_product(session: SessionDep, actor: CurrentActor, product_id: int) -> products.ProductPublic:
    """One product."""
    return products.ProductPublic.model_validate(products.get_product(session=session, product_id=product_id))


@router.patch("/products/{product_id}", response_model=products.ProductPublic)
def update_product(
    session: SessionDep, actor: CurrentActor, product_id: int, data: products.ProductUpdate
) -> products.ProductPublic:
    """Edit a product (a new version; printed labels keep the old one)."""
    return products.ProductPublic.model_validate(
        products.update_product(session=session, actor=actor, product_id=product_id, data=data)
    )


@router.get("/communes", tags=["administrative units"])
def communes(q: Annotated[str | None, Query(max_length=100)] = None) -> list[dict[str, str]]:
    """Today's communes and wards of Hưng Yên (public; search without diacritics works)."""
    rows = admin_units.search_communes(q) if q else admin_units.communes()
    return [{"code": c.code, "name": c.name, "kind": c.kind} for c in rows]


@router.get("/communes/{code}", tags=["administrative units"])
def commune(code: str) -> dict[str, object]:
    """A commune with the pre-2025 communes it was formed from."""
    unit = admin_units.commune(code)
    if unit is None:
        raise NotFound(f"No commune with code {code}")
    return {
        "code": unit.code,
        "name": unit.name,
        "kind": unit.kind,
        "former": [
            {"code": f.code, "name": f.name, "district": f.district_name, "province": f.province_name}
            for f in admin_units.formers_for_current(code)
        ],
    }
