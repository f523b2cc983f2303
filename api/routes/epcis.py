"""GS1 EPCIS 2.0 REST binding (the parts hytrace answers), mounted at ``/epcis``; bodies are
``application/ld+json``, errors RFC 9457 problem+json.

- ``POST /epcis/capture``: an EPCISDocument, recorded synchronously and all or nothing (GS1's binding
  answers 202 with a capture job; documents within the size limit are small enough to answer at once):
  201 with the events' ids; 200 with ``replayed`` for a document sent again; 409 ``duplicate_events``
  naming the events already recorded when a document mixes new and known ones (``?duplicates=skip``
  records the new ones and skips the rest); 422 naming the JSON pointer and reason of each schema
  error, or the rule or unknown URI; 413 beyond ``HYTRACE_EPCIS_MAX_BODY_BYTES``.
- ``GET /epcis/events``: EPCIS query parameters (below), oldest first, ``perPage`` and ``nextPageToken``
  (the next page's URL is in the ``Link`` header, ``rel="next"``).
- ``GET /epcis/events/{eventID}``: one event (URL-encode the id), with ``errorDeclaration`` if declared erroneous.
- ``GET /epcis/lots/{lot_id}/events``: a lot's whole chain (ancestors and descendants) as an EPCISDocument.
- ``GET /epcis/eventTypes``: the event types we record.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import CurrentActor, DbId, SessionDep
from api.problems import PROBLEM_CONTENT, problem
from trace.epcis import document
from trace.epcis import query as epcis_query
from trace.epcis.capture import capture_document

LD = document.MEDIA_TYPE


class LDResponse(Response):
    """JSON-LD (EPCIS documents and events)."""

    media_type = LD


def _doc(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {LD: {"schema": {"type": "object"}}}}}


router = APIRouter(prefix="/epcis", tags=["epcis"], default_response_class=LDResponse)
Listed = Annotated[str | None, Query(max_length=2000)]
CAPTURED = {
    "type": "object",
    "properties": {
        "eventIDs": {"type": "array", "items": {"type": "string"}},
        "recorded": {"type": "integer"},
        "corrections": {"type": "integer"},
        "skipped": {"type": "array", "items": {"type": "string"}},
        "replayed": {"type": "boolean"},
    },
}


def _ld(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(text, status_code=status, media_type=LD, headers=headers)


def _split(value: str | None) -> list[str]:
    """EPCIS list parameters: comma-separated (``|`` also accepted, as in the 1.x query language)."""
    if not value:
        return []
    return [v.strip() for v in value.replace("|", ",").split(",") if v.strip()]


@router.post(
    "/capture",
    status_code=201,
    summary="Capture an EPCIS 2.0 document (all or nothing)",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {LD: {"schema": {"type": "object"}}, "application/json": {"schema": {"type": "object"}}},
        }
    },
    responses={
        201: {
            "description": "Recorded: the events' EPCIS ids, in the document's order",
            "content": {"application/json": {"schema": CAPTURED}},
        },
        200: {
            "description": "The same document again: nothing stored, the same ids",
            "content": {"application/json": {"schema": CAPTURED}},
        },
        400: {"description": "The body is not JSON", "content": PROBLEM_CONTENT},
        413: {"description": "The document is larger than the limit", "content": PROBLEM_CONTENT},
    },
)
async def capture(
    request: Request, session: SessionDep, actor: CurrentActor, duplicates: Literal["refuse", "skip"] = "refuse"
) -> Response:
    """Record an EPCISDocument's events synchronously, all or nothing (GS1's binding answers 202 with a
    capture job; documents within the size limit are recorded at once).

    Each event is checked against GS1's EPCIS 2.0 JSON schema (formats included) and our rules; the
    places, lots, products and parties it names must be known (GS1 keys, or the URIs our exports use).
    What is captured: harvests and other commissioning of lots, shipping, receiving, transformations,
    storing, selling, inspections and losses; commissioning of serialised units (an ``epcList`` of unit
    Digital Links: those exact serials, with human codes of our own) and packing them (AggregationEvent
    ADD). Decommissioning, holds and recalls are not taken from other systems (422 ``not_capturable``).
    An event keeps its ``eventID`` (or gets its CBV 2.0 hash id). Answers: **201** with the events' ids in
    the document's order; **200** with ``replayed`` when every event is already recorded (a document sent
    again: nothing is stored twice); **409** ``duplicate_events`` naming the events already recorded when a
    document mixes new and known ones, nothing stored (``?duplicates=skip`` records the new ones and lists
    the others in ``skipped``); an event carrying ``errorDeclaration`` for an event we hold is recorded as
    the correction of that event; **422** with the JSON pointer and reason of each schema error
    (``errors``), or the broken rule or unknown URI, naming the event (``index``); **413** beyond
    ``HYTRACE_EPCIS_MAX_BODY_BYTES``.
    """
    # The body guard (api/bodyguard.py) has refused a body past the limit or nested too deep to parse.
    body = await request.body()
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        return problem(400, f"The body is not JSON: {error}", "not_json", request.url.path)
    from starlette.concurrency import run_in_threadpool

    outcome = await run_in_threadpool(
        lambda: capture_document(session=session, actor=actor, document=data, duplicates=duplicates)
    )
    answer = {
        "eventIDs": outcome.event_ids,
        "recorded": outcome.recorded,
        "corrections": outcome.corrections,
        "skipped": outcome.skipped,
        "replayed": outcome.replayed,
    }
    return Response(json.dumps(answer), status_code=200 if outcome.replayed else 201, media_type="application/json")


@router.get(
    "/events", summary="Query events (EPCIS 2.0 query parameters)", responses=_doc("An EPCISDocument of one page")
)
def events(
    request: Request,
    session: SessionDep,
    actor: CurrentActor,
    eventType: Listed = None,  # noqa: N803 - EPCIS names
    GE_eventTime: datetime | None = None,  # noqa: N803 - EPCIS names
    LT_eventTime: datetime | None = None,  # noqa: N803 - EPCIS names
    EQ_bizStep: Listed = None,  # noqa: N803 - EPCIS names
    EQ_bizLocation: Listed = None,  # noqa: N803 - EPCIS names
    MATCH_epc: Listed = None,  # noqa: N803 - EPCIS names
    MATCH_anyEPC: Listed = None,  # noqa: N803 - EPCIS names
    MATCH_epcClass: Listed = None,  # noqa: N803 - EPCIS names
    perPage: Annotated[int, Query(ge=1, le=1000)] = 100,  # noqa: N803 - EPCIS names
    nextPageToken: Annotated[str | None, Query(max_length=500)] = None,  # noqa: N803 - EPCIS names
) -> Response:
    """Your events (or every event of a lot you are involved with, when ``MATCH_epcClass`` names it), oldest
    first, as an EPCISDocument. Lists are comma-separated. ``MATCH_epc`` / ``MATCH_anyEPC`` with a unit's URI
    match the commissioning, packing and decommissioning events of its lot (our lot-level events name no
    unit); ``MATCH_epcClass`` (and ``MATCH_anyEPC``) with a lot's class match every event on the lot. The next
    page's URL is in the ``Link`` header (``rel="next"``), with an opaque ``nextPageToken``."""
    params = epcis_query.Params(
        event_types=_split(eventType),
        ge_event_time=GE_eventTime,
        lt_event_time=LT_eventTime,
        biz_steps=_split(EQ_bizStep),
        biz_locations=_split(EQ_bizLocation),
        match_epc=_split(MATCH_epc),
        match_any_epc=_split(MATCH_anyEPC),
        match_epc_class=_split(MATCH_epcClass),
        per_page=perPage,
        next_page_token=nextPageToken,
    )
    page = epcis_query.query_events(session=session, actor=actor, params=params)
    headers = {}
    if page.next_page_token:
        wanted = [(k, v) for k, v in request.query_params.multi_items() if k != "nextPageToken"]
        url = f"{request.url.path}?{urlencode([*wanted, ('nextPageToken', page.next_page_token)])}"
        headers["Link"] = f'<{url}>; rel="next"'
    return _ld(document.document(page.events), headers=headers)


@router.get(
    "/events/{event_id:path}",
    summary="One event by its EPCIS eventID (URL-encoded)",
    responses=_doc("The event (JSON-LD)"),
)
def event(session: SessionDep, actor: CurrentActor, event_id: str) -> Response:
    """The event, as JSON-LD."""
    return _ld(epcis_query.get_event(session=session, actor=actor, epcis_id=event_id))


@router.get("/eventTypes", summary="The EPCIS event types recorded here", responses=_doc("The event types"))
def event_types(actor: CurrentActor) -> Response:
    """EPCIS event types hytrace records."""
    return _ld({"@context": document.CONTEXT, "member": ["ObjectEvent", "AggregationEvent", "TransformationEvent"]})


@router.get(
    "/lots/{lot_id}/events",
    summary="A lot's whole chain as an EPCISDocument",
    responses=_doc("An EPCISDocument of every event of the chain"),
)
def lot_events(session: SessionDep, actor: CurrentActor, lot_id: DbId) -> Response:
    """Every event of the lot, its ancestors and its descendants, oldest first."""
    return _ld(b"".join(document.stream(epcis_query.lot_chain(session=session, actor=actor, lot_id=lot_id))))
