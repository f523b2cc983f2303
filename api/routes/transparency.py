"""The public transparency log, read-only and open to anybody (rate-limited like every public path).

The checkpoint is served as C2SP tlog-checkpoint text (a signed note, with the witnesses' cosignature lines);
proofs and entries as JSON with hashes in standard base64, as C2SP and RFC 9162 clients expect.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as FastPath
from sqlmodel import Field, SQLModel

from api.deps import SessionDep
from api.problems import problem
from trace.errors import RuleViolation
from trace.platform.config import get_settings
from trace.transparency import keys, log

router = APIRouter(prefix="/log", tags=["transparency log"])
NOTE = "text/plain; charset=utf-8"
FRESH = "public, max-age=2"  # a new checkpoint every few seconds while events arrive
SETTLED = "public, max-age=31536000, immutable"  # a proof or an entry of a published tree never changes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class LogKey(SQLModel):
    """How to check the log: its origin, the key its checkpoints are signed with, the witnesses it accepts."""

    origin: str
    verifier_key: str = Field(description="signed-note verifier key (Ed25519): pin it")
    previous_keys: list[str] = Field(description="earlier keys: checkpoints signed before a rotation")
    witnesses: list[str] = Field(description="verifier keys (cosignature/v1) of the witnesses whose cosignatures count")


class InclusionProof(SQLModel):
    """RFC 9162 §2.1.3: the audit path of an event's leaf in the tree of ``tree_size`` leaves."""

    event_id: str
    leaf_index: int
    tree_size: int
    entry: str = Field(description="the leaf's exact bytes (UTF-8 JSON): the event's public form and a commitment")
    leaf_hash: str = Field(description="SHA-256(0x00 || entry), base64")
    proof: list[str] = Field(description="the audit path, bottom first, base64")
    checkpoint: str = Field(description="the signed checkpoint of tree_size, with its cosignatures")


class ConsistencyProof(SQLModel):
    """RFC 9162 §2.1.4: the tree of ``first`` leaves is a prefix of the tree of ``second``."""

    first: int
    second: int
    proof: list[str] = Field(description="base64")


class Entries(SQLModel):
    """Consecutive leaves of the published tree."""

    start: int
    entries: list[str]


@router.get("/checkpoint", response_class=Response, responses={200: {"content": {NOTE: {}}}})
def checkpoint(session: SessionDep) -> Response:
    """The newest signed checkpoint (C2SP tlog-checkpoint) with the cosignatures received for it."""
    newest = log.newest(session=session)
    body = log.published(session=session, checkpoint=newest)
    return Response(body, media_type=NOTE, headers={"Cache-Control": FRESH})


@router.get("/checkpoints/{size}", response_class=Response, responses={200: {"content": {NOTE: {}}}})
def checkpoint_at(session: SessionDep, size: int) -> Response:
    """The checkpoint signed at this tree size (every one stays published)."""
    found = log.checkpoint_at(session=session, size=size)
    body = log.published(session=session, checkpoint=found)
    return Response(body, media_type=NOTE, headers={"Cache-Control": "public, max-age=60"})


@router.get("/key")
def key() -> LogKey:
    """The log's origin and keys, to pin in a verifier (``python -m trace.logcheck``)."""
    settings = get_settings()
    verifiers = keys.verifiers(settings)
    return LogKey(
        origin=settings.log_origin,
        verifier_key=verifiers[0].key,
        previous_keys=[v.key for v in verifiers[1:]],
        witnesses=[w.key for w in keys.witnesses(settings)],
    )


@router.get("/proof/inclusion")
def inclusion(
    session: SessionDep,
    response: Response,
    event: Annotated[str, Query(min_length=1, max_length=200, description="our event id or its EPCIS eventID")],
    size: Annotated[int | None, Query(ge=0, description="a published tree size (default: the newest)")] = None,
) -> InclusionProof:
    """The proof that an event is in the signed tree."""
    found = log.inclusion(session=session, event=event, size=size)
    signed = log.checkpoint_at(session=session, size=found.size)
    response.headers["Cache-Control"] = SETTLED if size is not None else FRESH
    return InclusionProof(
        event_id=found.event_id,
        leaf_index=found.index,
        tree_size=found.size,
        entry=found.entry,
        leaf_hash=_b64(found.leaf_hash),
        proof=[_b64(h) for h in found.proof],
        checkpoint=log.published(session=session, checkpoint=signed),
    )


