"""Login (OAuth2 password flow), sign-out, the current user, password change and one-time links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import BearerToken, CurrentActor, SessionDep
from trace import auth, users
from trace.errors import Unauthenticated

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=auth.Token)
def login(session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> auth.Token:
    """Exchange email (as username) and password for a bearer token. Wrong passwords in a row pause the
    account's sign-in (429 with Retry-After), whatever address they come from."""
    try:
        user = users.authenticate(session=session, email=form.username, password=form.password)
    except Unauthenticated:
        session.commit()  # the account's count of wrong passwords, which the error would roll back
        raise
    return auth.issue_token(user)


@router.post("/logout", status_code=204)
def logout(session: SessionDep, token: BearerToken) -> None:
    """Sign out the bearer token sent with this request before its expiry; the user's other tokens keep working.
    Signing out the same token again changes nothing (204)."""
    if not token:
        raise Unauthenticated("Send the bearer token to sign out", code="no_credentials")
    auth.sign_out(session=session, token=token)


@router.post("/logout-everywhere", status_code=204)
def logout_everywhere(session: SessionDep, actor: CurrentActor) -> None:
    """Sign out every token and browser session of the caller, this one included (as a password change does)."""
    auth.sign_out_everywhere(session=session, user_id=auth.require_user(actor))


@router.get("/me", response_model=users.UserPublic)
def me(session: SessionDep, actor: CurrentActor) -> users.UserPublic:
    """Who the token belongs to."""
    user = session.get(users.User, auth.require_user(actor))
    assert user is not None
    return users.to_public(user)


@router.post("/password", status_code=204)
def change_password(session: SessionDep, actor: CurrentActor, data: users.PasswordChange) -> None:
    """Change your own password (signs out your other sessions). A wrong current password counts
    towards pausing the account's sign-in, as at login."""
    try:
        users.change_password(session=session, user_id=auth.require_user(actor), data=data)
    except Unauthenticated:
        session.commit()  # the count of wrong passwords, which the error would roll back
        raise


@router.post("/set-password", response_model=users.UserPublic)
def set_password(session: SessionDep, data: users.PasswordSet) -> users.UserPublic:
    """Use an invitation or reset link to set a password (no login needed; the link is the proof)."""
    return users.to_public(users.use_link(session=session, data=data))
