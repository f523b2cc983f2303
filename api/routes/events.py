"""Recording events (one endpoint per kind, plus batches) and querying the log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import Field, ValidationError
from sqlmodel import SQLModel

from api.deps import CurrentActor, IdempotencyKey, SessionDep
from api.paging import PAGED, Cursor, Offset, announce
from trace.errors import InvalidIdentifier, RuleViolation
from trace.events import query
from trace.events.ledger import INPUT_OF, capture
from trace.events.models import EventType
from trace.events.schemas import CaptureResult, EventPublic

router = APIRouter(prefix="/events", tags=["events"])
Prefer = Annotated[
    str | None, Header(max_length=200, description="`return=minimal` answers with event ids only (RFC 7240)")
]


def _minimal(prefer: str | None) -> bool:
    """RFC 7240 ``Prefer: return=minimal``: answer with ids, not the recorded events."""
    return prefer is not None and "return=minimal" in prefer.replace(" ", "").lower()


def _answer(result: CaptureResult, minimal: bool) -> Response:
    # Serialised once, straight from the domain's model: FastAPI would validate 500 events again.
    headers = {"Preference-Applied": "return=minimal"} if minimal else None
    return Response(result.model_dump_json(), status_code=201, media_type="application/json", headers=headers)


# One endpoint per kind the domain records, each path written out so that searching for it finds it.
# tests/api/test_events.py checks the table names every kind in INPUT_OF, at /{kind}.
RECORDED: tuple[tuple[str, EventType, str], ...] = (
    ("/harvest", EventType.HARVEST, "Record a harvest: a new lot at a growing area, with the inputs used"),
    ("/ship", EventType.SHIP, "Ship (part of) a lot you hold to another organisation"),
    ("/receive", EventType.RECEIVE, "Receive a shipment addressed to your organisation"),
    ("/transform", EventType.TRANSFORM, "Transform input lots into new output lots"),
    ("/commission", EventType.COMMISSION, "Register units (random serials) of a lot you hold"),
    ("/pack", EventType.PACK, "Pack known units into a carton or pallet"),
    ("/sell", EventType.SELL, "Record a retail sale"),
    ("/store", EventType.STORE, "Record storage at one of your locations"),
    ("/inspect", EventType.INSPECT, "Record an inspection"),
    ("/loss", EventType.LOSS, "Write off spoilage, damage or samples"),
    ("/correction", EventType.CORRECTION, "Declare one of your events erroneous (its effects are reversed)"),
    ("/decommission", EventType.DECOMMISSION, "Void printed label codes (a damaged sheet, a lost roll) with a reason"),
)


def _record(path: str, kind: EventType, summary: str) -> None:
    """Declare ``POST /events{path}``: record one event of ``kind`` from its domain input model."""

    def endpoint(
        session: SessionDep,
        actor: CurrentActor,
        data: Any,
        idempotency_key: IdempotencyKey = None,
        prefer: Prefer = None,
    ) -> Response:
        minimal = _minimal(prefer)
        return _answer(
            capture(
                session=session, actor=actor, items=[(kind, data)], idempotency_key=idempotency_key, minimal=minimal
            ),
            minimal,
        )

    # The body's model is the kind's input (FastAPI reads it from the annotation).
    endpoint.__annotations__["data"] = INPUT_OF[kind]
    endpoint.__doc__ = summary
    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        status_code=201,
        response_model=CaptureResult,
        name=f"record_{kind.value}",
        summary=summary,
    )


for _path, _kind, _summary in RECORDED:
    _record(_path, _kind, _summary)


class BatchItem(SQLModel):
    type: EventType
    data: dict[str, Any]


class BatchIn(SQLModel):
    events: list[BatchItem] = Field(min_length=1, max_length=1000)


@router.post("/batch", status_code=201, response_model=CaptureResult)
def record_batch(
    session: SessionDep,
    actor: CurrentActor,
    data: BatchIn,
    idempotency_key: IdempotencyKey = None,
    prefer: Prefer = None,
) -> Response:
    """Record up to 1,000 events in one transaction: all are stored, or none (the error names the index)."""
    items = []
    for index, item in enumerate(data.events):
        if item.type not in INPUT_OF:
            # Rights, holds and recalls have their own endpoints and rules.
            raise RuleViolation(
                f"Events of type {item.type.value} are not recorded through /events", code="not_capturable"
            ).at_index(index)
        try:
            items.append((item.type, INPUT_OF[item.type].model_validate(item.data)))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise RuleViolation(
                f"{where}: {first['msg']}" if where else first["msg"],
                code="validation_error",
                errors=[{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()],
            ).at_index(index) from None
        except InvalidIdentifier as error:
            # Identifier validators (lot codes) raise the domain error itself, not a ValidationError.
            raise error.at_index(index) from None
    minimal = _minimal(prefer)
    return _answer(
        capture(session=session, actor=actor, items=items, idempotency_key=idempotency_key, minimal=minimal), minimal
    )


@router.get("", response_model=list[EventPublic], responses=PAGED)
def list_(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: CurrentActor,
    eventType: EventType | None = None,  # noqa: N803 - EPCIS names
    EQ_bizStep: Annotated[str | None, Query(max_length=100)] = None,  # noqa: N803
    lot_id: int | None = None,
    product_id: int | None = None,
    organisation_id: int | None = None,
    GE_eventTime: datetime | None = None,  # noqa: N803
    LT_eventTime: datetime | None = None,  # noqa: N803
    cursor: Cursor = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[EventPublic]:
    """Query the log with EPCIS-style parameters; your own events, or every event of a lot you are involved with."""
    found = query.list_events(
        session=session,
        actor=actor,
        event_type=eventType,
        biz_step=EQ_bizStep,
        lot_id=lot_id,
        product_id=product_id,
        organisation_id=organisation_id,
        ge_event_time=GE_eventTime,
        lt_event_time=LT_eventTime,
        cursor=cursor,
        offset=offset,
        limit=limit,
    )
    announce(request, response, found)
    return found


@router.get("/{event_id}", response_model=EventPublic)
def get(session: SessionDep, actor: CurrentActor, event_id: str) -> EventPublic:
    """One event."""
    return query.get_event(session=session, actor=actor, event_id=event_id)
