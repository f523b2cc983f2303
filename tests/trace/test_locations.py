"""Places' names for pages that say where things happened."""

from __future__ import annotations

from sqlmodel import Session

from tests import factories as f
from trace.locations import location_names


def test_location_names_are_read_by_id_and_ids_of_no_place_are_left_out(session: Session) -> None:
    org = f.org(session)
    orchard, shop = (
        f.location(session, org, name="Vườn Đông Tảo"),
        f.location(session, org, kind="shop", name="Cửa hàng"),
    )
    found = location_names(session=session, ids=[orchard.id, shop.id, None, shop.id + 10_000])  # type: ignore[operator]
    assert found == {orchard.id: "Vườn Đông Tảo", shop.id: "Cửa hàng"}
    assert location_names(session=session, ids=[None]) == {}
