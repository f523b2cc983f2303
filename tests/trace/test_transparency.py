"""The public log: every committed event a leaf, signed checkpoints, proofs, and what an insider cannot hide.

One world per module in a database of its own (SQLite or PostgreSQL, as the suite runs). Insider tests edit
rows straight in the database inside a transaction, run verify-log's log stage there, and roll back.
Oracles: hashlib and the ``cryptography`` package's Ed25519 directly (not our note code), and the RFC 9162
verification of the proofs the API serves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session, select

from tests import factories as f
from tests.conftest import ROOT, Databases, alembic_config, app_sharing, migrate
from tests.services import append_to_log
from trace.epcis import ids as epcis_ids
from trace.epcis import render, vocab
from trace.events import chain, derived
from trace.events.ledger import capture
from trace.events.models import ChainHead, Event, EventType
from trace.events.schemas import HarvestIn, InputUsed
from trace.platform.config import Settings, get_settings
from trace.platform.db import make_engine, session_scope
from trace.tlog import merkle, note
from trace.transparency import keys, log
from trace.transparency import verify as log_verify
from trace.transparency.models import LogHead, LogLeaf

ORIGIN = "hytrace.test/log"


@dataclass
class World:
    url: str
    engine: Engine
    farm_id: int
    farm_name: str
    farm_tax: str
    harvest_id: str  # the farm's harvest, with farming inputs, a business document, key data and a note
    first_size: int  # the checkpoint signed before the last events


def _signer() -> note.Signer:
    return keys.signer(get_settings())


def _tick(engine: Engine) -> None:
    with session_scope(engine) as session:
        append_to_log(session)


def _build(session: Session) -> tuple[int, str, str, str]:
    farm = f.org(session, "farm", name="Nguyễn Văn Hộ")
    coop = f.org(session)
    area = f.location(session, farm)
    product = f.product(session, farm)
    data = HarvestIn(
        product_id=product.id,  # type: ignore[arg-type]
        lot_code="LOG-1",
        quantity="470",  # type: ignore[arg-type]
        location_id=area.id,
        event_time=f.when(5),
        inputs_used=[InputUsed(kind="pesticide", name="Abamectin 1.8EC", applied_on=date(2026, 6, 1))],
        biz_transactions=[{"type": "po", "id": "PO-SECRET-77"}],  # type: ignore[list-item]
        kde={"harvester": "Tổ 3"},
        note="ghi chú riêng",
    )
    harvest = capture(session=session, actor=f.member(farm), items=[(EventType.HARVEST, data)])
    lot = harvest.lot_ids[0]
    shipped = f.ship(session, farm, lot, coop, "400", days_ago=4)
    f.receive(session, coop, shipped.shipment_id, None, days_ago=3)
    for _ in range(9):
        f.harvest(session, coop, "12", days_ago=2)
    session.commit()
    return farm.id, farm.name, farm.tax_code, harvest.events[0].id  # type: ignore[return-value]


@pytest.fixture(scope="module")
def world(databases: Databases) -> Iterator[World]:
    url = databases.new()
    migrate(url)
    engine = make_engine(url, pool_size=4)
    with Session(engine) as session:
        farm_id, name, tax, harvest_id = _build(session)
    _tick(engine)
    with Session(engine) as session:
        first = log.latest(session=session).size  # type: ignore[union-attr]
        f.harvest(session, f.org(session), "3", days_ago=1)
        session.commit()
    _tick(engine)
    yield World(url, engine, farm_id, name, tax, harvest_id, first)
    engine.dispose()


def _rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as c:
        return list(c.execute(text(sql), params))


# --- the tree ---------------------------------------------------------------------------------------------


def test_every_committed_event_is_one_leaf_and_the_head_is_the_rfc_root_of_the_entries(world: World) -> None:
    events = {r.id for r in _rows(world.engine, "SELECT id FROM event")}
    leaves = _rows(world.engine, "SELECT idx, event_id, entry FROM tlog_leaf ORDER BY idx")
    assert [r.idx for r in leaves] == list(range(len(events)))
    assert {r.event_id for r in leaves} == events and not _rows(world.engine, "SELECT * FROM tlog_pending")

    # RFC 9162 §2.1.1 straight from hashlib: MTH of the entries, leaves 0x00-prefixed, nodes 0x01.
    def mth(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return hashlib.sha256(b"\x00" + items[0]).digest()
        k = 1 << ((len(items) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + mth(items[:k]) + mth(items[k:])).digest()

    (head,) = _rows(world.engine, "SELECT size, root FROM tlog_head")
    assert head.size == len(leaves) and head.root == mth([r.entry.encode() for r in leaves]).hex()


def test_a_leaf_commits_to_the_whole_event_with_its_salt(world: World) -> None:
    (row,) = _rows(
        world.engine,
        "SELECT l.entry, l.salt, e.hash FROM tlog_leaf l JOIN event e ON e.id = l.event_id WHERE e.id = :id",
        id=world.harvest_id,
    )
    entry = json.loads(row.entry)
    assert entry["commitment"] == hashlib.sha256(bytes.fromhex(row.salt) + row.hash.encode()).hexdigest()
    assert len(bytes.fromhex(row.salt)) == 16
    # The entry is canonical JSON: what a reader re-serialises is byte for byte what was hashed.
    assert json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":")) == row.entry


def test_a_leaf_shows_only_the_public_form_and_never_a_household_or_its_inputs(world: World) -> None:
    (row,) = _rows(world.engine, "SELECT entry FROM tlog_leaf WHERE event_id = :id", id=world.harvest_id)
    for secret in (world.farm_name, world.farm_tax, "Abamectin", "PO-SECRET-77", "Tổ 3", "ghi chú riêng"):
        assert secret not in row.entry
    event = json.loads(row.entry)["event"]
    assert event["hytrace:organisation"] == vocab.withheld_party_uri(world.farm_id)  # by number, always
    # ... and it is the event as the public EPCIS document gives it, but for the household's name.
    with Session(world.engine) as session:
        connection = session.connection()
        rows = [
            render.row(r)
            for r in connection.execute(render.SELECT.where(render.EVENTS.c.id == world.harvest_id)).mappings()
        ]
        public = render.render(rows, render.load(connection, rows), f.member(f.org(session)))[0]
        session.rollback()
    assert {k: v for k, v in event.items() if k != "hytrace:organisation"} == {
        k: v for k, v in public.items() if k != "hytrace:organisation"
    }


def test_checkpoints_are_signed_notes_that_ed25519_verifies(world: World) -> None:
    with Session(world.engine) as session:
        newest = log.latest(session=session)
    assert newest is not None
    text_, _, signatures = newest.note.partition("\n\n")
    lines = (text_ + "\n").split("\n")
    assert lines[0] == ORIGIN and int(lines[1]) == newest.size and base64.b64decode(lines[2]).hex() == newest.root
    # The signature line checked with cryptography's Ed25519 and the verifier key's bytes, not our note code.
    vkey = _signer().verifier_key
    name, key_id, material = vkey.split("+", 2)  # the base64 may hold "+" too
    raw = base64.b64decode(material)
    (line,) = signatures.splitlines()
    assert line.startswith(f"\u2014 {name} ")
    sig = base64.b64decode(line.split(" ")[2])
    assert struct.unpack(">I", sig[:4])[0] == int(key_id, 16) and raw[0] == 1
    Ed25519PublicKey.from_public_bytes(raw[1:]).verify(sig[4:], (text_ + "\n").encode())  # raises if it does not


def test_a_checkpoint_is_signed_only_when_the_tree_grew(world: World) -> None:
    with Session(world.engine) as session:
        before = log.latest(session=session).size  # type: ignore[union-attr]
        assert log.publish(session=session, signing=keys.signing(get_settings())) is None
        session.rollback()
        assert log.latest(session=session).size == before  # type: ignore[union-attr]


# --- the public endpoints ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with Session(world.engine) as session, TestClient(app_sharing(session)) as client:
        yield client


def _b(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_every_event_has_an_inclusion_proof_that_rfc_9162_verifies(world: World, api: TestClient) -> None:
    checkpoint = api.get("/api/v1/log/checkpoint")
    assert checkpoint.status_code == 200 and checkpoint.headers["content-type"].startswith("text/plain")
    root = base64.b64decode(checkpoint.text.split("\n")[2])
    size = int(checkpoint.text.split("\n")[1])
    for row in _rows(world.engine, "SELECT e.id, i.epcis_id FROM event e JOIN epcis_event_id i ON i.event_id = e.id"):
        for name in (row.id, row.epcis_id):
            proof = api.get("/api/v1/log/proof/inclusion", params={"event": name})
            assert proof.status_code == 200, proof.text
            body = proof.json()
            assert body["tree_size"] == size and body["event_id"] == row.id
            leaf = hashlib.sha256(b"\x00" + body["entry"].encode()).digest()
            assert base64.b64decode(body["leaf_hash"]) == leaf
            assert merkle.verify_inclusion(body["leaf_index"], size, leaf, _b(body["proof"]), root)
            assert not merkle.verify_inclusion(body["leaf_index"] ^ 1, size, leaf, _b(body["proof"]), root)


def test_an_older_checkpoint_is_proved_a_prefix_of_the_newest(world: World, api: TestClient) -> None:
    old = api.get(f"/api/v1/log/checkpoints/{world.first_size}")
    new = api.get("/api/v1/log/checkpoint")
    assert old.status_code == 200
    old_root, new_root = (base64.b64decode(r.text.split("\n")[2]) for r in (old, new))
    new_size = int(new.text.split("\n")[1])
    assert new_size > world.first_size
    proof = api.get("/api/v1/log/proof/consistency", params={"first": world.first_size}).json()
    assert proof["second"] == new_size
    assert merkle.verify_consistency(world.first_size, new_size, old_root, new_root, _b(proof["proof"]))
    # The entries of the tree are served as their exact bytes.
    entries = api.get("/api/v1/log/entries", params={"start": 0, "end": new_size}).json()["entries"]
    assert merkle.root([merkle.leaf_hash(e.encode()) for e in entries]) == new_root


def test_the_key_endpoint_gives_the_key_the_checkpoints_verify_with(api: TestClient) -> None:
    key = api.get("/api/v1/log/key").json()
    assert key["origin"] == ORIGIN
    note.open_note(api.get("/api/v1/log/checkpoint").text, [note.Verifier(key["verifier_key"])])


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/log/proof/inclusion", {"event": "no-such-event"}, 404),
        ("/api/v1/log/proof/inclusion", {"event": "ni:///sha-256;00?ver=CBV2.0"}, 404),
        ("/api/v1/log/proof/inclusion", {"event": "x" * 500}, 422),
        ("/api/v1/log/proof/inclusion", {"event": ""}, 422),
        ("/api/v1/log/proof/consistency", {"first": 10**30}, 422),
        ("/api/v1/log/proof/consistency", {"first": -1}, 422),
        ("/api/v1/log/proof/consistency", {"first": 3, "second": 2}, 422),
        ("/api/v1/log/proof/consistency", {"first": 1, "second": 10**9}, 422),
        ("/api/v1/log/entries", {"start": 5, "end": 5}, 422),
        ("/api/v1/log/entries", {"start": 10**9, "end": 10**9 + 1}, 422),
        ("/api/v1/log/entries", {"start": "a", "end": 2}, 422),
        ("/api/v1/log/checkpoints/999999", {}, 404),
        ("/api/v1/log/checkpoints/-1", {}, 404),
    ],
)
def test_hostile_requests_get_a_reason_never_a_500(
    api: TestClient, path: str, params: dict[str, Any], status: int
) -> None:
    answer = api.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_proof_for_a_tree_that_was_never_signed_is_refused(world: World, api: TestClient) -> None:
    with Session(world.engine) as session:
        size = log.latest(session=session).size  # type: ignore[union-attr]
    answer = api.get("/api/v1/log/proof/inclusion", params={"event": world.harvest_id, "size": size + 1})
    assert answer.status_code == 422 and answer.json()["code"] == "log_size_unpublished"


def test_writes_to_the_log_endpoints_are_refused(api: TestClient) -> None:
    for path in ("/api/v1/log/checkpoint", "/api/v1/log/entries"):
        assert api.post(path, json={}).status_code == 405
        assert api.delete(path).status_code == 405


# --- what the insider cannot hide -------------------------------------------------------------------------


def _drop(c: Connection, *tables: str) -> None:
    """What an insider with the owner's rights does first: drop the append-only triggers."""
    for table in tables:
        if c.dialect.name == "postgresql":
            c.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
        else:
            c.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
            c.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))


