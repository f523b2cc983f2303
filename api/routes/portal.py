"""The national traceability portal's pulls: four incremental feeds, the ZIP file, read-only keys."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import SQLModel

from api.deps import CurrentActor, SessionDep
from trace import auth, portal
from trace.platform.timeutil import utcnow

router = APIRouter(prefix="/portal", tags=["national portal"])
Feed = Literal["products", "organisations", "locations", "trace-codes"]
SPOOL_BYTES = 8 * 1024 * 1024  # a larger export goes to a temporary file, not memory
CHUNK = 64 * 1024


class PortalPage(SQLModel):
    feed: str
    items: list[dict[str, str]]
    cursor: str | None = None  # keep it: the next pull resumes here, even when nothing more is there now
    next: str | None = None  # the next page's URL while more rows are waiting


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    with file:
        file.seek(0)
        while chunk := file.read(CHUNK):
            yield chunk


@router.get(
    "/export.zip",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "CSV files and manifest.json"}},
)
def export(
    session: SessionDep, actor: CurrentActor, since: datetime | None = None, until: datetime | None = None
) -> StreamingResponse:
    """Everything changed (recorded) in [since, until] as one ZIP of CSV files with a manifest."""
    generated = utcnow()
    chunks = portal.export_zip(session=session, actor=actor, since=since, until=until, now=generated)
    # Written out while the request's session is open, then sent from the file: the database
    # connection is not held for as long as a slow client takes to download.
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # closed by _chunks
    try:
        for chunk in chunks:
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    name = portal.filename(generated)
    return StreamingResponse(
        _chunks(spool), media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.post("/keys", status_code=201, response_model=auth.ApiKeyIssued)
def issue_key(session: SessionDep, actor: CurrentActor, data: portal.PortalKeyCreate) -> auth.ApiKeyIssued:
    """Issue a read-only portal key to an authority organisation (province admin; shown once)."""
    return portal.issue_portal_key(session=session, actor=actor, data=data)


@router.get("/{feed}", response_model=PortalPage)
def feed(
    request: Request,
    session: SessionDep,
    actor: CurrentActor,
    feed: Feed,
    since: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=portal.feed.MAX_LIMIT)] = 500,
) -> PortalPage:
    """One page of a feed, oldest change first; follow ``next``, keep ``cursor`` for the next pull."""
    page = portal.page(session=session, actor=actor, feed=feed, since=since, cursor=cursor, limit=limit)
    following = None
    if page.more and page.cursor:
        following = str(request.url.remove_query_params("cursor").include_query_params(cursor=page.cursor))
    return PortalPage(feed=page.feed, items=page.items, cursor=page.cursor, next=following)
