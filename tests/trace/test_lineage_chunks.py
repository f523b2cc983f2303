"""Large traces: the walked ids go to the database as one parameter (a PostgreSQL array, a JSON
array on SQLite), so no size meets a limit on bound parameters; event ids are read in chunks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert
from sqlmodel import Session

from tests import factories as f
from trace import lineage
from trace.lineage import Direction
from trace.lots import Lot, LotEdge


@pytest.mark.parametrize("direction", [Direction.FORWARD, Direction.BACKWARD])
def test_a_trace_read_in_tiny_chunks_equals_the_trace_read_at_once(
    session: Session, direction: Direction, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a harvest split into three lots, each split again (a tree of 1 + 3 + 6 lots)
    coop = f.org(session)
    root = f.harvest(session, coop, "600").lot_ids[0]
    product = f.product(session, coop, category="longan_dried")
    middle = f.transform(session, coop, [(root, "600")], [(product, "100"), (product, "100"), (product, "100")]).lot_ids
    leaves = [
        lot
        for m in middle
        for lot in f.transform(session, coop, [(m, "100")], [(product, "10"), (product, "10")]).lot_ids
    ]
    start = root if direction is Direction.FORWARD else leaves[0]
    whole = lineage.trace(session=session, actor=f.member(coop), lot_id=start, direction=direction)
    # when the same trace reads its events two ids at a time
    monkeypatch.setattr(lineage, "CHUNK", 2)
    chunked = lineage.trace(session=session, actor=f.member(coop), lot_id=start, direction=direction)
    # then nothing is lost or repeated
    assert chunked.model_dump() == whole.model_dump()
    expected = 10 if direction is Direction.FORWARD else 3
    assert len(whole.lots) == expected and len({lot.id for lot in chunked.lots}) == expected
    assert len(whole.events) == (5 if direction is Direction.FORWARD else 3)  # the harvest and the splits on the way


def _bulk_tree(session: Session, fan: int) -> tuple[int, dict[int, list[int]]]:
    """A root lot split into ``fan`` lots, each split into ``fan`` more, inserted directly (as the
    bench does): the root and each lot's children."""
    coop = f.org(session)
    product = f.product(session, coop)
    made = datetime(2026, 6, 1, tzinfo=UTC)
    codes = iter(range(10**6))

    def lots(count: int) -> list[int]:
        rows = [
            {
                "product_id": product.id,
                "gtin": product.gtin,
                "lot_code": f"BULK{next(codes):07d}",
                "quantity": 1,
                "unit": "kg",
                "producer_organisation_id": coop.id,
                "production_date": date(2026, 6, 1),
                "status": "active",
                "created_event_id": "bulk",
                "created_at": made,
                "product_version": 1,
            }
            for _ in range(count)
        ]
        table = Lot.__table__  # type: ignore[attr-defined]
        return list(session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())

    root = lots(1)[0]
    children = {root: lots(fan)}
    for child in children[root]:
        children[child] = lots(fan)
    edges = [{"parent_lot_id": p, "child_lot_id": c, "event_id": "bulk"} for p, cs in children.items() for c in cs]
    session.execute(insert(LotEdge.__table__), edges)  # type: ignore[attr-defined]
    return root, children


def test_a_recall_of_thousands_of_lots_lists_each_lot_and_edge_once(session: Session) -> None:
    # given a root lot with 80 children and 6,400 grandchildren: 6,481 ids in one parameter
    root, children = _bulk_tree(session, 80)
    every = sorted({root} | {c for cs in children.values() for c in cs})
    # when it is traced forward
    result = lineage.trace(session=session, actor=f.ADMIN, lot_id=root, direction=Direction.FORWARD)
    # then every lot comes once, in id order, and every edge once
    assert [lot.id for lot in result.lots] == every and len(every) == 1 + 80 + 6_400
    assert sorted((e.parent_lot_id, e.child_lot_id) for e in result.edges) == sorted(
        (p, c) for p, cs in children.items() for c in cs
    )
    assert {lot.units for lot in result.lots} == {0} and result.events == []


def test_a_backward_trace_from_the_bottom_of_a_large_tree_finds_only_its_ancestors(session: Session) -> None:
    root, children = _bulk_tree(session, 20)
    middle = children[root][11]
    leaf = children[middle][7]
    result = lineage.trace(session=session, actor=f.ADMIN, lot_id=leaf, direction=Direction.BACKWARD)
    assert [lot.id for lot in result.lots] == sorted([root, middle, leaf])
    assert sorted((e.parent_lot_id, e.child_lot_id) for e in result.edges) == sorted([(root, middle), (middle, leaf)])