def _rechain(session: Session, organisation_id: int) -> None:
    """Recompute an organisation's whole chain with the project's own hash code and move its head."""
    prev = chain.GENESIS
    last = None
    for event in session.exec(select(Event).where(Event.organisation_id == organisation_id).order_by(Event.seq)):  # type: ignore[arg-type]
        event.prev_hash = prev
        event.hash = chain.compute_hash(event)
        prev, last = event.hash, event
    session.flush()
    head = session.get(ChainHead, organisation_id)
    assert head is not None and last is not None
    head.hash = prev
    session.flush()


def _inputs_rewritten(c: Connection, w: World) -> dict[str, Any]:
    # A farming input erased from the harvest; the chain, its head and the EPCIS id made consistent again.
    _drop(c, "event")
    with Session(bind=c, join_transaction_mode="create_savepoint") as session:
        event = session.get(Event, w.harvest_id)
        assert event is not None
        event.payload = {**event.payload, "inputs_used": []}
        session.flush()
        _rechain(session, w.farm_id)
        rows = [render.row(r) for r in c.execute(render.SELECT.where(render.EVENTS.c.id == w.harvest_id)).mappings()]
        new_id = epcis_ids.compute(c, rows)[w.harvest_id]
        c.execute(
            text("UPDATE epcis_event_id SET epcis_id = :e WHERE event_id = :id"), {"e": new_id, "id": w.harvest_id}
        )
        assert chain.verify(session=session).ok and derived.verify(session=session).ok  # chain and tables agree
        session.commit()
    return {"event_id": w.harvest_id, "reason": "no longer matches the commitment"}


