"""Large traces are read in chunks of ids (PostgreSQL takes at most 65,535 parameters a statement):
the chunked reading gives exactly the unchunked answer."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from tests import factories as f
from trace import lineage
from trace.lineage import Direction


@pytest.mark.parametrize("direction", [Direction.FORWARD, Direction.BACKWARD])
def test_a_trace_read_in_tiny_chunks_equals_the_trace_read_at_once(
    session: Session, direction: Direction, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a harvest split into three lots, each split again (a tree of 1 + 3 + 6 lots)
    coop = f.org(session)
    root = f.harvest(session, coop, "600").lot_ids[0]
    product = f.product(session, coop, category="longan_dried")
    middle = f.transform(session, coop, [(root, "600")], [(product, "100"), (product, "100"), (product, "100")]).lot_ids
    leaves = [lot for m in middle for lot in f.transform(session, coop, [(m, "100")], [(product, "10"), (product, "10")]).lot_ids]
    start = root if direction is Direction.FORWARD else leaves[0]
    whole = lineage.trace(session=session, actor=f.member(coop), lot_id=start, direction=direction)
    # when the same trace is read two ids at a time
    monkeypatch.setattr(lineage, "CHUNK", 2)
    chunked = lineage.trace(session=session, actor=f.member(coop), lot_id=start, direction=direction)
    # then nothing is lost or repeated
    assert chunked.model_dump() == whole.model_dump()
    expected = 10 if direction is Direction.FORWARD else 3
    assert len(whole.lots) == expected and len({lot.id for lot in chunked.lots}) == expected


def test_a_trace_larger_than_the_small_set_size_reads_the_same_in_uneven_chunks(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a harvest split into 70 lots (more than the plain-IN size on SQLite)
    coop = f.org(session)
    root = f.harvest(session, coop, "700").lot_ids[0]
    product = f.product(session, coop, category="longan_dried")
    f.transform(session, coop, [(root, "700")], [(product, "10")] * 70)
    whole = lineage.trace(session=session, actor=f.member(coop), lot_id=root, direction=Direction.FORWARD)
    # when it is read in chunks of 67 (the last chunk smaller than the small-set size)
    monkeypatch.setattr(lineage, "CHUNK", 67)
    chunked = lineage.trace(session=session, actor=f.member(coop), lot_id=root, direction=Direction.FORWARD)
    # then the answers agree
    assert len(whole.lots) == 71 and chunked.model_dump() == whole.model_dump()
