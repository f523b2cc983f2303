"""Organisations, their members and their API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import CurrentActor, IdempotencyKey, SessionDep
from api.paging import PAGED, Cursor, Offset, announce
from trace import auth, history, organisations, users
from trace.access import can_see_private
from trace.errors import Forbidden
from trace.organisations import OrgKind

router = APIRouter(prefix="/organisations", tags=["organisations"])


@router.post("", status_code=201, response_model=organisations.OrganisationPublic)
def create(
    session: SessionDep,
    actor: CurrentActor,
    data: organisations.OrganisationCreate,
    idempotency_key: IdempotencyKey = None,
) -> organisations.OrganisationPublic:
    """Onboard an organisation (province admin); a retry with the same key registers it once."""
    return organisations.to_public(
        organisations.create_organisation(session=session, actor=actor, data=data, idempotency_key=idempotency_key),
        actor,
    )


@router.get("", response_model=list[organisations.OrganisationPublic], responses=PAGED)
def list_(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    kind: OrgKind | None = None,
    commune_code: str | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Cursor = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[organisations.OrganisationPublic]:
    """The directory of organisations (filter by kind, commune, name)."""
    rows = organisations.list_organisations(
        session=session,
        kind=kind,
        commune_code=commune_code,
        q=q,
        cursor=cursor,
        offset=offset,
        limit=limit,
        reader=actor,
    )
    announce(request, response, rows)
    return [organisations.to_public(o, actor) for o in rows]


@router.get("/{organisation_id}", response_model=organisations.OrganisationPublic)
def get(session: SessionDep, actor: CurrentActor, organisation_id: int) -> organisations.OrganisationPublic:
    """One organisation."""
    return organisations.to_public(
        organisations.get_organisation(session=session, organisation_id=organisation_id), actor
    )


@router.patch("/{organisation_id}", response_model=organisations.OrganisationPublic)
def update(
    session: SessionDep, actor: CurrentActor, organisation_id: int, data: organisations.OrganisationUpdate
) -> organisations.OrganisationPublic:
    """Edit an organisation (a new version; past events keep the old one)."""
    return organisations.to_public(
        organisations.update_organisation(session=session, actor=actor, organisation_id=organisation_id, data=data),
        actor,
    )


@router.get("/{organisation_id}/versions")
def versions(session: SessionDep, actor: CurrentActor, organisation_id: int) -> list[dict[str, object]]:
    """Every version of an organisation's master data (its administrators, inspectors and the admin)."""
    if not can_see_private(actor, organisation_id):
        raise Forbidden("Only the organisation itself and inspectors see its history", code="private")
    return [
        {"version": v.version, "valid_from": v.valid_from, "data": v.data}
        for v in history.history(session=session, entity="organisation", entity_id=organisation_id)
    ]


@router.post("/{organisation_id}/administrators", status_code=201, response_model=users.Invitation)
def create_admin(
    session: SessionDep, actor: CurrentActor, organisation_id: int, data: users.UserCreate
) -> users.Invitation:
    """The province admin creates an organisation's first administrator; returns a one-time link."""
    return users.create_org_admin(session=session, actor=actor, organisation_id=organisation_id, data=data)


@router.get("/{organisation_id}/members", response_model=list[users.UserPublic])
def members(session: SessionDep, actor: CurrentActor, organisation_id: int) -> list[users.UserPublic]:
    """The organisation's members (its administrators only)."""
    return [
        users.to_public(u) for u in users.list_members(session=session, actor=actor, organisation_id=organisation_id)
    ]


@router.post("/{organisation_id}/members", status_code=201, response_model=users.Invitation)
def invite(
    session: SessionDep,
    actor: CurrentActor,
    organisation_id: int,
    data: users.UserCreate,
    idempotency_key: IdempotencyKey = None,
) -> users.Invitation:
    """Invite a member; the one-time link is returned to the administrator to hand on. A retry with the same key
    invites nobody new and returns a fresh link to the same person (the first stops working)."""
    return users.invite_member(
        session=session, actor=actor, organisation_id=organisation_id, data=data, idempotency_key=idempotency_key
    )


@router.delete("/{organisation_id}/members/{user_id}", response_model=users.UserPublic)
def remove(session: SessionDep, actor: CurrentActor, organisation_id: int, user_id: int) -> users.UserPublic:
    """Remove a member (deactivated, kept for the audit trail)."""
    return users.to_public(
        users.remove_member(session=session, actor=actor, organisation_id=organisation_id, user_id=user_id)
    )


@router.post("/{organisation_id}/members/{user_id}/reset-password", response_model=users.Invitation)
def reset(session: SessionDep, actor: CurrentActor, organisation_id: int, user_id: int) -> users.Invitation:
    """Reset a member's password: returns a one-time link."""
    return users.reset_password(session=session, actor=actor, organisation_id=organisation_id, user_id=user_id)


@router.post("/{organisation_id}/api-keys", status_code=201, response_model=auth.ApiKeyIssued)
def create_key(
    session: SessionDep, actor: CurrentActor, organisation_id: int, data: auth.ApiKeyCreate
) -> auth.ApiKeyIssued:
    """Issue an API key for a machine (shown once)."""
    return auth.create_api_key(session=session, actor=actor, organisation_id=organisation_id, data=data)


@router.get("/{organisation_id}/api-keys", response_model=list[auth.ApiKeyPublic])
def list_keys(session: SessionDep, actor: CurrentActor, organisation_id: int) -> list[auth.ApiKeyPublic]:
    """The organisation's API keys (without secrets)."""
    return [
        auth.ApiKeyPublic.model_validate(k)
        for k in auth.list_api_keys(session=session, actor=actor, organisation_id=organisation_id)
    ]


@router.delete("/{organisation_id}/api-keys/{key_id}", response_model=auth.ApiKeyPublic)
def revoke_key(session: SessionDep, actor: CurrentActor, organisation_id: int, key_id: int) -> auth.ApiKeyPublic:
    """Revoke an API key."""
    return auth.ApiKeyPublic.model_validate(
        auth.revoke_api_key(session=session, actor=actor, organisation_id=organisation_id, key_id=key_id)
    )
