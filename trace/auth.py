"""Bearer tokens for users and API keys for machines, resolved to an :class:`Actor`."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import delete, exists
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from trace.access import Actor, Role, require_org_admin
from trace.errors import Forbidden, NotFound, Unauthenticated
from trace.organisations import get_organisation
from trace.platform.config import get_settings
from trace.platform.sqltypes import enum_type
from trace.platform.timeutil import utcnow
from trace.users import User

KEY_PREFIX = "hyk_"
# Clocks of the processes that issue and check tokens may differ a little: a token issued "in the future"
# by more than this is refused, and one is still taken this long past its expiry.
CLOCK_LEEWAY = timedelta(seconds=30)
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti"]  # a token without an end (exp) would be good forever
PRUNE_BATCH = 100  # expired sign-out rows one sign-out deletes (each adds one)


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


class RevokedToken(SQLModel, table=True):
    """A bearer token signed out before its expiry (``POST /auth/logout``): refused until it would have expired,
    after which its row is pruned (an expired token is refused anyway)."""

    __tablename__ = "revoked_token"

    jti: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    expires_at: datetime = Field(index=True)
    revoked_at: datetime = Field(default_factory=utcnow)


class Token(SQLModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def issue_token(user: User) -> Token:
    """A signed bearer token for a user (HS256 with the instance secret)."""
    settings = get_settings()
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    now = utcnow()
    # jti names this one token, so that it alone can be signed out (RevokedToken).
    claims = {
        "sub": str(user.id),
        "tv": user.token_version,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    token = jwt.encode(claims, settings.secret_key, algorithm="HS256")
    return Token(access_token=token, expires_in=int(ttl.total_seconds()))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def actor_for_user(user: User) -> Actor:
    """The actor a logged-in user acts as."""
    return Actor(role=user.role, organisation_id=user.organisation_id, user_id=user.id, name=user.full_name)


@dataclass(frozen=True)
class TokenClaims:
    """What a verified user token says: whose it is, which one it is, and until when it is good."""

    user_id: int
    token_version: object  # compared with the user's; whatever the token carried
    jti: str
    expires_at: datetime


def _bad_token() -> Unauthenticated:
    return Unauthenticated("Invalid or expired token", code="bad_token")


def decode_token(token: str) -> TokenClaims:
    """Verify a user JWT without the database: signature, an expiry not passed, an issue time not in the future,
    and the claims every token we issue carries; raise ``bad_token`` otherwise."""
    try:
        claims = jwt.decode(
            token,
            get_settings().secret_key,
            algorithms=["HS256"],
            options={"require": REQUIRED_CLAIMS},
            leeway=CLOCK_LEEWAY,
        )
        user_id, jti = int(claims["sub"]), claims["jti"]
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (jwt.PyJWTError, KeyError, ValueError, TypeError, OverflowError, OSError):
        raise _bad_token() from None
    if not isinstance(jti, str) or not 1 <= len(jti) <= 64:
        raise _bad_token()
    return TokenClaims(user_id=user_id, token_version=claims.get("tv"), jti=jti, expires_at=expires_at)


def _token_user(session: Session, claims: TokenClaims) -> tuple[User, bool]:
    # One read per request: the user and whether this token was signed out.
    signed_out = exists().where(col(RevokedToken.jti) == claims.jti)
    row = session.execute(select(User, signed_out.label("signed_out")).where(col(User.id) == claims.user_id)).first()
    if row is None:
        raise _bad_token()
    user, revoked = row
    # A password change, a reset or a removal bumps token_version: every older token ends with it.
    if not user.active or user.token_version != claims.token_version:
        raise _bad_token()
    return user, bool(revoked)


def actor_from_token(*, session: Session, token: str) -> Actor:
    """Resolve a bearer token (user JWT or ``hyk_`` API key) to its actor; a signed-out token is refused."""
    if token.startswith(KEY_PREFIX):
        key = session.exec(select(ApiKey).where(ApiKey.key_hash == _sha(token))).first()
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("Invalid or revoked API key", code="bad_api_key")
        return Actor(role=key.role, organisation_id=key.organisation_id, api_key_id=key.id, name=key.name)
    user, revoked = _token_user(session, decode_token(token))
    if revoked:
        raise _bad_token()
    return actor_for_user(user)


def sign_out(*, session: Session, token: str) -> None:
    """End the presented user token before its expiry (it alone: the user's other tokens keep working).

    Signing out a token already signed out changes nothing; an API key is revoked by its organisation's
    administrator instead (:func:`revoke_api_key`).
    """
    if token.startswith(KEY_PREFIX):
        raise Forbidden("An API key is not signed out: its organisation's administrator revokes it", code="user_only")
    claims = decode_token(token)
    _, revoked = _token_user(session, claims)  # a token already ended otherwise is refused here
    now = utcnow()
    # Rows of tokens that have expired anyway are no longer needed: each sign-out sweeps a few of them, those
    # no other sign-out is sweeping (two sweeps deleting the same rows in another order could deadlock).
    expired = (
        select(col(RevokedToken.jti))
        .where(col(RevokedToken.expires_at) < now - CLOCK_LEEWAY)
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(RevokedToken).where(col(RevokedToken.jti).in_(expired)))
    if revoked:
        return
    try:
        with session.begin_nested():  # the same token signed out twice at once: the first row stands
            session.add(
                RevokedToken(jti=claims.jti, user_id=claims.user_id, expires_at=claims.expires_at, revoked_at=now)
            )
            session.flush()
    except IntegrityError:
        pass


def sign_out_everywhere(*, session: Session, user_id: int) -> None:
    """End every token and browser session of a user, as a password change does (the user signs in again)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    user.token_version += 1
    session.add(user)


def create_api_key(*, session: Session, actor: Actor, organisation_id: int, data: ApiKeyCreate) -> ApiKeyIssued:
    """An organisation administrator issues a machine key; the secret is shown once."""
    require_org_admin(actor, organisation_id)
    get_organisation(session=session, organisation_id=organisation_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        organisation_id=organisation_id,
        name=data.name,
        prefix=secret[:12],
        key_hash=_sha(secret),
        created_by_user_id=actor.user_id,
    )
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
