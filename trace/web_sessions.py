"""Browser sessions for the workspace: a random token in an HttpOnly cookie and only its hash here, so
a session can be ended for good (log out, password change, removal), and a CSRF token bound to it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlmodel import Field, Session, SQLModel, select

from trace.errors import Unauthenticated
from trace.platform.config import get_settings
from trace.platform.timeutil import utcnow
from trace.users import User

TOUCH_EVERY = timedelta(minutes=5)  # last_seen is written at most this often (a write per page is waste)


class WebSession(SQLModel, table=True):
    """One signed-in browser."""

    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_version: int  # the user's at sign-in: a password change or reset ends the session
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def open_session(*, session: Session, user: User) -> str:
    """Start a session for a user who has just proven who they are; the token for the cookie."""
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_sha(token), user_id=user.id, token_version=user.token_version))  # type: ignore[arg-type]
    session.flush()
    return token


def resolve(*, session: Session, token: str) -> User:
    """The user of a live session: not ended, not idle longer than the token lifetime, password unchanged."""
    found = session.exec(select(WebSession).where(WebSession.token_hash == _sha(token))).first()
    now = utcnow()
    idle = timedelta(minutes=get_settings().token_ttl_minutes)
    if found is None or found.ended_at is not None or now - _aware(found.last_seen_at) > idle:
        raise Unauthenticated("Your session has ended: sign in again", code="session_ended")
    user = session.get(User, found.user_id)
    if user is None or not user.active or user.token_version != found.token_version:
        raise Unauthenticated("Your session has ended: sign in again", code="session_ended")
    if now - _aware(found.last_seen_at) > TOUCH_EVERY:
        found.last_seen_at = now
        session.add(found)
    return user


def end_session(*, session: Session, token: str) -> None:
    """Sign out: the token never works again."""
    found = session.exec(select(WebSession).where(WebSession.token_hash == _sha(token))).first()
    if found is not None and found.ended_at is None:
        found.ended_at = utcnow()
        session.add(found)


def csrf_token(token: str) -> str:
    """The form token for a session (or for a sign-in form's own cookie): only its holder can make it."""
    key = hashlib.sha256(b"hytrace-csrf:" + get_settings().secret_key.encode()).digest()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(token: str | None, sent: str | None) -> bool:
    """Whether a submitted form token belongs to this session."""
    if not token or not sent:
        return False
    return hmac.compare_digest(csrf_token(token), sent)
