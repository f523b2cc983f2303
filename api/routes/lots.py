"""Lots and their traces (JSON and the FSMA 204 spreadsheet)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import CurrentActor, DbId, SessionDep
from api.paging import PAGED, Cursor, Offset, announce
from trace import lineage, lot_views, lots
from trace.lineage import Direction
from trace.lots import LotStatus

router = APIRouter(prefix="/lots", tags=["lots"])


@router.get("", response_model=list[lots.LotPublic], responses=PAGED)
def list_(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    product_id: int | None = None,
    gtin: Annotated[str | None, Query(max_length=14)] = None,
    status: LotStatus | None = None,
    held: bool = False,
    cursor: Cursor = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[lots.LotPublic]:
    """Lots your organisation produced or holds (``held=true``: only what it holds now)."""
    rows = lots.list_lots(
        session=session,
        actor=actor,
        product_id=product_id,
        gtin=gtin,
        status=status,
        held_only=held,
        cursor=cursor,
        offset=offset,
        limit=limit,
    )
    announce(request, response, rows)
    return [lot_views.to_public(session=session, actor=actor, lot=x) for x in rows]


@router.get("/{lot_id}", response_model=lots.LotPublic)
def get(session: SessionDep, actor: CurrentActor, lot_id: DbId) -> lots.LotPublic:
    """One lot, with who holds how much of it."""
    return lot_views.to_public(
        session=session, actor=actor, lot=lots.visible_lot(session=session, actor=actor, lot_id=lot_id)
    )


@router.get("/{lot_id}/trace", response_model=lineage.Trace)
def trace(
    session: SessionDep, actor: CurrentActor, lot_id: DbId, direction: Direction = Direction.BACKWARD
) -> lineage.Trace:
    """Backward (to the growing areas) or forward (to every descendant and holder) trace."""
    return lineage.trace(session=session, actor=actor, lot_id=lot_id, direction=direction)


@router.get(
    "/{lot_id}/trace.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "FSMA 204 sortable spreadsheet"}},
)
def trace_csv(
    session: SessionDep, actor: CurrentActor, lot_id: DbId, direction: Direction = Direction.BACKWARD
) -> Response:
    """The trace as CSV with the FSMA 204 key data elements per critical tracking event."""
    body = lineage.fsma_csv(session=session, actor=actor, lot_id=lot_id, direction=direction)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="lot-{lot_id}-{direction}.csv"'},
    )