def _newest_deleted(c: Connection, w: World) -> dict[str, Any]:
    # The newest event removed with its leaf and nodes, the chain's and the log's heads moved back.
    _drop(c, "event", "event_lot", "tlog_leaf", "tlog_node")
    (size,) = c.execute(text("SELECT size FROM tlog_head")).one()
    event_id = c.execute(text("SELECT event_id FROM tlog_leaf WHERE idx = :i"), {"i": size - 1}).scalar_one()
    org, seq = c.execute(text("SELECT organisation_id, seq FROM event WHERE id = :id"), {"id": event_id}).one()
    for sql in (
        "DELETE FROM tlog_leaf WHERE event_id = :id",
        "DELETE FROM epcis_event_id WHERE event_id = :id",
        "DELETE FROM event_lot WHERE event_id = :id",
        "DELETE FROM event WHERE id = :id",
    ):
        c.execute(text(sql), {"id": event_id})
    frontier = merkle.frontier_keys(size - 1)
    c.execute(text("DELETE FROM tlog_node WHERE idx * power(2, level) + power(2, level) > :n"), {"n": size - 1})
    with Session(bind=c, join_transaction_mode="create_savepoint") as session:
        got = log.nodes(c, frontier)
        root = merkle.fold([got[k] for k in frontier])
        head = session.get(LogHead, 1)
        head.size, head.root = size - 1, root.hex()  # type: ignore[union-attr]
        session.commit()
    query = text("SELECT hash FROM event WHERE organisation_id = :o AND seq = :s")
    prev = c.execute(query, {"o": org, "s": seq - 1}).scalar() or chain.GENESIS
    c.execute(
        text("UPDATE chain_head SET seq = :s, hash = :h WHERE organisation_id = :o"),
        {"s": seq - 1, "h": prev, "o": org},
    )
    return {"tree_size": size, "reason": "a checkpoint was signed at"}


