"""A designation registry for the page tests: a holder, its GI and a producer with products and a growing
area, another holder, the province's administrator; and the forms of the registry's pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from tests import factories as f
from tests.api.web.helpers import PASSWORD, VI, form_token, sign_in
from trace.access import Role
from trace.designations.models import Designation, DesignationKind, RightToUse
from trace.organisations import Organisation
from trace.products import Product
from trace.users import User


@dataclass
class Registry:
    holder: Organisation
    holder_user: User
    gi: Designation
    grower: Organisation
    fresh: Product
    dried: Product
    area: Any
    other_holder_user: User
    other_gi: Designation
    admin: User


def make_registry(session: Session) -> Registry:
    """Two holders with a designation each, a grower with products and an area, the province admin."""
    holder = f.org(session, "designation_holder", name="Hội Nhãn lồng (thử nghiệm)")
    holder_user, _ = f.user(session, holder, Role.MEMBER, password=PASSWORD)
    gi = Designation(
        kind=DesignationKind.GEOGRAPHICAL_INDICATION,
        name_vi="Nhãn lồng Hưng Yên (thử)",
        holder_organisation_id=holder.id,
        categories=["longan_fresh"],  # type: ignore[arg-type]
        area_communes=[f.COMMUNE],
    )
    grower = f.org(session, name="HTX Nhãn Đông Tảo (thử nghiệm)")
    fresh = f.product(session, grower, name_vi="Nhãn lồng tươi hộp 10 kg", package_size=Decimal(10))
    dried = f.product(session, grower, name_vi="Mật ong hoa nhãn", category="honey")
    area = f.location(session, grower, name="Vườn bờ sông", area_ha=0.01)
    other = f.org(session, "designation_holder", name="Hội Gà Đông Tảo (thử nghiệm)")
    other_user, _ = f.user(session, other, Role.ORG_ADMIN, password=PASSWORD)
    other_gi = Designation(
        kind=DesignationKind.COLLECTIVE_TRADEMARK,
        name_vi="Gà Đông Tảo (thử)",
        holder_organisation_id=other.id,
        categories=["chicken_live"],
    )  # type: ignore[arg-type]
    session.add_all([gi, other_gi])
    admin, _ = f.user(session, None, Role.ADMIN, password=PASSWORD)
    session.commit()
    return Registry(holder, holder_user, gi, grower, fresh, dried, area, other_user, other_gi, admin)


def as_user(client: TestClient, user: User) -> None:
    assert sign_in(client, user.email).status_code == 303  # type: ignore[attr-defined]


def idem(page: str) -> str:
    found = re.search(r'name="idem" value="([^"]+)"', page)
    assert found, "the form has no once-only key"
    return found.group(1)


def rights_of(session: Session, designation: Designation) -> list[RightToUse]:
    session.expire_all()
    return list(session.exec(select(RightToUse).where(RightToUse.designation_id == designation.id)))


def a_right(session: Session, reg: Registry, **extra: Any) -> RightToUse:
    right = RightToUse(
        designation_id=reg.gi.id,
        organisation_id=reg.grower.id,
        decision_number="7/QĐ-HNL",  # type: ignore[arg-type]
        valid_from=date.today() - timedelta(days=400),
        **extra,
    )
    session.add(right)
    session.commit()
    return right


def org_form(client: TestClient, **over: Any) -> dict[str, Any]:
    page = client.get("/app/admin/organisations/new", headers=VI)
    assert page.status_code == 200
    return {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "kind": "processor",
        "name": "Công ty Nhãn sấy Phố Hiến (thử)",
        "tax_code": "0901234567",
        "commune_code": f.COMMUNE,
        "address": "Số 1 đường Nguyễn Văn Linh",
        **over,
    }


def designation_form(client: TestClient, reg: Registry, **over: Any) -> dict[str, Any]:
    page = client.get("/app/admin/designations/new", headers=VI)
    assert page.status_code == 200 and "Huyện Khoái Châu" in page.text
    return {
        "csrf": form_token(page.text),
        "idem": idem(page.text),
        "kind": "geographical_indication",
        "name_vi": "Nhãn lồng Khoái Châu (thử)",
        "name_en": "Khoai Chau longan",
        "registration_number": "00999",
        "decision_number": "186/QĐ-SHTT",
        "decision_date": "2007-08-14",
        "holder_organisation_id": reg.holder.id,
        "categories": "longan_fresh, longan_dried",
        "districts": ["Huyện Khoái Châu", "Huyện Tiên Lữ"],
        **over,
    }


REUSED = "Biểu mẫu này đã được gửi với nội dung khác: hãy tải lại trang và điền lại."


def count(session: Session, model: type[SQLModel], *where: Any) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def post(client: TestClient, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data=data, headers=VI, follow_redirects=False)


def members_of(client: TestClient, org: Organisation) -> str:
    page = client.get(f"/app/admin/organisations/{org.id}/users", headers=VI)
    assert page.status_code == 200
    return page.text
