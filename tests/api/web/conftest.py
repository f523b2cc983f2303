"""Fixtures the workspace page tests share across concepts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import jobs_sent
from tests.api.web.farm import Farm
from tests.api.web.helpers import PASSWORD
from tests.api.web.people import People
from tests.api.web.registry import Registry, make_registry
from trace.access import Role


@pytest.fixture
def member(session: Session) -> tuple[object, object]:
    org = f.org(session, name="HTX Nhãn Tiên Lữ (thử nghiệm)")
    user, _ = f.user(session, org, Role.MEMBER, password=PASSWORD)
    session.commit()
    return org, user


@pytest.fixture
def farm(session: Session) -> Farm:
    grows = f.gi_grower(
        session, f.org(session, name="HTX Nhãn lồng Khoái Châu (thử nghiệm)"), name="Vườn Đông Tảo", code="VN-HY-DT-001"
    )
    coop, fresh, area, gi = grows.grower, grows.fresh, grows.area, grows.gi
    user, _ = f.user(session, coop, Role.MEMBER, password=PASSWORD)
    buyer = f.org(session, "processor", name="Công ty Chế biến Hưng Yên (thử nghiệm)")
    session.commit()
    return Farm(coop, user, fresh, area, gi, buyer)


@pytest.fixture
def people(client: TestClient, session: Session) -> People:
    gi = f.gi_grower(session)
    f.harvest(session, gi.grower, prod=gi.fresh, loc=gi.area, designation_ids=[gi.gi.id], days_ago=2)
    f.harvest(session, gi.grower, days_ago=3)
    admin, _ = f.user(session, None, Role.ADMIN, password=PASSWORD)
    holder_user, _ = f.user(session, gi.holder, Role.MEMBER, password=PASSWORD)
    other = f.org(session, "designation_holder", name="Hội Gà Đông Tảo (thử nghiệm)")
    f.designation(session, other, name_vi="Gà Đông Tảo (thử)", categories=["chicken_live"])
    other_user, _ = f.user(session, other, Role.ORG_ADMIN, password=PASSWORD)
    grower_user, _ = f.user(session, gi.grower, Role.ORG_ADMIN, password=PASSWORD)
    session.commit()
    sent = jobs_sent(client, "report")
    return People(admin, gi.holder, holder_user, other_user, grower_user, gi, sent)


@pytest.fixture
def reg(session: Session) -> Registry:
    return make_registry(session)
