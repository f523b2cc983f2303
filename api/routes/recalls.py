"""Holds and recalls: stop a lot, recall a lot and its forward trace, notices and recall reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import CurrentActor, DbId, IdempotencyKey, SessionDep
from api.paging import PAGED, Cursor, Offset, announce
from trace.recalls import holds, recall, report
from trace.recalls.models import AffectedLotPublic, HoldPublic, ReasonIn, RecallPublic

router = APIRouter(tags=["recalls"])


@router.post("/lots/{lot_id}/hold", response_model=HoldPublic)
def hold(
    session: SessionDep, actor: CurrentActor, lot_id: DbId, data: ReasonIn, idempotency_key: IdempotencyKey = None
) -> HoldPublic:
    """Put a lot on hold (an inspector, or the lot's producer): it may not move until released."""
    return holds.hold(session=session, actor=actor, lot_id=lot_id, data=data, idempotency_key=idempotency_key)


@router.post("/lots/{lot_id}/release", response_model=HoldPublic)
def release(
    session: SessionDep, actor: CurrentActor, lot_id: DbId, data: ReasonIn, idempotency_key: IdempotencyKey = None
) -> HoldPublic:
    """Lift a hold; a producer may lift only a hold it placed itself."""
    return holds.release(session=session, actor=actor, lot_id=lot_id, data=data, idempotency_key=idempotency_key)


@router.post("/lots/{lot_id}/recall", response_model=RecallPublic)
def recall_lot(
    session: SessionDep, actor: CurrentActor, lot_id: DbId, data: ReasonIn, idempotency_key: IdempotencyKey = None
) -> RecallPublic:
    """Recall a lot and every lot made from it (an authority, or the lot's producer). Recalling a lot
    already reached by a recall changes nothing and answers with that recall."""
    found = recall.recall(session=session, actor=actor, lot_id=lot_id, data=data, idempotency_key=idempotency_key)
    return recall.public(session=session, actor=actor, recalls=[found])[0]


@router.get("/recalls", response_model=list[RecallPublic], responses=PAGED)
def list_(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    cursor: Cursor = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[RecallPublic]:
    """Recalls, newest first: all for inspectors and admins, else those your organisation made or of its lots."""
    found = recall.list_recalls(session=session, actor=actor, cursor=cursor, offset=offset, limit=limit)
    announce(request, response, found)
    return recall.public(session=session, actor=actor, recalls=found)


@router.get("/recalls/affecting-me", response_model=list[AffectedLotPublic], responses=PAGED)
def affecting_me(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    cursor: Cursor = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AffectedLotPublic]:
    """Recalls reaching lots your organisation holds or held, with the lot and how much you hold."""
    found = recall.affecting(session=session, actor=actor, cursor=cursor, offset=offset, limit=limit)
    announce(request, response, found)
    return found


@router.get("/recalls/{recall_id}", response_model=RecallPublic)
def get(session: SessionDep, actor: CurrentActor, recall_id: int) -> RecallPublic:
    """One recall (also for holders of the lots it reached)."""
    found = recall.get_recall(session=session, actor=actor, recall_id=recall_id)
    return recall.public(session=session, actor=actor, recalls=[found])[0]


@router.get(
    "/recalls/{recall_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "Affected lots × holders"}},
)
def report_csv(session: SessionDep, actor: CurrentActor, recall_id: int) -> Response:
    """Every affected lot, its active units and current holders with contact, as CSV."""
    found, rows = report.rows(session=session, actor=actor, recall_id=recall_id)
    return Response(
        report.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="recall-{found.id}.csv"'},
    )


@router.get(
    "/recalls/{recall_id}/report.xlsx",
    response_class=Response,
    responses={200: {"content": {report.XLSX_MEDIA_TYPE: {}}, "description": "Affected lots × holders"}},
)
def report_xlsx(session: SessionDep, actor: CurrentActor, recall_id: int) -> Response:
    """The same report as a sortable spreadsheet (frozen header, filters)."""
    found, rows = report.rows(session=session, actor=actor, recall_id=recall_id)
    return Response(
        report.to_xlsx(rows, title=f"recall-{found.id}"),
        media_type=report.XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="recall-{found.id}.xlsx"'},
    )
