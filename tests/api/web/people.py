"""The dashboard's people: the province's administrator, a designation holder and a cooperative."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.testclient import TestClient

from tests import factories as f
from tests.api.web.helpers import sign_in
from trace.organisations import Organisation
from trace.users import User


@dataclass
class People:
    admin: User
    holder: Organisation
    holder_user: User
    other_holder_user: User
    grower_user: User
    gi: f.GiGrower
    sent: list[int]


def as_user(client: TestClient, user: User) -> None:
    client.cookies.clear()
    assert sign_in(client, user.email).status_code == 303  # type: ignore[attr-defined]


def idem(page: str) -> str:
    found = re.search(r'name="idem" value="([^"]+)"', page)
    assert found, "the form has no once-only key"
    return found.group(1)
