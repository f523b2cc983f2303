"""The designation registry (public reads) and the holders' rights to use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import CurrentActor, IdempotencyKey, OptionalActor, SessionDep
from api.paging import PAGED, Cursor, Offset, announce
from trace.designations import registry, rights
from trace.designations.models import DesignationKind, RightStatus

router = APIRouter(tags=["designations"])


@router.get("/designations", response_model=list[registry.DesignationPublic], responses=PAGED)
def list_(
    request: Request,
    response: Response,
    session: SessionDep,
    kind: DesignationKind | None = None,
    category: Annotated[str | None, Query(max_length=60)] = None,
    holder_organisation_id: int | None = None,
    active: bool | None = None,
    cursor: Cursor = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[registry.DesignationPublic]:
    """The public registry of geographical indications, collective and certification marks (no login)."""
    rows = registry.list_designations(
        session=session,
        kind=kind,
        category=category,
        holder_organisation_id=holder_organisation_id,
        active=active,
        cursor=cursor,
        offset=offset,
        limit=limit,
    )
    announce(request, response, rows)
    return [registry.to_public(session=session, designation=d) for d in rows]


@router.get("/designations/{designation_id}", response_model=registry.DesignationPublic)
def get(session: SessionDep, designation_id: int) -> registry.DesignationPublic:
    """One designation: its number, holder, protected area and rules (no login)."""
    return registry.to_public(
        session=session, designation=registry.get_designation(session=session, designation_id=designation_id)
    )


@router.post("/designations", status_code=201, response_model=registry.DesignationPublic)
def create(
    session: SessionDep, actor: CurrentActor, data: registry.DesignationCreate, idempotency_key: IdempotencyKey = None
) -> registry.DesignationPublic:
    """Register a designation (province admin or authority); an area over pre-2025 units is mapped to today's."""
    return registry.to_public(
        session=session,
        designation=registry.create_designation(
            session=session, actor=actor, data=data, idempotency_key=idempotency_key
        ),
    )


@router.patch("/designations/{designation_id}", response_model=registry.DesignationPublic)
def update(
    session: SessionDep, actor: CurrentActor, designation_id: int, data: registry.DesignationUpdate
) -> registry.DesignationPublic:
    """Change a designation's record (province admin or authority); an area field replaces the whole area."""
    return registry.to_public(
        session=session,
        designation=registry.update_designation(session=session, actor=actor, designation_id=designation_id, data=data),
    )


@router.get("/designations/{designation_id}/rights", response_model=list[rights.RightPublic])
def list_rights(
    session: SessionDep, actor: OptionalActor, designation_id: int, status: RightStatus | None = None
) -> list[rights.RightPublic]:
    """Who may use the designation (no login); quotas and scopes only for the holder, grantee and officials."""
    designation = registry.get_designation(session=session, designation_id=designation_id)
    return [
        rights.to_public(session=session, right=right, actor=actor, holder_id=designation.holder_organisation_id)
        for right in rights.list_rights(session=session, designation_id=designation_id, status=status)
    ]


@router.post("/designations/{designation_id}/rights", status_code=201, response_model=rights.RightPublic)
def grant(
    session: SessionDep,
    actor: CurrentActor,
    designation_id: int,
    data: rights.RightCreate,
    idempotency_key: IdempotencyKey = None,
) -> rights.RightPublic:
    """The holder grants an organisation the right to use its designation (a retry with the same key grants once)."""
    right = rights.grant_right(
        session=session, actor=actor, designation_id=designation_id, data=data, idempotency_key=idempotency_key
    )
    return rights.to_public(session=session, right=right, actor=actor)


def _change(
    session: SessionDep,
    actor: CurrentActor,
    right_id: int,
    action: str,
    data: rights.RightChange,
    idempotency_key: str | None,
) -> rights.RightPublic:
    right = rights.change_right(
        session=session, actor=actor, right_id=right_id, action=action, data=data, idempotency_key=idempotency_key
    )
    return rights.to_public(session=session, right=right, actor=actor)


@router.post("/rights/{right_id}/suspend", response_model=rights.RightPublic)
def suspend(
    session: SessionDep,
    actor: CurrentActor,
    right_id: int,
    data: rights.RightChange,
    idempotency_key: IdempotencyKey = None,
) -> rights.RightPublic:
    """Suspend a right (the holder), with a reason."""
    return _change(session, actor, right_id, "suspend", data, idempotency_key)


@router.post("/rights/{right_id}/reinstate", response_model=rights.RightPublic)
def reinstate(
    session: SessionDep,
    actor: CurrentActor,
    right_id: int,
    data: rights.RightChange,
    idempotency_key: IdempotencyKey = None,
) -> rights.RightPublic:
    """Lift a suspension (the holder), with a reason."""
    return _change(session, actor, right_id, "reinstate", data, idempotency_key)


@router.post("/rights/{right_id}/revoke", response_model=rights.RightPublic)
def revoke(
    session: SessionDep,
    actor: CurrentActor,
    right_id: int,
    data: rights.RightChange,
    idempotency_key: IdempotencyKey = None,
) -> rights.RightPublic:
    """Revoke a right for good (the holder), with a reason."""
    return _change(session, actor, right_id, "revoke", data, idempotency_key)
