"""Users: one-time invitation and reset links, token invalidation, who may manage whom."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from tests import factories as f
from trace import auth, users
from trace.access import Actor, Role
from trace.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    RuleViolation,
    TooManyAttempts,
    Unauthenticated,
)
from trace.organisations import Organisation
from trace.platform.config import get_settings
from trace.platform.timeutil import utcnow

PASSWORD = "longan season 2025"


def refused(code: str, fn: Callable[[], Any], kind: type[DomainError] = DomainError) -> None:
    with pytest.raises(kind) as info:
        fn()
    assert info.value.code == code, info.value.message


def org_admin(session: Session, o: Organisation) -> Actor:
    admin, _ = f.user(session, o, Role.ORG_ADMIN)
    return auth.actor_for_user(admin)


def invite(
    session: Session, actor: Actor, o: Organisation, role: Role = Role.MEMBER, email: str = "thanh@example.com"
) -> users.Invitation:
    return users.invite_member(
        session=session,
        actor=actor,
        organisation_id=o.id,  # type: ignore[arg-type]
        data=users.UserCreate(email=email, full_name="Nguyễn Văn Thành", role=role),
    )


def set_password(session: Session, token: str, password: str = PASSWORD) -> users.User:
    return users.use_link(session=session, data=users.PasswordSet(token=token, password=password))


def login(session: Session, email: str, password: str = PASSWORD) -> users.User:
    return users.authenticate(session=session, email=email, password=password)


def test_an_invitation_link_sets_the_password_once(session: Session) -> None:
    coop = f.org(session)
    invitation = invite(session, org_admin(session, coop), coop)
    assert not invitation.user.has_password
    refused("bad_credentials", lambda: login(session, "thanh@example.com"), Unauthenticated)
    user = set_password(session, invitation.token)
    assert login(session, "Thanh@Example.com").id == user.id == invitation.user.id
    # the link is spent: nobody can use it to take the account over
    refused("link_invalid", lambda: set_password(session, invitation.token, "another password 1"), RuleViolation)
    assert login(session, "thanh@example.com").id == user.id


def test_an_expired_or_unknown_link_is_refused(session: Session) -> None:
    coop = f.org(session)
    invitation = invite(session, org_admin(session, coop), coop)
    link = session.exec(select(users.OneTimeLink).where(users.OneTimeLink.user_id == invitation.user.id)).one()
    link.expires_at = utcnow() - timedelta(seconds=1)
    session.add(link)
    refused("link_invalid", lambda: set_password(session, invitation.token), RuleViolation)
    refused("link_invalid", lambda: set_password(session, "not-a-real-token-at-all"), RuleViolation)


def test_a_reset_invalidates_the_old_password_tokens_and_links(session: Session) -> None:
    # given a member with a password and a live bearer token
    coop = f.org(session)
    admin = org_admin(session, coop)
    member, token = f.user(session, coop, password=PASSWORD)
    assert auth.actor_from_token(session=session, token=token).user_id == member.id
    # when the administrator resets the password
    first = users.reset_password(session=session, actor=admin, organisation_id=coop.id, user_id=member.id)  # type: ignore[arg-type]
    # then the old password and the old token no longer work
    refused("bad_credentials", lambda: login(session, member.email), Unauthenticated)
    refused("bad_token", lambda: auth.actor_from_token(session=session, token=token), Unauthenticated)
    # and a second reset (the first link went astray) leaves only the newest link usable
    second = users.reset_password(session=session, actor=admin, organisation_id=coop.id, user_id=member.id)  # type: ignore[arg-type]
    refused("link_invalid", lambda: set_password(session, first.token), RuleViolation)
    set_password(session, second.token, "second new password")
    fresh = auth.issue_token(login(session, member.email, "second new password")).access_token
    assert auth.actor_from_token(session=session, token=fresh).user_id == member.id


def test_changing_ones_password_signs_out_other_sessions(session: Session) -> None:
    coop = f.org(session)
    member, token = f.user(session, coop, password=PASSWORD)
    users.change_password(
        session=session,
        user_id=member.id,
        data=users.PasswordChange(current_password=PASSWORD, new_password="a brand new one 9"),
    )  # type: ignore[arg-type]
    refused("bad_token", lambda: auth.actor_from_token(session=session, token=token), Unauthenticated)
    refused(
        "bad_credentials",
        lambda: users.change_password(  # type: ignore[arg-type]
            session=session,
            user_id=member.id,
            data=users.PasswordChange(current_password=PASSWORD, new_password="yet another one 7"),
        ),
        Unauthenticated,
    )


def test_a_removed_members_token_and_password_are_rejected(session: Session) -> None:
    coop = f.org(session)
    admin = org_admin(session, coop)
    member, token = f.user(session, coop)
    pending = invite(session, admin, coop)
    users.remove_member(session=session, actor=admin, organisation_id=coop.id, user_id=member.id)  # type: ignore[arg-type]
    users.remove_member(session=session, actor=admin, organisation_id=coop.id, user_id=pending.user.id)  # type: ignore[arg-type]
    refused("bad_token", lambda: auth.actor_from_token(session=session, token=token), Unauthenticated)
    refused("bad_credentials", lambda: login(session, member.email, "correct horse battery"), Unauthenticated)
    refused("link_invalid", lambda: set_password(session, pending.token), RuleViolation)
    refused(
        "cannot_remove_self",
        lambda: users.remove_member(  # type: ignore[arg-type]
            session=session, actor=admin, organisation_id=coop.id, user_id=admin.user_id
        ),
        RuleViolation,
    )


def test_an_organisation_admin_cannot_manage_another_organisations_members(session: Session) -> None:
    a, b = f.org(session), f.org(session)
    admin_a = org_admin(session, a)
    member_b, _ = f.user(session, b)
    target = {"organisation_id": b.id, "user_id": member_b.id}
    refused("org_admin_only", lambda: invite(session, admin_a, b), Forbidden)
    refused("org_admin_only", lambda: users.reset_password(session=session, actor=admin_a, **target), Forbidden)  # type: ignore[arg-type]
    refused("org_admin_only", lambda: users.remove_member(session=session, actor=admin_a, **target), Forbidden)  # type: ignore[arg-type]
    refused(
        "org_admin_only", lambda: users.list_members(session=session, actor=admin_a, organisation_id=b.id), Forbidden
    )  # type: ignore[arg-type]
    # naming one's own organisation does not reach the other's member either
    refused(
        "not_found",
        lambda: users.reset_password(session=session, actor=admin_a, organisation_id=a.id, user_id=member_b.id),
        NotFound,
    )  # type: ignore[arg-type]
    assert member_b.active and member_b.token_version == 0
    # and a plain member manages nobody, even in its own organisation
    refused("org_admin_only", lambda: invite(session, f.member(b), b), Forbidden)


def test_only_the_province_admin_appoints_inspectors(session: Session) -> None:
    authority = f.org(session, "authority")
    refused(
        "role_not_grantable",
        lambda: invite(session, org_admin(session, authority), authority, Role.INSPECTOR),
        Forbidden,
    )
    invitation = invite(session, f.ADMIN, authority, Role.INSPECTOR)
    assert invitation.user.role == Role.INSPECTOR
    # nobody grants province administration through an invitation
    refused("role_not_grantable", lambda: invite(session, f.ADMIN, authority, Role.ADMIN, "x@example.com"), Forbidden)
    # nor the portal's role, which is a read-only key's, never a person's
    refused("role_not_grantable", lambda: invite(session, f.ADMIN, authority, Role.PORTAL, "p@example.com"), Forbidden)
    refused(
        "role_not_grantable",
        lambda: invite(session, org_admin(session, authority), authority, Role.PORTAL, "q@example.com"),
        Forbidden,
    )


def test_an_organisations_first_administrator_is_created_by_the_province_admin(session: Session) -> None:
    coop = f.org(session)
    data = users.UserCreate(email="chu.nhiem@example.com", full_name="Chủ nhiệm HTX")
    refused(
        "admin_only",
        lambda: users.create_org_admin(
            session=session, actor=org_admin(session, coop), organisation_id=coop.id, data=data
        ),
        Forbidden,
    )  # type: ignore[arg-type]
    invitation = users.create_org_admin(session=session, actor=f.ADMIN, organisation_id=coop.id, data=data)  # type: ignore[arg-type]
    assert invitation.user.role == Role.ORG_ADMIN and invitation.user.organisation_id == coop.id


def test_an_email_is_registered_once(session: Session) -> None:
    coop = f.org(session)
    admin = org_admin(session, coop)
    invite(session, admin, coop)
    refused("email_taken", lambda: invite(session, admin, coop, email="THANH@example.com"), Conflict)


@pytest.mark.parametrize(
    ("email", "password"), [("user@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)]
)
def test_authentication_with_a_wrong_password_or_email_is_refused(session: Session, email: str, password: str) -> None:
    users.create_user(
        session=session,
        email="user@example.com",
        full_name="A",
        role=Role.MEMBER,
        organisation_id=None,
        password=PASSWORD,
    )
    refused("bad_credentials", lambda: login(session, email, password), Unauthenticated)
    assert login(session, "user@example.com").email == "user@example.com"


def test_wrong_passwords_in_a_row_pause_the_accounts_sign_in_even_for_the_right_password(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (get_settings().sign_in_failures_allowed, get_settings().sign_in_pause_minutes) == (10, 15)
    monkeypatch.setenv("HYTRACE_SIGN_IN_FAILURES_ALLOWED", "3")
    get_settings.cache_clear()
    coop = f.org(session)
    user = set_password(session, invite(session, org_admin(session, coop), coop).token)
    # given two wrong passwords, then the right one: the count starts again
    for _ in range(2):
        refused("bad_credentials", lambda: login(session, user.email, "wrong"), Unauthenticated)
    assert login(session, user.email).id == user.id and user.failed_sign_ins == 0
    # when three wrong passwords come in a row
    for _ in range(3):
        refused("bad_credentials", lambda: login(session, user.email, "wrong"), Unauthenticated)
    # then sign-in is paused for 15 minutes, and the right password is refused too (it must not tell a guesser)
    assert user.sign_in_paused_until is not None
    assert timedelta(minutes=14) < user.sign_in_paused_until - utcnow() <= timedelta(minutes=15)
    with pytest.raises(TooManyAttempts) as paused:
        login(session, user.email)
    assert 14 * 60 < paused.value.details["retry_after"] <= 15 * 60
    # and once the pause is over the right password works again and clears it
    user.sign_in_paused_until = utcnow() - timedelta(seconds=1)
    assert login(session, user.email).id == user.id
    assert (user.failed_sign_ins, user.sign_in_paused_until) == (0, None)
    # another account is never paused by these guesses
    other = set_password(session, invite(session, org_admin(session, coop), coop, email="lan@example.com").token)
    assert login(session, other.email).id == other.id
    # and a new sign-in link from the administrator lifts a pause, as the refusal says it will
    for _ in range(3):
        refused("bad_credentials", lambda: login(session, other.email, "wrong"), Unauthenticated)
    refused("too_many_attempts", lambda: login(session, other.email), TooManyAttempts)
    link = users.reset_password(
        session=session,
        actor=org_admin(session, coop),
        organisation_id=coop.id,  # type: ignore[arg-type]
        user_id=other.id,
    )  # type: ignore[arg-type]
    set_password(session, link.token, "a new season's passphrase")
    assert login(session, other.email, "a new season's passphrase").id == other.id


def test_wrong_passwords_sent_at_once_are_each_counted(postgres_engine: Engine) -> None:
    engine = postgres_engine
    with Session(engine) as setup:
        user, _ = f.user(setup, f.org(setup), password=PASSWORD)
        setup.commit()
        user_id, email = user.id, user.email
    # given two sign-ins of one account in flight, the second having read the count before the first lands
    with Session(engine) as first, Session(engine) as second:
        read = second.get(users.User, user_id)  # held: the session keeps what it read, as a request would
        assert read is not None and read.failed_sign_ins == 0
        refused("bad_credentials", lambda: login(first, email, "guess one"), Unauthenticated)
        first.commit()
        refused("bad_credentials", lambda: login(second, email, "guess two"), Unauthenticated)
        second.commit()
    # then both guesses count (a count kept in Python would have written 1 twice)
    with Session(engine) as after:
        assert after.get(users.User, user_id).failed_sign_ins == 2  # type: ignore[union-attr]