def _entry_edited(c: Connection, w: World) -> dict[str, Any]:
    _drop(c, "tlog_leaf")
    c.execute(text("UPDATE tlog_leaf SET entry = replace(entry, :a, :b) WHERE idx = 3"), {"a": '"v":1', "b": '"v":2'})
    return {"leaf_index": 3, "reason": "leaf 3"}


def _node_edited(c: Connection, w: World) -> dict[str, Any]:
    _drop(c, "tlog_node")
    c.execute(text("UPDATE tlog_node SET hash = :h WHERE level = 1 AND idx = 1"), {"h": "00" * 32})
    return {"leaf_index": 2, "reason": "the stored hash of leaves [2, 4)"}


def _event_unlogged(c: Connection, w: World) -> dict[str, Any]:
    # An event slipped in around the sequencer: its pending row removed.
    with Session(bind=c, join_transaction_mode="create_savepoint") as session:
        made = f.harvest(session, f.org(session), "1")
        session.flush()
        c.execute(text("DELETE FROM tlog_pending WHERE event_id = :id"), {"id": made.events[0].id})
        session.commit()
    return {"event_id": made.events[0].id, "reason": "is neither in the log"}


def _checkpoint_forged(c: Connection, w: World) -> dict[str, Any]:
    # A checkpoint re-signed by a key the log does not have (an insider's own).
    _drop(c, "tlog_checkpoint")
    (size, signed) = c.execute(text("SELECT size, note FROM tlog_checkpoint ORDER BY size LIMIT 1")).one()
    body = signed.partition("\n\n")[0] + "\n"
    forged = note.sign(body, note.Signer(note.generate_key(ORIGIN)[0]))
    c.execute(text("UPDATE tlog_checkpoint SET note = :n WHERE size = :s"), {"n": forged, "s": size})
    return {"tree_size": size, "reason": f"the checkpoint of {size} leaves does not verify"}


