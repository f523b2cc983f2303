"""Once-only keys for the registry's writes (a grant, a right's change, an organisation, an invitation, a
designation): a request sent again with its key records nothing more and returns the first result; the key
sent with other values is refused. And the rules for managing an organisation's members."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from tests import factories as f
from trace import auth, organisations, users
from trace.access import Actor, Role
from trace.designations import registry, rights
from trace.designations.models import Designation, DesignationKind, RightStatus, RightToUse
from trace.errors import Conflict, DomainError, Forbidden, RuleViolation
from trace.events.ledger import capture
from trace.events.models import Event, EventType, IdempotencyRecord
from trace.events.schemas import HarvestIn
from trace.history import MasterVersion
from trace.organisations import Organisation
from trace.users import OneTimeLink, User

PASSWORD = "longan season 2025"


def refused(code: str, fn: Callable[[], Any], kind: type[DomainError] = DomainError) -> None:
    with pytest.raises(kind) as info:
        fn()
    assert info.value.code == code, info.value.message


def count(session: Session, model: type[SQLModel], *where: Any) -> int:
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def holder_of(session: Session) -> tuple[Actor, Designation, Organisation]:
    holder = f.org(session, "designation_holder")
    gi = f.designation(session, holder)
    return f.member(holder), gi, f.org(session)


def grant_data(grower: Organisation, **over: Any) -> rights.RightCreate:
    values: dict[str, Any] = {
        "organisation_id": grower.id,
        "decision_number": "15/QĐ-HNL",
        "valid_from": date.today(),
        "annual_label_quota": 1000,
        **over,
    }
    return rights.RightCreate(**values)


# --------------------------------------------------------------------------- a grant of a right to use


def test_a_grant_sent_again_with_its_key_grants_once_and_returns_the_first_right(session: Session) -> None:
    actor, gi, grower = holder_of(session)
    first = rights.grant_right(
        session=session,
        actor=actor,
        designation_id=gi.id,
        data=grant_data(grower),  # type: ignore[arg-type]
        idempotency_key="grant-1",
    )
    events = count(session, Event, Event.type == EventType.RIGHT)
    again = rights.grant_right(
        session=session,
        actor=actor,
        designation_id=gi.id,
        data=grant_data(grower),  # type: ignore[arg-type]
        idempotency_key="grant-1",
    )
    assert again.id == first.id and first.request_key == "grant-1"
    assert count(session, RightToUse, RightToUse.designation_id == gi.id) == 1
    assert count(session, Event, Event.type == EventType.RIGHT) == events == 1
    # without a key the same form is a second grant of one decision: refused as before
    refused(
        "right_exists",
        lambda: rights.grant_right(
            session=session,
            actor=actor,
            designation_id=gi.id,  # type: ignore[arg-type]
            data=grant_data(grower),
        ),
        Conflict,
    )


def test_a_grant_key_sent_with_other_values_is_refused_and_grants_nothing(session: Session) -> None:
    actor, gi, grower = holder_of(session)
    rights.grant_right(
        session=session,
        actor=actor,
        designation_id=gi.id,
        data=grant_data(grower),  # type: ignore[arg-type]
        idempotency_key="grant-2",
    )
    for other in (
        grant_data(grower, valid_to=date.today() + timedelta(days=30)),
        grant_data(grower, annual_label_quota=999),
        grant_data(f.org(session)),
    ):
        refused(
            "idempotency_key_reused",
            lambda other=other: rights.grant_right(  # type: ignore[misc]
                session=session, actor=actor, designation_id=gi.id, data=other, idempotency_key="grant-2"
            ),
            Conflict,
        )
    assert count(session, RightToUse, RightToUse.designation_id == gi.id) == 1


def test_another_holders_key_does_not_reach_a_designation_it_does_not_hold(session: Session) -> None:
    actor, gi, grower = holder_of(session)
    rights.grant_right(
        session=session,
        actor=actor,
        designation_id=gi.id,
        data=grant_data(grower),  # type: ignore[arg-type]
        idempotency_key="k",
    )
    stranger = f.member(f.org(session, "designation_holder"))
    # the holder is checked before any key is looked up: the same key from elsewhere learns nothing
    refused(
        "not_designation_holder",
        lambda: rights.grant_right(
            session=session,
            actor=stranger,
            designation_id=gi.id,  # type: ignore[arg-type]
            data=grant_data(grower),
            idempotency_key="k",
        ),
        Forbidden,
    )


@pytest.mark.parametrize("key", ["", "x" * 101])
def test_a_key_of_no_or_too_many_characters_is_refused(session: Session, key: str) -> None:
    actor, gi, grower = holder_of(session)
    refused(
        "bad_idempotency_key",
        lambda: rights.grant_right(
            session=session,
            actor=actor,
            designation_id=gi.id,  # type: ignore[arg-type]
            data=grant_data(grower),
            idempotency_key=key,
        ),
        RuleViolation,
    )
    refused(
        "bad_idempotency_key",
        lambda: organisations.create_organisation(session=session, actor=f.ADMIN, data=org_data(), idempotency_key=key),
        RuleViolation,
    )
    assert count(session, RightToUse, RightToUse.designation_id == gi.id) == 0


# --------------------------------------------------------------------------- a right's changes


def test_a_change_sent_again_with_its_key_changes_once_and_the_key_is_the_holders_event_key(session: Session) -> None:
    actor, gi, grower = holder_of(session)
    right = f.grant(session, gi, grower)
    reason = rights.RightChange(reason="Vi phạm quy chế đóng gói")
    rights.change_right(
        session=session,
        actor=actor,
        right_id=right.id,
        action="suspend",
        data=reason,  # type: ignore[arg-type]
        idempotency_key="change-1",
    )
    again = rights.change_right(
        session=session,
        actor=actor,
        right_id=right.id,
        action="suspend",
        data=reason,  # type: ignore[arg-type]
        idempotency_key="change-1",
    )
    assert again.id == right.id and again.status == RightStatus.SUSPENDED
    [event] = session.exec(select(Event).where(Event.type == EventType.RIGHT)).all()
    record = session.get(IdempotencyRecord, (gi.holder_organisation_id, "change-1"))
    assert record is not None and record.event_ids == [event.id]
    # the key with another reason, or for another action, is refused and changes nothing
    for action, other in (("suspend", "Lý do khác"), ("revoke", "Vi phạm quy chế đóng gói")):
        refused(
            "idempotency_key_reused",
            lambda a=action, o=other: rights.change_right(  # type: ignore[misc]
                session=session,
                actor=actor,
                right_id=right.id,
                action=a,
                data=rights.RightChange(reason=o),
                idempotency_key="change-1",
            ),
            Conflict,
        )
    # and a capture cannot reuse it either: it is the holder's event key
    place, product = f.location(session, actor_org(session, actor)), f.product(session, actor_org(session, actor))
    harvest = HarvestIn(product_id=product.id, lot_code="K-1", quantity=Decimal(5), location_id=place.id)  # type: ignore[arg-type]
    refused(
        "idempotency_key_reused",
        lambda: capture(session=session, actor=actor, items=[(EventType.HARVEST, harvest)], idempotency_key="change-1"),
        Conflict,
    )
    session.refresh(right)
    assert (right.status, right.status_reason) == (RightStatus.SUSPENDED, "Vi phạm quy chế đóng gói")
    assert count(session, Event, Event.type == EventType.RIGHT) == 1


def actor_org(session: Session, actor: Actor) -> Organisation:
    found = session.get(Organisation, actor.organisation_id)
    assert found is not None
    return found


def test_a_change_without_a_key_sent_twice_is_refused_the_second_time(session: Session) -> None:
    # the control: without the key, the second suspension meets the status rule
    actor, gi, grower = holder_of(session)
    right = f.grant(session, gi, grower)
    reason = rights.RightChange(reason="Vi phạm quy chế đóng gói")
    rights.change_right(session=session, actor=actor, right_id=right.id, action="suspend", data=reason)  # type: ignore[arg-type]
    refused(
        "right_suspended",
        lambda: rights.change_right(
            session=session,
            actor=actor,
            right_id=right.id,  # type: ignore[arg-type]
            action="suspend",
            data=reason,
        ),
        Conflict,
    )


# --------------------------------------------------------------------------- organisations and designations


def org_data(**over: Any) -> organisations.OrganisationCreate:
    values: dict[str, Any] = {
        "kind": "processor",
        "name": "Công ty Nhãn sấy (thử)",
        "tax_code": f.tax_code(),
        "commune_code": f.COMMUNE,
        **over,
    }
    return organisations.OrganisationCreate(**values)


def test_an_organisation_sent_again_with_its_key_is_registered_once(session: Session) -> None:
    data = org_data()
    first = organisations.create_organisation(session=session, actor=f.ADMIN, data=data, idempotency_key="org-1")
    again = organisations.create_organisation(session=session, actor=f.ADMIN, data=data, idempotency_key="org-1")
    assert again.id == first.id
    assert count(session, Organisation, Organisation.tax_code == data.tax_code) == 1
    assert (
        count(session, MasterVersion, MasterVersion.entity == "organisation", MasterVersion.entity_id == first.id) == 1
    )
    refused(
        "idempotency_key_reused",
        lambda: organisations.create_organisation(
            session=session,
            actor=f.ADMIN,
            data=org_data(tax_code=data.tax_code, name="Tên khác"),
            idempotency_key="org-1",
        ),
        Conflict,
    )
    refused(
        "idempotency_key_reused",
        lambda: organisations.create_organisation(
            session=session, actor=f.ADMIN, data=org_data(), idempotency_key="org-1"
        ),
        Conflict,
    )
    refused(
        "tax_code_taken",
        lambda: organisations.create_organisation(session=session, actor=f.ADMIN, data=data, idempotency_key="org-2"),
        Conflict,
    )
    refused(
        "admin_only",
        lambda: organisations.create_organisation(
            session=session, actor=f.member(first), data=data, idempotency_key="org-1"
        ),
        Forbidden,
    )


def designation_data(holder: Organisation, **over: Any) -> registry.DesignationCreate:
    values: dict[str, Any] = {
        "kind": DesignationKind.COLLECTIVE_TRADEMARK,
        "name_vi": "Tỏi Thái Thụy (thử)",
        "holder_organisation_id": holder.id,
        "categories": ["garlic"],
        "area_former_districts": ["Huyện Thái Thụy"],
        **over,
    }
    return registry.DesignationCreate(**values)


def test_a_designation_sent_again_with_its_key_is_registered_once(session: Session) -> None:
    holder = f.org(session, "designation_holder")
    first = registry.create_designation(
        session=session, actor=f.ADMIN, data=designation_data(holder), idempotency_key="reg-1"
    )
    again = registry.create_designation(
        session=session, actor=f.ADMIN, data=designation_data(holder), idempotency_key="reg-1"
    )
    assert again.id == first.id and first.area_communes
    assert count(session, Designation, Designation.name_vi == "Tỏi Thái Thụy (thử)") == 1
    refused(
        "idempotency_key_reused",
        lambda: registry.create_designation(
            session=session,
            actor=f.ADMIN,
            data=designation_data(holder, name_vi="Tỏi khác (thử)"),
            idempotency_key="reg-1",
        ),
        Conflict,
    )
    refused(
        "designation_exists",
        lambda: registry.create_designation(
            session=session, actor=f.ADMIN, data=designation_data(holder), idempotency_key="reg-2"
        ),
        Conflict,
    )
    assert count(session, Designation, Designation.name_vi == "Tỏi khác (thử)") == 0


# --------------------------------------------------------------------------- invitations


def org_admin(session: Session, o: Organisation) -> tuple[User, Actor]:
    admin, _ = f.user(session, o, Role.ORG_ADMIN)
    return admin, auth.actor_for_user(admin)


def invite(session: Session, actor: Actor, o: Organisation, key: str | None, **over: Any) -> users.Invitation:
    data = users.UserCreate(**{"email": "Thanh@Example.com", "full_name": "Nguyễn Văn Thành", **over})
    return users.invite_member(
        session=session,
        actor=actor,
        organisation_id=o.id,
        data=data,  # type: ignore[arg-type]
        idempotency_key=key,
    )


def set_password(session: Session, token: str) -> User:
    return users.use_link(session=session, data=users.PasswordSet(token=token, password=PASSWORD))


def test_an_invitation_sent_again_with_its_key_invites_once_and_hands_a_fresh_link(session: Session) -> None:
    coop = f.org(session)
    _, actor = org_admin(session, coop)
    first = invite(session, actor, coop, "inv-1")
    again = invite(session, actor, coop, "inv-1")
    assert again.user.id == first.user.id and again.token != first.token
    assert count(session, User, User.email == "thanh@example.com") == 1
    # only the hash of a link is kept, so the answer's link is a new one: the first stops working
    refused("link_invalid", lambda: set_password(session, first.token), RuleViolation)
    assert set_password(session, again.token).id == first.user.id
    # once the person has set a password, the invitation cannot be handed again
    refused("invitation_used", lambda: invite(session, actor, coop, "inv-1"), Conflict)
    refused("idempotency_key_reused", lambda: invite(session, actor, coop, "inv-1", role=Role.ORG_ADMIN), Conflict)
    assert count(session, OneTimeLink, OneTimeLink.user_id == first.user.id, OneTimeLink.used_at.is_(None)) == 0  # type: ignore[union-attr]


def test_an_invitation_key_is_kept_per_organisation(session: Session) -> None:
    a, b = f.org(session), f.org(session)
    invite(session, org_admin(session, a)[1], a, "same", email="an@example.com")
    other = invite(session, org_admin(session, b)[1], b, "same", email="binh@example.com")
    assert other.user.organisation_id == b.id and count(session, User, User.request_key == "same") == 2


# --------------------------------------------------------------------------- managing members


def test_the_last_administrator_of_an_organisation_cannot_be_removed_or_demoted(session: Session) -> None:
    coop = f.org(session)
    boss, _ = f.user(session, coop, Role.ORG_ADMIN)
    refused(
        "last_org_admin",
        lambda: users.remove_member(
            session=session,
            actor=f.ADMIN,
            organisation_id=coop.id,  # type: ignore[arg-type]
            user_id=boss.id,
        ),
        RuleViolation,
    )  # type: ignore[arg-type]
    refused(
        "last_org_admin",
        lambda: users.change_role(
            session=session,
            actor=f.ADMIN,
            organisation_id=coop.id,  # type: ignore[arg-type]
            user_id=boss.id,
            data=users.RoleChange(role=Role.MEMBER),
        ),  # type: ignore[arg-type]
        RuleViolation,
    )
    assert boss.active and boss.role == Role.ORG_ADMIN
    # with a second administrator appointed, the first may go
    deputy, _ = f.user(session, coop, Role.MEMBER)
    users.change_role(
        session=session,
        actor=f.ADMIN,
        organisation_id=coop.id,
        user_id=deputy.id,  # type: ignore[arg-type]
        data=users.RoleChange(role=Role.ORG_ADMIN),
    )
    users.remove_member(session=session, actor=f.ADMIN, organisation_id=coop.id, user_id=boss.id)  # type: ignore[arg-type]
    assert not boss.active and deputy.role == Role.ORG_ADMIN
    refused(
        "last_org_admin",
        lambda: users.remove_member(
            session=session,
            actor=f.ADMIN,
            organisation_id=coop.id,  # type: ignore[arg-type]
            user_id=deputy.id,
        ),
        RuleViolation,
    )  # type: ignore[arg-type]


def test_an_administrator_changes_roles_within_what_an_invitation_may_give(session: Session) -> None:
    coop = f.org(session)
    me, actor = org_admin(session, coop)
    member, _ = f.user(session, coop)
    change = users.change_role

    def to(role: Role, who: User = member, by: Actor = actor) -> User:
        return change(
            session=session, actor=by, organisation_id=coop.id, user_id=who.id, data=users.RoleChange(role=role)
        )  # type: ignore[arg-type]

    refused("role_not_grantable", lambda: to(Role.INSPECTOR), Forbidden)
    refused("role_not_grantable", lambda: to(Role.ADMIN), Forbidden)
    refused("role_not_grantable", lambda: to(Role.ADMIN, by=f.ADMIN), Forbidden)
    refused("cannot_change_own_role", lambda: to(Role.MEMBER, who=me), RuleViolation)
    assert to(Role.ORG_ADMIN).role == Role.ORG_ADMIN and to(Role.ORG_ADMIN).role == Role.ORG_ADMIN  # twice: the same
    assert to(Role.MEMBER).role == Role.MEMBER
    assert to(Role.INSPECTOR, by=f.ADMIN).role == Role.INSPECTOR
    refused("role_not_grantable", lambda: to(Role.MEMBER), Forbidden)  # an inspector is the province's to change
    other = f.org(session)
    refused(
        "org_admin_only",
        lambda: change(
            session=session,
            actor=actor,
            organisation_id=other.id,  # type: ignore[arg-type]
            user_id=member.id,
            data=users.RoleChange(role=Role.MEMBER),
        ),
        Forbidden,
    )  # type: ignore[arg-type]


def test_a_new_sign_in_link_is_not_for_oneself_nor_for_a_removed_member_and_removing_twice_changes_nothing(
    session: Session,
) -> None:
    coop = f.org(session)
    me, actor = org_admin(session, coop)
    member, _ = f.user(session, coop)
    refused(
        "cannot_reset_self",
        lambda: users.reset_password(
            session=session,
            actor=actor,
            organisation_id=coop.id,  # type: ignore[arg-type]
            user_id=me.id,
        ),
        RuleViolation,
    )  # type: ignore[arg-type]
    assert me.password_hash is not None and me.token_version == 0
    users.remove_member(session=session, actor=actor, organisation_id=coop.id, user_id=member.id)  # type: ignore[arg-type]
    version = member.token_version
    users.remove_member(session=session, actor=actor, organisation_id=coop.id, user_id=member.id)  # type: ignore[arg-type]
    assert member.token_version == version == 1 and not member.active
    refused(
        "user_removed",
        lambda: users.reset_password(
            session=session,
            actor=actor,
            organisation_id=coop.id,  # type: ignore[arg-type]
            user_id=member.id,
        ),
        RuleViolation,
    )  # type: ignore[arg-type]
    refused(
        "user_removed",
        lambda: users.change_role(
            session=session,
            actor=actor,
            organisation_id=coop.id,  # type: ignore[arg-type]
            user_id=member.id,
            data=users.RoleChange(role=Role.ORG_ADMIN),
        ),  # type: ignore[arg-type]
        RuleViolation,
    )
    assert count(session, OneTimeLink, OneTimeLink.user_id == member.id) == 0


# --------------------------------------------------------------------------- the same key twice at once


def test_a_change_whose_key_another_request_stored_meanwhile_is_undone_whole_and_answers_as_that_one(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given another request that has just stored the key for this very change (its status not seen here yet)
    actor, gi, grower = holder_of(session)
    right = f.grant(session, gi, grower)
    reason = rights.RightChange(reason="Vi phạm quy chế đóng gói")
    session.add(
        IdempotencyRecord(
            organisation_id=gi.holder_organisation_id,
            key="race",
            event_ids=["e-1"],
            fingerprint=rights._change_print(right.id, "suspend", reason),  # type: ignore[arg-type]
            created_at=f.when(0),
        )
    )
    session.flush()
    real, looked = rights._changed, []

    def first_look_misses(*args: Any) -> RightToUse | None:
        looked.append(args)
        return None if len(looked) == 1 else real(*args)

    monkeypatch.setattr(rights, "_changed", first_look_misses)
    # when this request, having missed the key, changes the right and stores the key too
    again = rights.change_right(
        session=session,
        actor=actor,
        right_id=right.id,
        action="suspend",
        data=reason,  # type: ignore[arg-type]
        idempotency_key="race",
    )
    # then its whole change is undone (the other one stands) and it answers with the right as it is
    assert len(looked) == 2 and again.id == right.id
    session.expire_all()
    assert session.get(RightToUse, right.id).status == RightStatus.ACTIVE  # type: ignore[union-attr]
    assert count(session, Event, Event.type == EventType.RIGHT) == 0
