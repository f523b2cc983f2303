"""verify-log's last stage: the public log recomputed from the events, leaf by leaf, against what was signed.

It names the first thing that differs: an event neither in the tree nor waiting for it, a leaf whose event is
gone, a leaf whose commitment or public form no longer matches its event (the event was rewritten after it was
logged, even consistently with the chain's own hash), a stored node, the head, or a signed checkpoint whose
root the leaves no longer give (the first inconsistent tree size).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exists, func, select
from sqlmodel import Session

from trace.epcis import render
from trace.platform.config import get_settings
from trace.platform.sqltypes import in_chunks
from trace.tlog import merkle, note
from trace.transparency import keys
from trace.transparency.log import (
    CHECKPOINTS,
    EVENTS_HASHED,
    LEAVES,
    NODES,
    PENDING,
    commitment,
    entry_bytes,
    public_forms,
    tree_head,
    verified,
)

PAGE = 2000


@dataclass
class LogCheck:
    """What recomputing the public log found: ``ok``, or the first thing that differs."""

    ok: bool
    leaves: int = 0
    checkpoints: int = 0
    pending: int = 0
    leaf_index: int | None = None
    event_id: str | None = None
    tree_size: int | None = None  # the tree size (a checkpoint's) that no longer agrees
    reason: str | None = None


class _Differs(Exception):
    def __init__(self, reason: str, **where: Any) -> None:
        super().__init__(reason)
        self.reason, self.where = reason, where


def _count(connection: Connection, table: Any) -> int:
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _unlogged(connection: Connection) -> str | None:
    events = render.EVENTS
    query = (
        select(events.c.id)
        # NOT EXISTS, an anti-join: PostgreSQL runs NOT IN (subquery) row by row once it outgrows work_mem
        .where(
            ~exists().where(LEAVES.c.event_id == events.c.id),
            ~exists().where(PENDING.c.event_id == events.c.id),
        )
        .order_by(events.c.record_time)
        .limit(1)
    )
    return connection.execute(query).scalar()


def _events_of(connection: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    query = EVENTS_HASHED
    for chunk in in_chunks(list(ids)):
        out.update(
            {r["id"]: render.row(r) for r in connection.execute(query.where(render.EVENTS.c.id.in_(chunk))).mappings()}
        )
    return out


def _check_nodes(connection: Connection, made: dict[merkle.Key, bytes]) -> None:
    # The nodes a batch of consecutive leaves made are consecutive at each level: one range read per level.
    by_level: dict[int, list[int]] = {}
    for level, idx in made:
        by_level.setdefault(level, []).append(idx)
    stored: dict[merkle.Key, str] = {}
    for level, idxs in by_level.items():
        query = select(NODES.c.idx, NODES.c.hash).where(
            NODES.c.level == level, NODES.c.idx >= min(idxs), NODES.c.idx <= max(idxs)
        )
        stored.update({(level, idx): h for idx, h in connection.execute(query)})
    for key in sorted(made):
        if stored.get(key) != made[key].hex():
            level, idx = key
            first = idx << level
            problem = "is missing" if key not in stored else "does not match its leaves"
            raise _Differs(f"the stored hash of leaves [{first}, {first + (1 << level)}) {problem}", leaf_index=first)


def _check_leaf(
    index: int, expected: int, event_id: str, entry: str, salt: str, event: dict[str, Any] | None, public: Any
) -> None:
    if index != expected:
        raise _Differs(f"leaf {expected} is missing (the next stored leaf is {index})", leaf_index=expected)
    if event is None:
        raise _Differs(f"leaf {index} records event {event_id}, which is gone", leaf_index=index, event_id=event_id)
    try:
        recorded = json.loads(entry)
        committed = recorded["commitment"]
    except (ValueError, KeyError, TypeError):
        raise _Differs(f"leaf {index} is not a log entry", leaf_index=index, event_id=event_id) from None
    if committed != commitment(salt, event["chain_hash"]):
        raise _Differs(
            f"leaf {index}: event {event_id} no longer matches the commitment logged for it (it was rewritten "
            "after it was logged)",
            leaf_index=index,
            event_id=event_id,
        )
    if entry_bytes(public, committed).decode() != entry:
        raise _Differs(
            f"leaf {index}: the public form of event {event_id} differs from the one logged for it",
            leaf_index=index,
            event_id=event_id,
        )


def verify(
    *,
    session: Session,
    verifiers: Sequence[note.Verifier] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LogCheck:
    """Recompute the tree from the events and check it against the stored nodes, the head and every checkpoint."""
    connection = session.connection()
    verifiers = list(verifiers) if verifiers is not None else keys.verifiers(get_settings())
    total = _count(connection, LEAVES)
    report = LogCheck(ok=True, leaves=total, pending=_count(connection, PENDING))
    checkpoints = list(
        connection.execute(
            select(CHECKPOINTS.c.size, CHECKPOINTS.c.root, CHECKPOINTS.c.note).order_by(CHECKPOINTS.c.size)
        ).tuples()
    )
    report.checkpoints = len(checkpoints)
    wanted = {size: root for size, root, _ in checkpoints}
    roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT} if 0 in wanted else {}
    try:
        missing = _unlogged(connection)
        if missing is not None:
            raise _Differs(f"event {missing} is neither in the log nor waiting for it", event_id=missing)
        frontier: list[bytes] = []
        size = 0
        query = select(LEAVES.c.idx, LEAVES.c.event_id, LEAVES.c.entry, LEAVES.c.salt).order_by(LEAVES.c.idx)
        result = connection.execute(query.execution_options(yield_per=PAGE))
        for batch in result.partitions():
            rows = list(batch)
            events = _events_of(connection, [r[1] for r in rows])
            present = [events[r[1]] for r in rows if r[1] in events]
            forms = dict(zip((e["id"] for e in present), public_forms(connection, present), strict=True))
            made: dict[merkle.Key, bytes] = {}
            for index, event_id, entry, salt in rows:
                _check_leaf(index, size, event_id, entry, salt, events.get(event_id), forms.get(event_id))
                frontier, new = merkle.append(frontier, size, merkle.leaf_hash(entry.encode()))
                made.update(new)
                size += 1
                if size in wanted:
                    roots[size] = merkle.root_from_frontier(frontier)
            _check_nodes(connection, made)
            if on_progress is not None and total:
                on_progress(min(99, 100 * size // total))
        expected_nodes = 2 * size - size.bit_count()
        if _count(connection, NODES) != expected_nodes:
            raise _Differs(
                f"the log stores {_count(connection, NODES)} node hashes, not the {expected_nodes} of its leaves"
            )
        head = tree_head(session=session)
        root = merkle.root_from_frontier(frontier)
        if head.size != size or head.root != root.hex():
            raise _Differs(f"the log's head says {head.size} leaves, but {size} leaves hash to another root")
        for tree_size, signed_root, signed in checkpoints:
            _check_checkpoint(tree_size, signed_root, signed, size, roots.get(tree_size), verifiers)
    except _Differs as found:
        report.ok, report.reason = False, found.reason
        for name, value in found.where.items():
            setattr(report, name, value)
    if on_progress is not None:
        on_progress(100)
    return report


def _check_checkpoint(
    tree_size: int, signed_root: str, signed: str, size: int, root: bytes | None, verifiers: Sequence[note.Verifier]
) -> None:
    if tree_size > size:
        raise _Differs(
            f"a checkpoint was signed at {tree_size} leaves, but the log holds {size}: leaves were removed",
            tree_size=tree_size,
        )
    try:
        body = verified(signed, verifiers)
    except note.NoteError as error:
        raise _Differs(f"the checkpoint of {tree_size} leaves does not verify: {error}", tree_size=tree_size) from None
    if body.size != tree_size or body.root.hex() != signed_root:
        raise _Differs(
            f"the checkpoint of {tree_size} leaves was stored under another size or root", tree_size=tree_size
        )
    if root is None or body.root != root:
        raise _Differs(
            f"the first {tree_size} leaves no longer hash to the root signed at tree size {tree_size}",
            tree_size=tree_size,
        )