@router.get("/proof/consistency")
def consistency(
    session: SessionDep,
    response: Response,
    first: Annotated[int, Query(ge=0, description="the older tree size")],
    second: Annotated[int | None, Query(ge=0, description="the newer tree size (default: the newest)")] = None,
) -> ConsistencyProof:
    """The proof that the older tree is a prefix of the newer one (an append-only log)."""
    old, new, proof = log.consistency(session=session, first=first, second=second)
    response.headers["Cache-Control"] = SETTLED if second is not None else FRESH
    return ConsistencyProof(first=old, second=new, proof=[_b64(h) for h in proof])


class Cosigned(SQLModel):
    """The cosignatures kept for a checkpoint from this note."""

    tree_size: int
    witnesses: list[str]


async def cosigned_note(request: Request) -> str | None:
    """The request's body as a signed note (None: not text/plain), read before a connection is held."""
    if not request.headers.get("content-type", "").startswith("text/plain"):
        return None
    try:
        return (await request.body()).decode()
    except UnicodeDecodeError:
        raise RuleViolation("A signed note is UTF-8 text", code="log_note_malformed") from None


@router.post(
    "/cosignatures",
    openapi_extra={"requestBody": {"required": True, "content": {NOTE: {"schema": {"type": "string"}}}}},
    response_model=Cosigned,
    responses={415: {"description": "Not text/plain"}},
)
def add_cosignatures(
    cosigned: Annotated[str | None, Depends(cosigned_note)], session: SessionDep, request: Request
) -> Cosigned | Response:
    """A witness sends back a checkpoint it checked, with its cosignature line (C2SP tlog-cosignature)."""
    if cosigned is None:
        return problem(415, "Send the cosigned checkpoint as text/plain", "unsupported_media_type", request.url.path)
    witnesses = keys.witnesses(get_settings())
    kept = log.add_cosignatures(session=session, cosigned=cosigned, witnesses=witnesses)
    return Cosigned(tree_size=kept[0].size, witnesses=[k.witness for k in kept])


TILE = "application/octet-stream"


@router.get("/tile/entries/{path:path}", response_class=Response, responses={200: {"content": {TILE: {}}}})
def entry_bundle(session: SessionDep, path: str) -> Response:
    """C2SP tlog-tiles entry bundle: 256 leaves (or W with ``.p/W``), each a uint16 length and the entry."""
    index, width = log.parse_tile_path(path)
    body = log.entry_bundle(session=session, index=index, width=width)
    return Response(body, media_type=TILE, headers={"Cache-Control": SETTLED})


@router.get("/tile/{level}/{path:path}", response_class=Response, responses={200: {"content": {TILE: {}}}})
def tile(session: SessionDep, level: Annotated[int, FastPath(ge=0, le=7)], path: str) -> Response:
    """C2SP tlog-tiles hash tile: 256 hashes (or W with ``.p/W``) of one level of the tree (level L: height 8L)."""
    index, width = log.parse_tile_path(path)
    body = log.tile(session=session, level=level, index=index, width=width)
    return Response(body, media_type=TILE, headers={"Cache-Control": SETTLED})


@router.get("/entries")
def entries(
    session: SessionDep,
    response: Response,
    start: Annotated[int, Query(ge=0)],
    end: Annotated[int, Query(ge=1, description=f"exclusive; at most {log.MAX_ENTRIES} leaves a page")],
) -> Entries:
    """Leaves start ≤ i < end of the published tree, as their exact bytes."""
    found = log.entries(session=session, start=start, end=end)
    response.headers["Cache-Control"] = SETTLED if len(found) == end - start else FRESH
    return Entries(start=start, entries=found)