def _leaves_swapped(c: Connection, w: World) -> dict[str, Any]:
    _drop(c, "tlog_leaf")
    a, b = (
        c.execute(text("SELECT event_id, entry, salt FROM tlog_leaf WHERE idx = :i"), {"i": i}).one() for i in (0, 1)
    )
    c.execute(text("DELETE FROM tlog_leaf WHERE idx IN (0, 1)"))
    c.execute(
        text("INSERT INTO tlog_leaf (idx, event_id, entry, salt) VALUES (0, :e1, :n1, :s1), (1, :e0, :n0, :s0)"),
        {"e1": b.event_id, "n1": b.entry, "s1": b.salt, "e0": a.event_id, "n0": a.entry, "s0": a.salt},
    )
    return {"leaf_index": 0, "reason": "the stored hash of leaves [0, "}


def _events_swapped(c: Connection, w: World) -> dict[str, Any]:
    # Two events of one chain swapped in its order, the chain rehashed and its head moved: chain.verify passes.
    _drop(c, "event")
    org, a, b = c.execute(
        text(
            "SELECT organisation_id, min(seq), max(seq) FROM event WHERE organisation_id = "
            "(SELECT organisation_id FROM event WHERE organisation_id <> :farm GROUP BY organisation_id "
            "ORDER BY count(*) DESC LIMIT 1) GROUP BY organisation_id"
        ),
        {"farm": w.farm_id},
    ).one()
    for old, new in ((a, -1), (b, a), (-1, b)):
        c.execute(
            text("UPDATE event SET seq = :n WHERE organisation_id = :o AND seq = :s"), {"n": new, "o": org, "s": old}
        )
    with Session(bind=c, join_transaction_mode="create_savepoint") as session:
        _rechain(session, org)
        assert chain.verify(session=session).ok
        session.commit()
    first = c.execute(
        text(
            "SELECT l.event_id FROM tlog_leaf l JOIN event e ON e.id = l.event_id WHERE e.organisation_id = :o "
            "AND e.seq IN (:a, :b) ORDER BY l.idx LIMIT 1"
        ),
        {"o": org, "a": a, "b": b},
    ).scalar_one()
    return {"event_id": first, "reason": "no longer matches the commitment"}


EDITS: dict[str, Callable[[Connection, World], dict[str, Any]]] = {
    "two events swapped in their chain, rehashed": _events_swapped,
    "a farming input rewritten with the chain, its head and its EPCIS id": _inputs_rewritten,
    "the newest event deleted with its leaf, both heads moved back": _newest_deleted,
    "a leaf's entry edited": _entry_edited,
    "a stored node edited": _node_edited,
    "an event written around the sequencer": _event_unlogged,
    "a checkpoint re-signed with another key": _checkpoint_forged,
    "two leaves swapped": _leaves_swapped,
}


@pytest.mark.parametrize("edit", list(EDITS.values()), ids=list(EDITS))
def test_an_insider_edit_is_named_by_verify_log(
    world: World, edit: Callable[[Connection, World], dict[str, Any]]
) -> None:
    with world.engine.connect() as connection:
        transaction = connection.begin()
        try:
            expected = edit(connection, world)
            with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
                report = log_verify.verify(session=session)
        finally:
            transaction.rollback()
    assert not report.ok, report
    assert expected.pop("reason") in (report.reason or ""), report
    for name, value in expected.items():
        assert getattr(report, name) == value, report


