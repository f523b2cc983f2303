"""Who is acting, and the one place that decides what each actor may read and write."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from trace.errors import Forbidden


class Role(StrEnum):
    """What a user or API key may do."""

    ADMIN = "admin"  # province administrator: onboarding, registry, everything
    ORG_ADMIN = "org_admin"  # manages its own organisation's members and data
    MEMBER = "member"  # writes for its own organisation only
    INSPECTOR = "inspector"  # reads everything, records inspections
    PORTAL = "portal"  # an API key that reads the national-portal export only (trace/portal/)


@dataclass(frozen=True)
class Actor:
    """An authenticated caller: a user (password/token) or a machine (API key)."""

    role: Role
    organisation_id: int | None
    user_id: int | None = None
    api_key_id: int | None = None
    name: str = ""

    @property
    def is_admin(self) -> bool:
        """Province administrator."""
        return self.role == Role.ADMIN

    @property
    def reads_everything(self) -> bool:
        """Admins and market inspectors see private fields of every organisation."""
        return self.role in (Role.ADMIN, Role.INSPECTOR)


def require_admin(actor: Actor) -> None:
    """Only the province administrator."""
    if not actor.is_admin:
        raise Forbidden("Only the province administrator may do this", code="admin_only")


def require_org_admin(actor: Actor, organisation_id: int) -> None:
    """The province admin, or an administrator of that organisation."""
    if actor.is_admin:
        return
    if actor.role == Role.ORG_ADMIN and actor.organisation_id == organisation_id:
        return
    raise Forbidden("Only an administrator of this organisation may do this", code="org_admin_only")


def require_member_of(actor: Actor, organisation_id: int) -> None:
    """Writes on an organisation's behalf need a member (or admin) of that organisation."""
    if actor.organisation_id == organisation_id and actor.role in (Role.ORG_ADMIN, Role.MEMBER):
        return
    raise Forbidden("You may only act for your own organisation", code="not_your_organisation")


def require_writer(actor: Actor) -> int:
    """The organisation an actor writes events for; inspectors and admins write none but inspections."""
    if actor.organisation_id is None or actor.role not in (Role.ORG_ADMIN, Role.MEMBER):
        raise Forbidden("This account cannot record events for an organisation", code="not_a_writer")
    return actor.organisation_id


def can_see_private(actor: Actor | None, organisation_id: int | None) -> bool:
    """Private fields (farming inputs, business documents) belong to their organisation."""
    if actor is None:
        return False
    return actor.reads_everything or (organisation_id is not None and actor.organisation_id == organisation_id)
