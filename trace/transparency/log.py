"""The sequencer, the checkpoints and the proofs of the instance's one Merkle tree.

A leaf is the UTF-8 bytes of a canonical JSON object (sorted keys, no spaces)::

    {"commitment": hex SHA-256(salt || event hash), "event": <the event's public EPCIS form>, "v": 1}

``event`` is what anybody may read of the event (``render.log_forms``): a consumer recomputes it from the
page's EPCIS document. ``commitment`` binds the leaf to the whole event, private facts included: the event's
chain hash covers every field and its predecessor's hash, and the 16-byte random salt (kept beside the leaf,
shown only to those who may read the event in full) keeps the commitment from confirming a guess.

Events are appended by one sequencer at a time (the head row's lock) in the order it finds them committed
(``tlog_pending``, written in each event's own transaction); checkpoints are signed off the request path.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from trace.epcis import render
from trace.epcis.models import EpcisEventId
from trace.errors import NotFound, RuleViolation
from trace.platform.sqltypes import in_chunks
from trace.platform.timeutil import utcnow
from trace.tlog import merkle, note
from trace.transparency import keys
from trace.transparency.models import LogCheckpoint, LogCosignature, LogHead, LogLeaf, LogNode, LogPending

ENTRY_VERSION = 1
BATCH = 2000  # events a sequencer round appends in one transaction (a short write lock on SQLite)
MAX_ENTRIES = 1000  # leaves one page of /entries returns
LEAVES = LogLeaf.__table__  # type: ignore[attr-defined]
NODES = LogNode.__table__  # type: ignore[attr-defined]
PENDING = LogPending.__table__  # type: ignore[attr-defined]
CHECKPOINTS = LogCheckpoint.__table__  # type: ignore[attr-defined]
IDS = EpcisEventId.__table__  # type: ignore[attr-defined]
# What the log reads of an event: what rendering reads, and its chain hash (which the commitment binds).
EVENTS_HASHED = render.SELECT.add_columns(render.EVENTS.c.hash.label("chain_hash"))


def commitment(salt: str, event_hash: str) -> str:
    """The salted commitment to a whole event: SHA-256(salt bytes || the event's chain hash as ASCII hex)."""
    return hashlib.sha256(bytes.fromhex(salt) + event_hash.encode()).hexdigest()


def entry_bytes(public: dict[str, Any], committed: str) -> bytes:
    """A leaf's bytes: the canonical JSON of the public form and the commitment."""
    entry = {"commitment": committed, "event": public, "v": ENTRY_VERSION}
    return json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _head(session: Session, *, lock: bool) -> LogHead:
    query = select(LogHead).where(LogHead.__table__.c.id == 1)  # type: ignore[attr-defined]
    if lock:
        query = query.with_for_update()
    head = session.scalars(query.execution_options(populate_existing=True)).first()
    if head is None:  # the migration makes the row; a database made otherwise gets it here
        head = LogHead(id=1, size=0, root=merkle.EMPTY_ROOT.hex())
        session.add(head)
        session.flush()
    return head


def nodes(connection: Connection, wanted: Iterable[merkle.Key]) -> dict[merkle.Key, bytes]:
    """Stored subtree hashes by (level, index)."""
    out: dict[merkle.Key, bytes] = {}
    for chunk in in_chunks(sorted(set(wanted))):
        where: ColumnElement[bool]
        if connection.dialect.name == "postgresql":
            where = tuple_(NODES.c.level, NODES.c.idx).in_(chunk)
        else:  # level by level: SQLite plans a row-value IN on the composite key as a scan of the table
            by_level: dict[int, list[int]] = {}
            for level, idx in chunk:
                by_level.setdefault(level, []).append(idx)
            where = or_(*(and_(NODES.c.level == level, NODES.c.idx.in_(idxs)) for level, idxs in by_level.items()))
        query = select(NODES.c.level, NODES.c.idx, NODES.c.hash).where(where)
        out.update({(level, idx): bytes.fromhex(h) for level, idx, h in connection.execute(query)})
    return out


def _getter(found: dict[merkle.Key, bytes]) -> Callable[[merkle.Key], bytes]:
    def get(key: merkle.Key) -> bytes:
        try:
            return found[key]
        except KeyError:
            raise RuleViolation(f"The log lacks its node {key}: the tree is damaged", code="log_damaged") from None

    return get


def _pending_rows(connection: Connection, limit: int, chains: bool) -> list[dict[str, Any]]:
    events = render.EVENTS
    order = (events.c.organisation_id, events.c.seq) if chains else (events.c.record_time, events.c.id)
    query = EVENTS_HASHED.join(PENDING, PENDING.c.event_id == events.c.id).order_by(*order).limit(limit)
    return [render.row(r) for r in connection.execute(query).mappings()]


def public_forms(connection: Connection, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each event's public form as the log records it, one per event."""
    facts = render.load(connection, events)
    out = []
    for event in events:
        forms = render.log_forms([event], facts)
        if len(forms) != 1:
            raise RuleViolation(f"Event {event['id']} has no public form", code="log_form_missing")
        out.append(forms[0])
    return out


def sequence(*, session: Session, limit: int = BATCH, chains: bool = False) -> int:
    """Append up to ``limit`` committed events to the tree, in record-time order (``chains``: in their
    chains' order, as the migration appends the events a database held before the log); how many were."""
    head = _head(session, lock=True)  # one sequencer at a time: the next waits here, then sees what this one did
    connection = session.connection()
    pending = _pending_rows(connection, limit, chains)
    if not pending:
        return 0
    ids = [e["id"] for e in pending]
    logged: set[str] = set()
    for chunk in in_chunks(ids):
        logged.update(connection.execute(select(LEAVES.c.event_id).where(LEAVES.c.event_id.in_(chunk))).scalars())
    fresh = [e for e in pending if e["id"] not in logged]  # a restored row already in the tree stays where it is
    size = head.size
    frontier_keys = merkle.frontier_keys(size)
    found = nodes(connection, frontier_keys)
    frontier = [_getter(found)(key) for key in frontier_keys]
    leaves: list[dict[str, Any]] = []
    made_nodes: list[dict[str, Any]] = []
    for event, public in zip(fresh, public_forms(connection, fresh), strict=True):
        salt = secrets.token_hex(16)
        data = entry_bytes(public, commitment(salt, event["chain_hash"]))
        frontier, made = merkle.append(frontier, size, merkle.leaf_hash(data))
        leaves.append({"idx": size, "event_id": event["id"], "entry": data.decode(), "salt": salt})
        made_nodes.extend({"level": level, "idx": idx, "hash": h.hex()} for (level, idx), h in made)
        size += 1
    if leaves:
        connection.execute(insert(LEAVES), leaves)
        connection.execute(insert(NODES), made_nodes)
    for chunk in in_chunks(ids):
        connection.execute(delete(PENDING).where(PENDING.c.event_id.in_(chunk)))
    head.size, head.root = size, merkle.root_from_frontier(frontier).hex()
    session.add(head)
    session.flush()
    return len(leaves)


def tree_head(*, session: Session) -> LogHead:
    """The tree as the sequencer last left it (size and root), read without a lock."""
    return _head(session, lock=False)


def latest(*, session: Session) -> LogCheckpoint | None:
    """The newest signed checkpoint."""
    return session.scalars(select(LogCheckpoint).order_by(CHECKPOINTS.c.size.desc()).limit(1)).first()


def newest(*, session: Session) -> LogCheckpoint:
    """The newest signed checkpoint; NotFound before the first is signed."""
    found = latest(session=session)
    if found is None:
        raise NotFound(
            "The log has no signed checkpoint yet: one is signed within seconds of the first event",
            code="log_checkpoint_not_found",
        )
    return found


def checkpoint_at(*, session: Session, size: int) -> LogCheckpoint:
    """The checkpoint signed at this tree size."""
    found = session.get(LogCheckpoint, size)
    if found is None:
        raise NotFound(f"No checkpoint was signed at tree size {size}", code="log_checkpoint_not_found")
    return found


NEXT_KEY = "hytrace-key "  # a checkpoint's extension line during a rotation: the key that signs from now on


def publish(*, session: Session, signing: keys.Signing, now: datetime | None = None) -> LogCheckpoint | None:
    """Sign a checkpoint of the tree as it stands, unless the newest one already is of this size. During a
    rotation the outgoing key co-signs a checkpoint that announces the new one."""
    head = _head(session, lock=True)
    last = latest(session=session)
    if last is not None and last.size >= head.size:
        return None
    signer, previous = signing.signer, signing.previous
    announced = (NEXT_KEY + signer.verifier_key,) if previous is not None else ()
    text = note.Checkpoint(signing.origin, head.size, bytes.fromhex(head.root), announced).text()
    signers = (signer, previous) if previous is not None else (signer,)
    row = LogCheckpoint(
        size=head.size, root=head.root, note=note.sign(text, *signers), key_name=signer.name, signed_at=now or utcnow()
    )
    session.add(row)
    session.flush()
    return row


def tick(*, session: Session, signing: keys.Signing, limit: int = BATCH) -> int:
    """One round: append what is pending (up to ``limit``) and sign a checkpoint if the tree grew."""
    appended = sequence(session=session, limit=limit)
    publish(session=session, signing=signing)
    return appended


def drain(sessions: Callable[[], AbstractContextManager[Session]], signing: keys.Signing) -> int:
    """Rounds, each in a transaction of its own (a short write lock), until nothing is left; events appended."""
    appended = 0
    while True:
        with sessions() as session:
            done = tick(session=session, signing=signing)
        appended += done
        if done < BATCH:
            return appended


@lru_cache(maxsize=64)
def _verified(signed: str, verifier_keys: tuple[str, ...]) -> note.Checkpoint:
    text, _ = note.open_note(signed, [note.Verifier(k) for k in verifier_keys])
    return note.Checkpoint.parse(text)


def verified(signed: str, verifiers: Sequence[note.Verifier]) -> note.Checkpoint:
    """A signed checkpoint's body, its signature checked (NoteError if none of ``verifiers`` signed it).
    A checkpoint's note never changes: each is verified once per process and set of keys."""
    return _verified(signed, tuple(v.key for v in verifiers))


def published(*, session: Session, checkpoint: LogCheckpoint) -> str:
    """A checkpoint as it is published: its signed note and the witnesses' cosignature lines."""
    return checkpoint.note + "".join(c.line for c in cosignatures(session=session, size=checkpoint.size))


def _published_size(session: Session, size: int | None) -> int:
    published = newest(session=session).size
    if size is None:
        return published
    if size < 0 or size > published:
        raise RuleViolation(
            f"Tree size {size} is not published: the newest checkpoint is of size {published}",
            code="log_size_unpublished",
        )
    return size


@dataclass(frozen=True)
class Inclusion:
    """An event's place in the tree and the audit path that proves it in a tree of ``size`` leaves."""

    event_id: str
    index: int
    size: int
    entry: str
    proof: list[bytes]

    @property
    def leaf_hash(self) -> bytes:
        """The leaf's hash (RFC 9162: SHA-256 of 0x00 and the entry)."""
        return merkle.leaf_hash(self.entry.encode())


def find_leaf(*, session: Session, event: str) -> LogLeaf:
    """The leaf of an event named by our id or its EPCIS eventID."""
    connection = session.connection()
    event_id = event
    if event.startswith("ni:") or event.startswith("urn:uuid:"):
        found = connection.execute(select(IDS.c.event_id).where(IDS.c.epcis_id == event)).scalar()
        if found is None:
            raise NotFound(f"No event has the EPCIS id {event}", code="log_event_not_found")
        event_id = found
    leaf = session.scalars(select(LogLeaf).where(LEAVES.c.event_id == event_id)).first()
    if leaf is None:
        raise NotFound(
            f"Event {event} is not in the log (yet: events are appended within seconds)", code="log_event_not_found"
        )
    return leaf


def inclusion(*, session: Session, event: str, size: int | None = None) -> Inclusion:
    """The proof that an event's leaf is in the published tree of ``size`` leaves (the newest by default)."""
    leaf = find_leaf(session=session, event=event)
    tree_size = _published_size(session, size)
    if leaf.idx >= tree_size:
        raise RuleViolation(
            f"Event {event} is leaf {leaf.idx}, after the tree of {tree_size} leaves: ask for a newer checkpoint",
            code="log_not_yet_included",
        )
    ranges = merkle.inclusion_ranges(leaf.idx, tree_size)
    found = nodes(session.connection(), merkle.keys_of(ranges))
    return Inclusion(leaf.event_id, leaf.idx, tree_size, leaf.entry, merkle.hashes_of(ranges, _getter(found)))


def consistency(*, session: Session, first: int, second: int | None = None) -> tuple[int, int, list[bytes]]:
    """(first, second, the proof that the published tree of ``first`` leaves is a prefix of ``second``)."""
    second = _published_size(session, second)
    if first < 0 or first > second:
        raise RuleViolation(f"Tree size {first} cannot be proved a prefix of {second}", code="log_bad_sizes")
    ranges = merkle.consistency_ranges(first, second)
    found = nodes(session.connection(), merkle.keys_of(ranges))
    return first, second, merkle.hashes_of(ranges, _getter(found))


def entries(*, session: Session, start: int, end: int) -> list[str]:
    """The entries of leaves [start, end) of the published tree (at most ``MAX_ENTRIES``)."""
    size = _published_size(session, None)
    if start < 0 or end <= start:
        raise RuleViolation("Ask for leaves start ≤ i < end with start < end", code="log_bad_range")
    end = min(end, size, start + MAX_ENTRIES)
    if start >= end:
        raise RuleViolation(f"Leaf {start} is not in the published tree of {size} leaves", code="log_bad_range")
    query = select(LEAVES.c.entry).where(LEAVES.c.idx >= start, LEAVES.c.idx < end).order_by(LEAVES.c.idx)
    return list(session.connection().execute(query).scalars())


def cosignatures(*, session: Session, size: int) -> list[LogCosignature]:
    """The witnesses' cosignatures received for the checkpoint of this size."""
    table = LogCosignature.__table__  # type: ignore[attr-defined]
    return list(session.scalars(select(LogCosignature).where(table.c.size == size).order_by(table.c.witness)))


TILE_HEIGHT = 8  # C2SP tlog-tiles: a tile holds 2**8 = 256 hashes of one level of the tree
TILE_WIDTH = 1 << TILE_HEIGHT


def _tile_range(level: int, index: int, width: int | None, available: int) -> tuple[int, int]:
    """The node (or leaf) indices [start, end) of tile ``index`` (``width`` None: a full tile), or NotFound."""
    start = index * TILE_WIDTH
    want = TILE_WIDTH if width is None else width
    if not 1 <= want <= TILE_WIDTH or (width is not None and width == TILE_WIDTH):
        raise RuleViolation("A partial tile's width is 1 to 255", code="log_bad_tile")
    if start + want > available:
        raise NotFound(f"Tile {level}/{index} of width {want} is not in the published tree", code="log_tile_not_found")
    return start, start + want


def tile(*, session: Session, level: int, index: int, width: int | None = None) -> bytes:
    """C2SP tlog-tiles: the hashes of nodes ``index * 256 …`` at height ``8 * level`` of the published tree."""
    size = _published_size(session, None)
    height = level * TILE_HEIGHT
    if level < 0 or height >= 64:
        raise NotFound(f"No tile at level {level}", code="log_tile_not_found")
    start, end = _tile_range(level, index, width, size >> height)
    query = (
        select(NODES.c.hash)
        .where(NODES.c.level == height, NODES.c.idx >= start, NODES.c.idx < end)
        .order_by(NODES.c.idx)
    )
    hashes = [bytes.fromhex(h) for h in session.connection().execute(query).scalars()]
    if len(hashes) != end - start:
        raise RuleViolation("The log lacks nodes of this tile: the tree is damaged", code="log_damaged")
    return b"".join(hashes)


def entry_bundle(*, session: Session, index: int, width: int | None = None) -> bytes:
    """C2SP tlog-tiles: leaves ``index * 256 …`` of the published tree, each a big-endian uint16 length and
    the entry's bytes."""
    size = _published_size(session, None)
    start, end = _tile_range(0, index, width, size)
    query = select(LEAVES.c.entry).where(LEAVES.c.idx >= start, LEAVES.c.idx < end).order_by(LEAVES.c.idx)
    out = bytearray()
    for entry in session.connection().execute(query).scalars():
        data = entry.encode()
        if len(data) > 0xFFFF:
            raise RuleViolation("An entry of this tile is too large for an entry bundle", code="log_damaged")
        out += len(data).to_bytes(2, "big") + data
    return bytes(out)


def tile_path(index: int, width: int | None = None) -> str:
    """A tile index as C2SP tlog-tiles writes it in a path: ``1234067`` → ``x001/x234/067`` (``.p/W``)."""
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    path = "/".join([*("x" + g for g in groups[:-1]), groups[-1]])
    return path + (f".p/{width}" if width is not None else "")


def parse_tile_path(path: str) -> tuple[int, int | None]:
    """The inverse of :func:`tile_path`, refusing any other spelling of the same tile."""
    match = re.fullmatch(r"((?:x\d{3}/)*\d{3})(?:\.p/(\d{1,3}))?", path)
    if match is None:
        raise RuleViolation(f"Not a tile path: {path[:60]!r} (x001/x234/067, or with .p/W)", code="log_bad_tile")
    index = int(match.group(1).replace("x", "").replace("/", ""))
    width = int(match.group(2)) if match.group(2) is not None else None
    if tile_path(index, width) != path:
        raise RuleViolation(f"Not the canonical path of tile {index}: {tile_path(index, width)}", code="log_bad_tile")
    return index, width


MAX_COSIGNED_NOTE = 16 * 1024  # a checkpoint and a few dozen signature lines
FUTURE_SECONDS = 300  # a witness's clock may run ahead this much


def add_cosignatures(
    *, session: Session, cosigned: str, witnesses: Sequence[note.Verifier], now: datetime | None = None
) -> list[LogCosignature]:
    """Keep the cosignatures a checkpoint note carries from the witnesses the log accepts; those kept."""
    if len(cosigned.encode()) > MAX_COSIGNED_NOTE:
        raise RuleViolation(f"A cosigned checkpoint is at most {MAX_COSIGNED_NOTE} bytes", code="log_note_too_large")
    try:
        text, signatures = note.split(cosigned)
        body = note.Checkpoint.parse(text)
    except note.NoteError as error:
        raise RuleViolation(f"Not a cosigned checkpoint: {error}", code="log_note_malformed") from None
    stored = session.get(LogCheckpoint, body.size)
    if stored is None or note.split(stored.note)[0] != text:
        raise RuleViolation(
            f"The log never signed this checkpoint of {body.size} leaves", code="log_checkpoint_not_ours"
        )
    moment = now or utcnow()
    known = {(w.name, w.key_hash): w for w in witnesses}
    kept: list[LogCosignature] = []
    for signature in signatures:
        witness = known.get((signature.name, signature.key_hash))
        if witness is None:
            continue  # the log's own signature, or a witness this log does not know
        timestamp = note.verify_cosignature(text, signature.line, witness)
        if timestamp is None:
            raise RuleViolation(f"The cosignature by {witness.name} does not verify", code="log_cosignature_bad")
        if timestamp > moment.timestamp() + FUTURE_SECONDS:
            raise RuleViolation(f"The cosignature by {witness.name} is dated in the future", code="log_cosignature_bad")
        table = LogCosignature.__table__  # type: ignore[attr-defined]
        query = select(LogCosignature).where(table.c.size == body.size, table.c.witness == witness.name)
        existing = session.scalars(query).first()
        if existing is None:
            row = LogCosignature(
                size=body.size, witness=witness.name, line=signature.line, timestamp=timestamp, received_at=moment
            )
            try:
                with session.begin_nested():  # a witness sending twice at once: the first is kept
                    session.add(row)
            except IntegrityError:
                row = session.scalars(query).one()
            existing = row
        kept.append(existing)
    if not kept:
        raise RuleViolation("No witness this log accepts cosigned this checkpoint", code="log_cosignature_unknown")
    return kept