def test_verify_log_ends_with_the_public_log(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from trace import cli

    assert cli.main(["--database-url", world.url, "verify-log"]) == cli.OK
    out = capsys.readouterr().out
    assert "public log recomputed from the events" in out and "signed checkpoints agree" in out
    with Session(world.engine) as session:
        report = derived.verify_log(session=session)
    assert report.ok and report.public_log is not None and report.public_log["leaves"] > 0


# --- sequencing -------------------------------------------------------------------------------------------


def _race(url: str, rounds: int, start: Any, key: str) -> int:
    os.environ["HYTRACE_TLOG_SIGNING_KEY"] = key
    get_settings.cache_clear()
    engine = make_engine(url, pool_size=6)
    signing = keys.signing(get_settings())
    start.wait()
    import threading

    done: list[int] = []

    def worker() -> None:
        for _ in range(rounds):
            with session_scope(engine) as session:
                done.append(log.tick(session=session, signing=signing, limit=7))

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    return sum(done)


def test_twenty_sequencers_in_four_processes_append_each_event_once(postgres_engine: Engine) -> None:
    # given 300 committed events waiting, on PostgreSQL (separate connections, four processes)
    url = postgres_engine.url.render_as_string(hide_password=False)
    with Session(postgres_engine) as session:
        orgs = [f.org(session) for _ in range(3)]
        for i in range(100):
            for o in orgs:
                f.harvest(session, o, "1", days_ago=1 + i / 1000)
        session.commit()
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Event()
    key = os.environ["HYTRACE_TLOG_SIGNING_KEY"]
    with context.Pool(4) as pool:
        results = [pool.apply_async(_race, (url, 12, start, key)) for _ in range(4)]
        start.set()
        appended = sum(r.get(timeout=300) for r in results)
    # then every event is one leaf, at one index, and the tree verifies against every checkpoint signed
    with Session(postgres_engine) as session:
        leaves = session.exec(select(LogLeaf)).all()
        events = session.exec(select(Event.id)).all()
        report = log_verify.verify(session=session)
    assert appended == len(events) == len(leaves) == len({leaf.event_id for leaf in leaves}) == 300
    assert sorted(leaf.idx for leaf in leaves) == list(range(300))
    assert report.ok and report.checkpoints > 1, report


def test_the_cli_appends_and_signs_from_another_process(fresh: tuple[str, Engine]) -> None:
    url, engine = fresh
    migrate(url)
    with Session(engine) as session:
        f.harvest(session, f.org(session), "5")
        session.commit()
    env = {**os.environ, "HYTRACE_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "trace.cli", "tlog-tick"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "1 events appended" in done.stdout
    with Session(engine) as session:
        assert log.latest(session=session).size == 1  # type: ignore[union-attr]


# --- keys ----------------------------------------------------------------------------------------------


def test_production_refuses_to_start_without_a_signing_key() -> None:
    with pytest.raises(ValueError, match="HYTRACE_TLOG_SIGNING_KEY must be set"):
        Settings(environment="production", secret_key="x7#Qp9!zLm2@Rt5^Wv8&Yb1*Nc4(Hd6)", tlog_signing_key="")


def test_development_makes_a_key_once_and_keeps_it_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "tlog.key"
    settings = Settings(environment="development", tlog_signing_key="", tlog_key_file=str(path))
    first = keys.signer(settings)
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.signer(settings).verifier_key == first.verifier_key
    assert first.name == settings.log_origin


def test_a_malformed_signing_key_is_refused_with_a_reason() -> None:
    settings = Settings(tlog_signing_key="PRIVATE+KEY+x+00000000+AAAA")
    with pytest.raises(Exception, match="not a signer key"):
        keys.signer(settings)


def test_the_migration_appends_existing_events_in_their_chains_order(fresh: tuple[str, Engine]) -> None:
    # given events recorded before the log existed (the log's tables dropped by going back to 0015)
    url, engine = fresh
    migrate(url)
    with Session(engine) as session:
        orgs = [f.org(session) for _ in range(2)]
        for i in range(3):
            for o in orgs:
                f.harvest(session, o, "2", days_ago=3 - i)
        session.commit()
    command.downgrade(alembic_config(url), "0015")
    # when the database is upgraded in place
    command.upgrade(alembic_config(url), "head")
    # then every event is a leaf, chain by chain, and the tree verifies
    rows = _rows(
        engine,
        "SELECT l.idx, e.organisation_id, e.seq FROM tlog_leaf l JOIN event e ON e.id = l.event_id ORDER BY l.idx",
    )
    assert [(r.organisation_id, r.seq) for r in rows] == sorted((r.organisation_id, r.seq) for r in rows)
    assert len(rows) == len(_rows(engine, "SELECT id FROM event")) > 0
    assert not _rows(engine, "SELECT * FROM tlog_pending")
    with Session(engine) as session:
        assert log_verify.verify(session=session).ok
