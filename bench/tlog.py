"""The public log's proofs at scale: a tree of N leaves (default 1,000,000) stored as the sequencer stores it,
then inclusion and consistency proofs read from it, as the API serves them, and verified.

Run from the repository root::

    .venv/bin/python -m bench.tlog [--db sqlite|postgres|both] [--leaves 1000000] [--proofs 2000]

The tree's nodes are written straight into ``tlog_node`` (the leaves are synthetic: a proof reads nodes
only); a proof is the domain call the endpoint makes (``log.consistency``; for inclusion, the same node
read and verification ``log.inclusion`` does after its one-row leaf lookup) and an RFC 9162 verification.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

from sqlalchemy import insert, text
from sqlmodel import Session

from bench.common import base_parser, emit, fresh_database, kinds
from trace.platform.db import make_engine
from trace.platform.timeutil import utcnow
from trace.tlog import merkle, note
from trace.transparency import log
from trace.transparency.models import LogCheckpoint

CHUNK = 20_000


def _build(engine: Any, leaves: int) -> tuple[bytes, float]:
    """Write a tree of ``leaves`` synthetic leaves; its root and the seconds it took."""
    started = time.perf_counter()
    frontier: list[bytes] = []
    rows: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for i in range(leaves):
            leaf = merkle.leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest())
            frontier, made = merkle.append(frontier, i, leaf)
            rows.extend({"level": level, "idx": idx, "hash": h.hex()} for (level, idx), h in made)
            if len(rows) >= CHUNK:
                connection.execute(insert(log.NODES), rows)
                rows = []
        if rows:
            connection.execute(insert(log.NODES), rows)
        root = merkle.root_from_frontier(frontier)
        connection.execute(text("UPDATE tlog_head SET size = :n, root = :r"), {"n": leaves, "r": root.hex()})
        signer = note.Signer(note.generate_key("bench/log")[0])
        body = note.Checkpoint("bench/log", leaves, root).text()
        connection.execute(
            insert(LogCheckpoint.__table__),  # type: ignore[attr-defined]
            [{"size": leaves, "root": root.hex(), "note": note.sign(body, signer), "key_name": "bench/log",
              "signed_at": utcnow()}],
        )  # fmt: skip
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE tlog_node"))
    return root, time.perf_counter() - started


def _q(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 3)


def _ms(samples: list[float]) -> str:
    samples.sort()
    return f"p50 {samples[len(samples) // 2] * 1000:.2f} ms, p99 {samples[int(len(samples) * 0.99)] * 1000:.2f} ms"


def run(db: str, leaves: int, proofs: int) -> None:
    """Build the tree in a fresh database of ``db`` and time the proofs."""
    with fresh_database(db) as url:
        engine = make_engine(url, pool_size=2)
        root, built = _build(engine, leaves)
        print(f"{db}: a tree of {leaves:,} leaves written in {built:.1f} s", flush=True)
        rng = random.Random(16)
        inclusion: list[float] = []
        consistency: list[float] = []
        with Session(engine) as session:
            for _ in range(proofs):
                index = rng.randrange(leaves)
                began = time.perf_counter()
                ranges = merkle.inclusion_ranges(index, leaves)
                found = log.nodes(session.connection(), merkle.keys_of(ranges) | {(0, index)})  # + the leaf
                path = merkle.hashes_of(ranges, found.__getitem__)
                leaf = found[(0, index)]
                assert merkle.verify_inclusion(index, leaves, leaf, path, root)
                inclusion.append(time.perf_counter() - began)
            first = leaves // 3
            old_root = merkle.range_hash(0, first, lambda key: log.nodes(session.connection(), [key])[key])
            for _ in range(proofs):
                older = rng.randrange(1, leaves)
                began = time.perf_counter()
                _, _, proof = log.consistency(session=session, first=older, second=leaves)
                consistency.append(time.perf_counter() - began)
                if older == first:
                    assert merkle.verify_consistency(first, leaves, old_root, root, proof)
            _, _, proof = log.consistency(session=session, first=first, second=leaves)
            assert merkle.verify_consistency(first, leaves, old_root, root, proof)
        print(f"{db}: inclusion proof read and verified at {leaves:,} leaves: {_ms(inclusion)} ({proofs:,} proofs)")
        print(f"{db}: consistency proof at {leaves:,} leaves: {_ms(consistency)} ({proofs:,} proofs)")
        emit(
            "tlog",
            {"db": db, "leaves": leaves, "proofs": proofs, "build_s": round(built, 1),
             "inclusion_p50_ms": _q(inclusion, 0.5), "inclusion_p99_ms": _q(inclusion, 0.99),
             "consistency_p50_ms": _q(consistency, 0.5), "consistency_p99_ms": _q(consistency, 0.99)},
        )  # fmt: skip
        engine.dispose()


def main() -> None:
    """Parse the arguments and run."""
    parser = base_parser(__doc__)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2000)
    args = parser.parse_args()
    for db in kinds(args.db):
        run(db, args.leaves, args.proofs)


if __name__ == "__main__":
    main()
