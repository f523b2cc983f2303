"""C2SP tlog-tiles: the log's hash tiles and entry bundles, read over HTTP and checked with hashlib alone
(RFC 9162's MTH written out here, not our tree code), and the tile paths as the specification spells them."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from tests import factories as f
from tests.conftest import Databases, app_sharing, migrate
from tests.services import append_to_log
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.schemas import HarvestIn
from trace.platform.db import make_engine, session_scope
from trace.transparency import log

EVENTS = 300  # more than one full tile of leaves, and a partial tile at level 1


def _mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


@pytest.fixture(scope="module")
def api(databases: Databases) -> Iterator[tuple[TestClient, Engine]]:
    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=2)
    with Session(engine) as session:
        org = f.org(session)
        product, area = f.product(session, org), f.location(session, org)
        items = [
            (
                EventType.HARVEST,
                HarvestIn(
                    product_id=product.id,  # type: ignore[arg-type]
                    lot_code=f"TILE-{i}",
                    quantity=Decimal(i + 1),  # type: ignore[arg-type]
                    location_id=area.id,
                    event_time=f.when(2),
                ),
            )
            for i in range(EVENTS)
        ]
        capture(session=session, actor=f.member(org), items=items)  # type: ignore[arg-type]
        session.commit()
    with session_scope(engine) as session:
        append_to_log(session)
    with Session(engine) as session, TestClient(app_sharing(session)) as client:
        yield client, engine
    engine.dispose()


def _entries(client: TestClient, size: int) -> list[bytes]:
    return [e.encode() for e in client.get("/api/v1/log/entries", params={"start": 0, "end": size}).json()["entries"]]


def _size_and_root(client: TestClient) -> tuple[int, bytes]:
    lines = client.get("/api/v1/log/checkpoint").text.split("\n")
    return int(lines[1]), base64.b64decode(lines[2])


def test_the_tiles_rebuild_the_signed_root_with_hashlib_alone(api: tuple[TestClient, Engine]) -> None:
    client, _ = api
    size, root = _size_and_root(client)
    assert size == EVENTS
    entries = _entries(client, size)
    leaves = [hashlib.sha256(b"\x00" + e).digest() for e in entries]
    full = client.get("/api/v1/log/tile/0/000")
    assert full.status_code == 200 and full.headers["content-type"] == "application/octet-stream"
    partial = client.get(f"/api/v1/log/tile/0/001.p/{size - 256}")
    hashes = full.content + partial.content
    assert [hashes[i : i + 32] for i in range(0, len(hashes), 32)] == leaves
    # level 1: the one complete subtree of 256 leaves
    level1 = client.get("/api/v1/log/tile/1/000.p/1")
    assert level1.status_code == 200 and level1.content == _mth(leaves[:256])
    assert _mth(leaves) == root
    assert full.headers["cache-control"].endswith("immutable")


def test_entry_bundles_hold_the_entries_length_prefixed(api: tuple[TestClient, Engine]) -> None:
    client, _ = api
    size, _ = _size_and_root(client)
    bundle = (
        client.get("/api/v1/log/tile/entries/000").content
        + client.get(f"/api/v1/log/tile/entries/001.p/{size - 256}").content
    )
    found, at = [], 0
    while at < len(bundle):
        length = int.from_bytes(bundle[at : at + 2], "big")
        found.append(bundle[at + 2 : at + 2 + length])
        at += 2 + length
    assert found == _entries(client, size)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/log/tile/0/001", 404),  # only a partial tile exists there
        ("/api/v1/log/tile/0/002.p/1", 404),  # beyond the tree
        ("/api/v1/log/tile/0/001.p/250", 404),  # wider than the tree
        ("/api/v1/log/tile/1/000", 404),
        ("/api/v1/log/tile/0/x000/000", 422),  # not the canonical spelling of tile 0
        ("/api/v1/log/tile/0/0", 422),
        ("/api/v1/log/tile/0/000.p/0", 422),
        ("/api/v1/log/tile/0/000.p/256", 422),
        ("/api/v1/log/tile/0/abc", 422),
        ("/api/v1/log/tile/9/000", 422),
        ("/api/v1/log/tile/-1/000", 422),
        ("/api/v1/log/tile/entries/x1/000", 422),
        ("/api/v1/log/tile/entries/005", 404),
    ],
)
def test_a_tile_outside_the_tree_or_misspelt_is_refused_with_a_reason(
    api: tuple[TestClient, Engine], path: str, status: int
) -> None:
    client, _ = api
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("index", "width", "path"),
    [  # the examples of C2SP tlog-tiles
        (1234067, None, "x001/x234/067"),
        (1234067, 8, "x001/x234/067.p/8"),
        (67, None, "067"),
        (0, None, "000"),
        (1000, None, "x001/000"),
    ],
)
def test_tile_paths_are_spelt_as_the_specification_spells_them(index: int, width: int | None, path: str) -> None:
    assert log.tile_path(index, width) == path
    assert log.parse_tile_path(path) == (index, width)
