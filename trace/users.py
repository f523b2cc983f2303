"""Users, invitations and password resets (one-time links: no mail server is assumed)."""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import EmailStr, field_validator
from sqlalchemy import Index, func, update
from sqlmodel import Field, Session, SQLModel, col, select

from trace.access import Actor, Role, require_admin, require_org_admin
from trace.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RuleViolation,
    TooManyAttempts,
    Unauthenticated,
)
from trace.idempotency import checked_key, insert_once, key_reused
from trace.organisations import get_organisation
from trace.platform.config import get_settings
from trace.platform.sqltypes import enum_type
from trace.platform.timeutil import utcnow

_hasher = PasswordHasher()
LINK_TTL = timedelta(days=3)
MIN_PASSWORD = 10


class User(SQLModel, table=True):
    # An invitation sent twice (double tap, retry) creates one user: its key is unique in the organisation.
    __table_args__ = (Index("ix_user_organisation_id_request_key", "organisation_id", "request_key", unique=True),)

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
    request_key: str | None = Field(default=None, max_length=100, description="The inviting request's idempotency key")
    # Wrong passwords in a row, and until when sign-in is paused after too many (authenticate()).
    failed_sign_ins: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    sign_in_paused_until: datetime | None = None


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
    for old in session.exec(
        select(OneTimeLink).where(OneTimeLink.user_id == user.id, col(OneTimeLink.used_at).is_(None))
    ):
        old.used_at = utcnow()
        session.add(old)
    session.add(OneTimeLink(token_hash=_sha(token), user_id=user.id, purpose=purpose, expires_at=expires))
    return token, expires


def _email_free(session: Session, email: str) -> str:
    email = email.strip().lower()
    if session.exec(select(User).where(User.email == email)).first():
        raise Conflict(f"A user with email {email} exists", code="email_taken")
    return email


