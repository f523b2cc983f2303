"""Read-only API keys for the national portal's pulls, issued by the province administrator."""

from __future__ import annotations

from sqlmodel import Field, Session, SQLModel

from trace import auth
from trace.access import Actor, Role, require_admin
from trace.errors import RuleViolation
from trace.organisations import OrgKind, get_organisation


class PortalKeyCreate(SQLModel):
    name: str = Field(min_length=1, max_length=100)
    organisation_id: int = Field(
        description="The authority holding the key (e.g. the Department of Science and Technology)"
    )


def issue_portal_key(*, session: Session, actor: Actor, data: PortalKeyCreate) -> auth.ApiKeyIssued:
    """A key that reads the portal feeds and nothing else (shown once); revoked like any API key."""
    require_admin(actor)
    org = get_organisation(session=session, organisation_id=data.organisation_id)
    if org.kind != OrgKind.AUTHORITY:
        raise RuleViolation("A portal key is held by an authority organisation", code="not_an_authority")
    issued = auth.create_api_key(
        session=session, actor=actor, organisation_id=data.organisation_id, data=auth.ApiKeyCreate(name=data.name)
    )
    key = session.get(auth.ApiKey, issued.id)
    assert key is not None
    key.role = Role.PORTAL
    session.add(key)
    session.flush()
    return issued.model_copy(update={"role": Role.PORTAL})
