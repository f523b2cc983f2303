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

from sqlalchemy import func, select
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
    newest = log.latest(session=session)
    if newest is None:
        report.pending = len(wanted)
        report.oldest_pending = _oldest(session, wanted)
        return report
    try:
        text, _ = note.open_note(newest.note, verifiers if verifiers is not None else keys.verifiers(get_settings()))
        signed = note.Checkpoint.parse(text)
    except note.NoteError as error:
        report.failed = [{"event_id": e, "reason": f"the newest checkpoint does not verify: {error}"} for e in wanted]
        return report
    report.tree_size, report.signed_at = signed.size, newest.signed_at
    report.witnesses = [c.witness for c in log.cosignatures(session=session, size=signed.size)]
    connection = session.connection()
    leaves: dict[str, tuple[int, str, str]] = {}
    rows: dict[str, Event] = {}
    for chunk in in_chunks(wanted):
        query = select(log.LEAVES.c.event_id, log.LEAVES.c.idx, log.LEAVES.c.entry, log.LEAVES.c.salt)
        for event_id, idx, entry, salt in connection.execute(query.where(log.LEAVES.c.event_id.in_(chunk))):
            leaves[event_id] = (idx, entry, salt)
        rows.update({e.id: e for e in session.scalars(select(Event).where(Event.__table__.c.id.in_(chunk)))})  # type: ignore[attr-defined]
    inside = {e: v for e, v in leaves.items() if v[0] < signed.size}
    report.pending = len(wanted) - len(inside)
    report.oldest_pending = _oldest(session, [e for e in wanted if e not in inside])
    ranges = {e: merkle.inclusion_ranges(idx, signed.size) for e, (idx, _, _) in inside.items()}
    found = log.nodes(connection, {key for r in ranges.values() for key in merkle.keys_of(r)})
    for event_id, (idx, entry, salt) in sorted(inside.items(), key=lambda item: item[1][0]):
        reason = _why_not(event_id, idx, entry, salt, rows.get(event_id), ranges[event_id], found, signed)
        if reason is not None:
            report.failed.append({"event_id": event_id, "reason": reason})
            continue
        report.included += 1
        if with_proofs:
            report.proofs[event_id] = {
                "leaf_index": idx,
                "entry": entry,
                "proof": [h.hex() for h in merkle.hashes_of(ranges[event_id], found.__getitem__)],
            }
    return report


def _oldest(session: Session, event_ids: Sequence[str]) -> datetime | None:
    events = Event.__table__  # type: ignore[attr-defined]
    oldest = None
    for chunk in in_chunks(list(event_ids)):
        found = session.execute(select(func.min(events.c.record_time)).where(events.c.id.in_(chunk))).scalar()
        if found is not None and (oldest is None or found < oldest):
            oldest = found
    return oldest


def _why_not(
    event_id: str,
    idx: int,
    entry: str,
    salt: str,
    event: Event | None,
    ranges: list[tuple[int, int]],
    found: dict[merkle.Key, bytes],
    signed: note.Checkpoint,
) -> str | None:
    if event is None:
        return "the event is gone"
    if any(key not in found for key in merkle.keys_of(ranges)):
        return "the log lacks part of its audit path"
    proof = merkle.hashes_of(ranges, found.__getitem__)
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
    for chunk in in_chunks(sorted(found.proofs)):
        query = select(log.IDS.c.event_id, log.IDS.c.epcis_id).where(log.IDS.c.event_id.in_(chunk))
        ids.update(dict(session.connection().execute(query).tuples().all()))
    signed = None
    if newest is not None:
        signed = newest.note + "".join(c.line for c in log.cosignatures(session=session, size=newest.size))
    return {
        "checkpoint": signed,
        "treeSize": found.tree_size,
        "pending": found.pending,
        "failed": [{"eventID": ids.get(f["event_id"], f["event_id"]), "reason": f["reason"]} for f in found.failed],
        "inclusions": [
            {
                "eventID": ids.get(event_id, event_id),
                "leafIndex": proof["leaf_index"],
                "entry": proof["entry"],
                "proof": [base64.b64encode(bytes.fromhex(h)).decode() for h in proof["proof"]],
            }
            for event_id, proof in sorted(found.proofs.items(), key=lambda item: item[1]["leaf_index"])
        ],
    }
