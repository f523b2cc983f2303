"""Is a label's journey in the signed log? What the consumer page says and the inspector's verdict checks.

For each event: its leaf is in the newest signed checkpoint (the RFC 9162 audit path from the stored nodes
verifies against the root the log's key signed), the commitment logged for it matches the event as stored,
and the event still hashes to its chain hash. A journey is a few dozen events: a handful of queries.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from trace.events import chain
from trace.events.models import Event
from trace.platform.config import get_settings
from trace.platform.sqltypes import in_chunks
from trace.tlog import merkle, note
from trace.transparency import keys, log


@dataclass
class JourneyLog:
    """What the log says of a set of events."""

    events: int
    included: int = 0  # in the newest signed checkpoint, proof and commitment checked
    pending: int = 0  # not yet in a signed checkpoint (appended within seconds)
    tree_size: int | None = None
    signed_at: datetime | None = None
    witnesses: list[str] = field(default_factory=list)  # who cosigned that checkpoint
    failed: list[dict[str, str]] = field(default_factory=list)  # event id and why its check failed
    proofs: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id → leaf index, entry, audit path
    oldest_pending: datetime | None = None  # when the longest-waiting event was recorded (UTC)


def status(
    *,
    session: Session,
    event_ids: Sequence[str],
    verifiers: Sequence[note.Verifier] | None = None,
    with_proofs: bool = False,
) -> JourneyLog:
    """Check each event against the newest signed checkpoint (``with_proofs``: keep each audit path)."""
    wanted = sorted(set(event_ids))
    report = JourneyLog(events=len(wanted))
    connection = session.connection()
    leaves: dict[str, tuple[int, str, str]] = {}
    rows: dict[str, Event] = {}
    for chunk in in_chunks(wanted):
        query = select(log.LEAVES.c.event_id, log.LEAVES.c.idx, log.LEAVES.c.entry, log.LEAVES.c.salt)
        for event_id, idx, entry, salt in connection.execute(query.where(log.LEAVES.c.event_id.in_(chunk))):
            leaves[event_id] = (idx, entry, salt)
        rows.update({e.id: e for e in session.scalars(select(Event).where(Event.__table__.c.id.in_(chunk)))})  # type: ignore[attr-defined]
    newest = log.latest(session=session)
    signed = None
    if newest is not None:
        try:
            signed = log.verified(newest.note, verifiers if verifiers is not None else keys.verifiers(get_settings()))
        except note.NoteError as error:
            report.failed = [
                {"event_id": e, "reason": f"the newest checkpoint does not verify: {error}"} for e in wanted
            ]
            return report
        report.tree_size, report.signed_at = signed.size, newest.signed_at
        report.witnesses = [c.witness for c in log.cosignatures(session=session, size=signed.size)]
    inside = {e: v for e, v in leaves.items() if signed is not None and v[0] < signed.size}
    waiting = [rows[e].record_time for e in wanted if e not in inside and e in rows]
    report.pending = len(wanted) - len(inside)
    report.oldest_pending = min(waiting, default=None)
    if signed is None:
        return report
    paths = {e: merkle.inclusion_ranges(idx, signed.size) for e, (idx, _, _) in inside.items()}
    needed = {e: merkle.keys_of(ranges) for e, ranges in paths.items()}
    found = log.nodes(connection, set().union(*needed.values()))
    for event_id, (idx, entry, salt) in sorted(inside.items(), key=lambda item: item[1][0]):
        proof = merkle.hashes_of(paths[event_id], found.__getitem__) if needed[event_id] <= found.keys() else None
        reason = _why_not(idx, entry, salt, rows.get(event_id), proof, signed)
        if reason is not None:
            report.failed.append({"event_id": event_id, "reason": reason})
            continue
        report.included += 1
        if with_proofs and proof is not None:
            report.proofs[event_id] = {"leaf_index": idx, "entry": entry, "proof": proof}
    return report


def _why_not(
    idx: int, entry: str, salt: str, event: Event | None, proof: list[bytes] | None, signed: note.Checkpoint
) -> str | None:
    if event is None:
        return "the event is gone"
    if proof is None:
        return "the log lacks part of its audit path"
    if not merkle.verify_inclusion(idx, signed.size, merkle.leaf_hash(entry.encode()), proof, signed.root):
        return f"leaf {idx} is not in the signed tree of {signed.size} leaves"
    if chain.compute_hash(event) != event.hash:
        return "the event no longer matches its chain hash"
    try:
        committed = json.loads(entry)["commitment"]
    except (ValueError, KeyError, TypeError):
        return f"leaf {idx} is not a log entry"
    if committed != log.commitment(salt, event.hash):
        return "the event no longer matches the commitment logged for it"
    return None


def proofs(*, session: Session, event_ids: Sequence[str]) -> dict[str, Any]:
    """The newest signed checkpoint (with its cosignatures) and each event's audit path in it, base64, by
    EPCIS eventID: what ``?linkType=gs1:epcis&proofs=1`` and the page's JSON carry."""
    found = status(session=session, event_ids=event_ids, with_proofs=True)
    newest = log.latest(session=session)
    ids: dict[str, str] = {}
    for chunk in in_chunks(sorted({*found.proofs, *(f["event_id"] for f in found.failed)})):
        query = select(log.IDS.c.event_id, log.IDS.c.epcis_id).where(log.IDS.c.event_id.in_(chunk))
        ids.update(dict(session.connection().execute(query).tuples().all()))
    return {
        "checkpoint": log.published(session=session, checkpoint=newest) if newest is not None else None,
        "treeSize": found.tree_size,
        "pending": found.pending,
        "failed": [{"eventID": ids.get(f["event_id"], f["event_id"]), "reason": f["reason"]} for f in found.failed],
        "inclusions": [
            {
                "eventID": ids.get(event_id, event_id),
                "leafIndex": proof["leaf_index"],
                "entry": proof["entry"],
                "proof": [base64.b64encode(h).decode() for h in proof["proof"]],
            }
            for event_id, proof in sorted(found.proofs.items(), key=lambda item: item[1]["leaf_index"])
        ],
    }
