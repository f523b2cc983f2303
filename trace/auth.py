"""Bearer tokens for users and API keys for machines, resolved to an :class:`Actor`."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import jwt
from sqlmodel import Field, Session, SQLModel, select

from trace.access import Actor, Role, require_org_admin
from trace.config import get_settings
from trace.errors import Forbidden, NotFound, Unauthenticated
from trace.organisations import get_organisation
from trace.sqltypes import enum_type
from trace.timeutil import utcnow
from trace.users import User

KEY_PREFIX = "hyk_"


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(unique=True, max_length=64)
    role: Role = Field(default=Role.MEMBER, sa_type=enum_type(Role))
    created_by_user_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class ApiKeyCreate(SQLModel):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyPublic(SQLModel):
    id: int
    organisation_id: int
    name: str
    prefix: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyPublic):
    key: str  # shown once


class Token(SQLModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def issue_token(user: User) -> Token:
    """A signed bearer token for a user (HS256 with the instance secret)."""
    settings = get_settings()
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    now = utcnow()
    claims = {"sub": str(user.id), "tv": user.token_version, "iat": now, "exp": now + ttl}
    token = jwt.encode(claims, settings.secret_key, algorithm="HS256")
    return Token(access_token=token, expires_in=int(ttl.total_seconds()))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def actor_for_user(user: User) -> Actor:
    """The actor a logged-in user acts as."""
    return Actor(role=user.role, organisation_id=user.organisation_id, user_id=user.id, name=user.full_name)


def actor_from_token(*, session: Session, token: str) -> Actor:
    """Resolve a bearer token (user JWT or ``hyk_`` API key) to its actor."""
    if token.startswith(KEY_PREFIX):
        key = session.exec(select(ApiKey).where(ApiKey.key_hash == _sha(token))).first()
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("Invalid or revoked API key", code="bad_api_key")
        return Actor(role=key.role, organisation_id=key.organisation_id, api_key_id=key.id, name=key.name)
    try:
        claims = jwt.decode(token, get_settings().secret_key, algorithms=["HS256"])
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        raise Unauthenticated("Invalid or expired token", code="bad_token") from None
    user = session.get(User, user_id)
    if user is None or not user.active or user.token_version != claims.get("tv"):
        raise Unauthenticated("Invalid or expired token", code="bad_token")
    return actor_for_user(user)


def create_api_key(*, session: Session, actor: Actor, organisation_id: int, data: ApiKeyCreate) -> ApiKeyIssued:
    """An organisation administrator issues a machine key; the secret is shown once."""
    require_org_admin(actor, organisation_id)
    get_organisation(session=session, organisation_id=organisation_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(organisation_id=organisation_id, name=data.name, prefix=secret[:12],
                 key_hash=_sha(secret), created_by_user_id=actor.user_id)
    session.add(key)
    session.flush()
    return ApiKeyIssued.model_validate(key, update={"key": secret})


def list_api_keys(*, session: Session, actor: Actor, organisation_id: int) -> list[ApiKey]:
    """An organisation's keys (never their secrets)."""
    require_org_admin(actor, organisation_id)
    return list(session.exec(select(ApiKey).where(ApiKey.organisation_id == organisation_id).order_by(ApiKey.id)))  # type: ignore[arg-type]


def revoke_api_key(*, session: Session, actor: Actor, organisation_id: int, key_id: int) -> ApiKey:
    """Revoke a key at once."""
    require_org_admin(actor, organisation_id)
    key = session.get(ApiKey, key_id)
    if key is None or key.organisation_id != organisation_id:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
    return key


def require_user(actor: Actor) -> int:
    """Some actions (password change) belong to a person, not a machine key."""
    if actor.user_id is None:
        raise Forbidden("This needs a user login, not an API key", code="user_only")
    return actor.user_id