def create_user(
    *,
    session: Session,
    email: str,
    full_name: str,
    role: Role,
    organisation_id: int | None,
    password: str | None = None,
) -> User:
    """Create a user (callers check who may); email is unique, compared lower-case."""
    user = User(
        email=_email_free(session, email),
        full_name=full_name,
        role=role,
        organisation_id=organisation_id,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def _may_give(actor: Actor, role: Role) -> None:
    if role == Role.ADMIN:
        raise Forbidden("Province administrators are created by the operator", code="role_not_grantable")
    if role == Role.PORTAL:  # a machine's role: the portal's read-only keys (trace/portal/keys.py), never a person's
        raise Forbidden("The portal role belongs to API keys, not to people", code="role_not_grantable")
    if role == Role.INSPECTOR and not actor.is_admin:
        raise Forbidden("Only the province administrator appoints inspectors", code="role_not_grantable")


def _invited(session: Session, organisation_id: int, key: str, data: UserCreate) -> User | None:
    found = session.exec(select(User).where(User.organisation_id == organisation_id, User.request_key == key)).first()
    if found is not None and (found.email, found.full_name, found.role) != (
        data.email.strip().lower(),
        data.full_name,
        data.role,
    ):
        raise key_reused("invitation")
    return found


def _invitation(session: Session, user: User, purpose: str = "invite") -> Invitation:
    token, expires = _issue_link(session=session, user=user, purpose=purpose)
    return Invitation(user=to_public(user), token=token, expires_at=expires)


def invite_member(
    *, session: Session, actor: Actor, organisation_id: int, data: UserCreate, idempotency_key: str | None = None
) -> Invitation:
    """An organisation administrator (or the province admin) invites a member; returns the one-time link.

    Sent again with the same key, it creates nobody: only the link's hash is kept, so the answer carries
    a fresh link to the same person (the first one stops working) while the invitation is unused.
    """
    require_org_admin(actor, organisation_id)
    get_organisation(session=session, organisation_id=organisation_id)
    _may_give(actor, data.role)
    key = checked_key(idempotency_key)
    if key is not None and (found := _invited(session, organisation_id, key, data)):
        return _invited_again(session, found)
    user = User(
        email=_email_free(session, data.email),
        full_name=data.full_name,
        role=data.role,
        organisation_id=organisation_id,
        request_key=key,
    )
    stored = insert_once(
        session=session, row=user, replay=lambda: _invited(session, organisation_id, key, data) if key else None
    )
    if stored is not user:
        return _invited_again(session, stored)
    return _invitation(session, user)


def _invited_again(session: Session, user: User) -> Invitation:
    if not user.active or user.password_hash is not None:
        raise Conflict("This invitation was already used", code="invitation_used")
    return _invitation(session, user)


def _member(*, session: Session, actor: Actor, organisation_id: int, user_id: int) -> User:
    require_org_admin(actor, organisation_id)
    user = session.get(User, user_id)
    if user is None or user.organisation_id != organisation_id:
        raise NotFound(f"User {user_id} is not a member of organisation {organisation_id}")
    return user


def _keeps_an_admin(session: Session, user: User) -> None:
    # Without an administrator of its own, an organisation could add or remove nobody but through the province.
    if user.role != Role.ORG_ADMIN or not user.active:
        return
    others = session.exec(
        select(func.count())
        .select_from(User)
        .where(
            User.organisation_id == user.organisation_id,
            User.role == Role.ORG_ADMIN,
            User.active == True,  # noqa: E712
            User.id != user.id,
        )
    ).one()
    if not others:
        raise RuleViolation(
            "An organisation keeps at least one administrator: appoint another first", code="last_org_admin"
        )


def reset_password(*, session: Session, actor: Actor, organisation_id: int, user_id: int) -> Invitation:
    """An administrator resets a member's password: old password and tokens stop working."""
    user = _member(session=session, actor=actor, organisation_id=organisation_id, user_id=user_id)
    if user.id == actor.user_id:
        # It would end the very session that is to show the new link: one changes one's own password instead.
        raise RuleViolation("Change your own password instead", code="cannot_reset_self")
    if not user.active:
        raise RuleViolation("This user was removed", code="user_removed")
    user.password_hash = None
    user.token_version += 1
    session.add(user)
    return _invitation(session, user, "reset")


def remove_member(*, session: Session, actor: Actor, organisation_id: int, user_id: int) -> User:
    """Deactivate a member (kept for the audit trail of the events they recorded); removing twice changes nothing."""
    user = _member(session=session, actor=actor, organisation_id=organisation_id, user_id=user_id)
    if user.id == actor.user_id:
        raise RuleViolation("You cannot remove yourself", code="cannot_remove_self")
    if not user.active:
        return user
    _keeps_an_admin(session, user)
    user.active = False
    user.token_version += 1
    session.add(user)
    return user


class RoleChange(SQLModel):
    role: Role


def change_role(*, session: Session, actor: Actor, organisation_id: int, user_id: int, data: RoleChange) -> User:
    """An administrator gives a member another role (the rules of an invitation); it applies at once."""
    user = _member(session=session, actor=actor, organisation_id=organisation_id, user_id=user_id)
    if user.id == actor.user_id:
        raise RuleViolation("You cannot change your own role", code="cannot_change_own_role")
    if not user.active:
        raise RuleViolation("This user was removed", code="user_removed")
    if data.role == user.role:
        return user
    _may_give(actor, data.role)
    if user.role == Role.INSPECTOR and not actor.is_admin:
        raise Forbidden("Only the province administrator appoints inspectors", code="role_not_grantable")
    _keeps_an_admin(session, user)
    user.role = data.role
    session.add(user)
    session.flush()
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
    user.failed_sign_ins, user.sign_in_paused_until = 0, None  # a new sign-in link lifts a pause (as its message says)
    session.add(link)
    session.add(user)
    return user


def authenticate(*, session: Session, email: str, password: str) -> User:
    """Check a password login.

    ``sign_in_failures_allowed`` wrong passwords in a row pause the account's sign-in for
    ``sign_in_pause_minutes``: while paused even the right password is refused (else the pause would tell
    a guesser when they are right); a new sign-in link (``use_link``) lifts it. The count is written before
    the error is raised, so a caller that rolls back on errors must commit first (the login routes do) or
    the count is lost.
    """
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None or not user.active or not user.password_hash:
        _hasher.hash("timing-equaliser")  # the same work as a real check
        raise Unauthenticated("Wrong email or password", code="bad_credentials")
    now = utcnow()
    if user.sign_in_paused_until is not None and user.sign_in_paused_until > now:
        wait = math.ceil((user.sign_in_paused_until - now).total_seconds())
        raise TooManyAttempts(
            f"Too many wrong passwords for this account: try again in {math.ceil(wait / 60)} "
            "minute(s), or ask your administrator for a new sign-in link",
            retry_after=wait,
        )
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        _count_failure(session, user, now)
        raise Unauthenticated("Wrong email or password", code="bad_credentials") from None
    if user.failed_sign_ins or user.sign_in_paused_until is not None:
        user.failed_sign_ins, user.sign_in_paused_until = 0, None
        session.add(user)
    return user


def _count_failure(session: Session, user: User, now: datetime) -> None:
    # In the database, not in Python: guesses sent at once must not read the same count and each write
    # it back plus one (on PostgreSQL the first UPDATE also makes the others wait for its commit).
    settings = get_settings()
    session.execute(update(User).where(col(User.id) == user.id).values(failed_sign_ins=col(User.failed_sign_ins) + 1))
    session.execute(
        update(User)
        .where(col(User.id) == user.id, col(User.failed_sign_ins) >= settings.sign_in_failures_allowed)
        .values(failed_sign_ins=0, sign_in_paused_until=now + timedelta(minutes=settings.sign_in_pause_minutes))
    )
    session.refresh(user, ["failed_sign_ins", "sign_in_paused_until"])


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
    return create_user(
        session=session,
        email=email,
        full_name="Quản trị tỉnh",
        role=Role.ADMIN,
        organisation_id=None,
        password=password,
    )


def create_org_admin(*, session: Session, actor: Actor, organisation_id: int, data: UserCreate) -> Invitation:
    """The province admin creates an organisation's first administrator (one-time link)."""
    require_admin(actor)
    return invite_member(
        session=session,
        actor=actor,
        organisation_id=organisation_id,
        data=UserCreate(email=data.email, full_name=data.full_name, role=Role.ORG_ADMIN),
    )
