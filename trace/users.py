"""Users, invitations and password resets (one-time links: no mail server is assumed)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import EmailStr, field_validator
from sqlmodel import Field, Session, SQLModel, col, select

from trace.access import Actor, Role, require_admin, require_org_admin
from trace.errors import Conflict, Forbidden, NotFound, RuleViolation, Unauthenticated
from trace.organisations import get_organisation
from trace.sqltypes import enum_type
from trace.timeutil import utcnow

_hasher = PasswordHasher()
LINK_TTL = timedelta(days=3)
MIN_PASSWORD = 10


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, index=True, max_length=200)
    full_name: str = Field(max_length=120)
    role: Role = Field(sa_type=enum_type(Role))
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    password_hash: str | None = None
    active: bool = True
    # Bumped on password change/reset or removal: outstanding tokens stop working.
    token_version: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class OneTimeLink(SQLModel, table=True):
    __tablename__ = "one_time_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    purpose: str = Field(max_length=10)  # invite | reset
    expires_at: datetime
    used_at: datetime | None = None


class UserCreate(SQLModel):
    email: EmailStr
    full_name: str = Field(min_length=1, max_length=120)
    role: Role = Role.MEMBER


class UserPublic(SQLModel):
    id: int
    email: str
    full_name: str
    role: Role
    organisation_id: int | None
    active: bool
    has_password: bool = False


class Invitation(SQLModel):
    """What an administrator hands on: the one-time link is shown once, never stored in clear."""

    user: UserPublic
    token: str
    expires_at: datetime


class PasswordSet(SQLModel):
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=MIN_PASSWORD, max_length=200)


class PasswordChange(SQLModel):
    current_password: str = Field(max_length=200)
    new_password: str = Field(min_length=MIN_PASSWORD, max_length=200)

    @field_validator("new_password")
    @classmethod
    def _not_trivial(cls, value: str) -> str:
        if len(set(value)) < 4:
            raise ValueError("password is too simple")
        return value


def hash_password(password: str) -> str:
    """argon2id hash of a password."""
    return _hasher.hash(password)


def to_public(user: User) -> UserPublic:
    """The API shape of a user (never the hash)."""
    return UserPublic.model_validate(user, update={"has_password": user.password_hash is not None})


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _issue_link(*, session: Session, user: User, purpose: str) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires = utcnow() + LINK_TTL
    assert user.id is not None
    # Only the newest link works: an administrator resets again precisely when a link went astray.
    for old in session.exec(select(OneTimeLink).where(OneTimeLink.user_id == user.id, col(OneTimeLink.used_at).is_(None))):
        old.used_at = utcnow()
        session.add(old)
    session.add(OneTimeLink(token_hash=_sha(token), user_id=user.id, purpose=purpose, expires_at=expires))
    return token, expires


def create_user(
    *, session: Session, email: str, full_name: str, role: Role,
    organisation_id: int | None, password: str | None = None,
) -> User:
    """Create a user (callers check who may); email is unique, compared lower-case."""
    email = email.strip().lower()
    if session.exec(select(User).where(User.email == email)).first():
        raise Conflict(f"A user with email {email} exists", code="email_taken")
    user = User(
        email=email, full_name=full_name, role=role, organisation_id=organisation_id,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def invite_member(*, session: Session, actor: Actor, organisation_id: int, data: UserCreate) -> Invitation:
    """An organisation administrator (or the province admin) invites a member; returns the one-time link."""
    require_org_admin(actor, organisation_id)
    get_organisation(session=session, organisation_id=organisation_id)
    if data.role == Role.ADMIN:
        raise Forbidden("Province administrators are created by the operator", code="role_not_grantable")
    if data.role == Role.INSPECTOR and not actor.is_admin:
        raise Forbidden("Only the province administrator appoints inspectors", code="role_not_grantable")
    user = create_user(
        session=session, email=data.email, full_name=data.full_name, role=data.role,
        organisation_id=organisation_id,
    )
    token, expires = _issue_link(session=session, user=user, purpose="invite")
    return Invitation(user=to_public(user), token=token, expires_at=expires)


def _member(*, session: Session, actor: Actor, organisation_id: int, user_id: int) -> User:
    require_org_admin(actor, organisation_id)
    user = session.get(User, user_id)
    if user is None or user.organisation_id != organisation_id:
        raise NotFound(f"User {user_id} is not a member of organisation {organisation_id}")
    return user


def reset_password(*, session: Session, actor: Actor, organisation_id: int, user_id: int) -> Invitation:
    """An administrator resets a member's password: old password and tokens stop working."""
    user = _member(session=session, actor=actor, organisation_id=organisation_id, user_id=user_id)
    user.password_hash = None
    user.token_version += 1
    session.add(user)
    token, expires = _issue_link(session=session, user=user, purpose="reset")
    return Invitation(user=to_public(user), token=token, expires_at=expires)


def remove_member(*, session: Session, actor: Actor, organisation_id: int, user_id: int) -> User:
    """Deactivate a member (kept for the audit trail of the events they recorded)."""
    user = _member(session=session, actor=actor, organisation_id=organisation_id, user_id=user_id)
    if user.id == actor.user_id:
        raise RuleViolation("You cannot remove yourself", code="cannot_remove_self")
    user.active = False
    user.token_version += 1
    session.add(user)
    return user


def list_members(*, session: Session, actor: Actor, organisation_id: int) -> list[User]:
    """Members of an organisation (its administrators and the province admin only)."""
    require_org_admin(actor, organisation_id)
    return list(session.exec(select(User).where(User.organisation_id == organisation_id).order_by(User.id)))  # type: ignore[arg-type]


def use_link(*, session: Session, data: PasswordSet) -> User:
    """Set a password through an invitation or reset link, once."""
    link = session.exec(select(OneTimeLink).where(OneTimeLink.token_hash == _sha(data.token))).first()
    if link is None or link.used_at is not None or link.expires_at < utcnow():
        raise RuleViolation("This link is invalid, used or expired", code="link_invalid")
    user = session.get(User, link.user_id)
    if user is None or not user.active:
        raise RuleViolation("This link is invalid, used or expired", code="link_invalid")
    link.used_at = utcnow()
    user.password_hash = hash_password(data.password)
    user.token_version += 1
    session.add(link)
    session.add(user)
    return user


def authenticate(*, session: Session, email: str, password: str) -> User:
    """Check a password login."""
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None or not user.active or not user.password_hash:
        _hasher.hash("timing-equaliser")  # the same work as a real check
        raise Unauthenticated("Wrong email or password", code="bad_credentials")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated("Wrong email or password", code="bad_credentials") from None
    return user


def change_password(*, session: Session, user_id: int, data: PasswordChange) -> User:
    """A user changes their own password; other sessions are signed out."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    authenticate(session=session, email=user.email, password=data.current_password)
    user.password_hash = hash_password(data.new_password)
    user.token_version += 1
    session.add(user)
    return user


def ensure_admin(*, session: Session, email: str, password: str) -> User | None:
    """Create the bootstrap province administrator if no user has that email."""
    if not password:
        return None
    existing = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if existing:
        return None
    return create_user(session=session, email=email, full_name="Quản trị tỉnh", role=Role.ADMIN,
                       organisation_id=None, password=password)


def create_org_admin(*, session: Session, actor: Actor, organisation_id: int, data: UserCreate) -> Invitation:
    """The province admin creates an organisation's first administrator (one-time link)."""
    require_admin(actor)
    return invite_member(session=session, actor=actor, organisation_id=organisation_id,
                         data=UserCreate(email=data.email, full_name=data.full_name, role=Role.ORG_ADMIN))
