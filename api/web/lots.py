"""Workspace pages: a lot, its trace forward and backward as a tree and a timeline, and the trace as
CSV and XLSX. Who may see what is decided in trace/ (the same calls as ``/api/v1/lots``); a lot of
another organisation is answered with the same 404 as one that does not exist."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.deps import DbId, SessionDep
from api.web.context import N_, Member, Visitor, render
from api.web.forms import refusing
from trace import certifications, lineage, locations, lot_views, lots, products
from trace.access import Actor
from trace.lineage import Direction, Trace, TraceLot
from trace.organisations import party_names
from trace.platform.timeutil import localise
from trace.recalls.report import XLSX_MEDIA_TYPE

router = APIRouter(include_in_schema=False)

# Why a designation claim does not hold, by the domain's code, in words for people (translated).
CLAIM_PROBLEMS: dict[str, str] = {
    "no_right": N_("the producer has no right to use it"),
    "right_revoked": N_("the right to use it was revoked"),
    "right_suspended": N_("the right to use it is suspended"),
    "right_not_yet_valid": N_("the right to use it was not yet valid"),
    "right_expired": N_("the right to use it had expired"),
    "product_not_in_right": N_("the right does not cover this product"),
    "area_not_in_right": N_("the right does not cover this growing area"),
    "area_outside": N_("the growing area is outside the protected area"),
    "area_unknown_former_commune": N_("the growing area's former commune is not recorded"),
}
_refusing = refusing()  # trace/'s NotFound, wherever raised: the one refusal page


@router.get("/app/lots/{lot_id}", response_class=HTMLResponse)
@_refusing
def lot_page(request: Request, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """One lot: what it is, who holds it, its designations and certificates, and what can be done with it."""
    actor = who.actor
    lot = lots.visible_lot(session=session, actor=actor, lot_id=lot_id)
    shown = lot_views.to_public(session=session, actor=actor, lot=lot)
    holders = shown.holders or []
    orgs = party_names(
        session=session, ids={lot.producer_organisation_id} | {h.organisation_id for h in holders}, reader=actor
    )
    origin = (
        locations.get_location(session=session, location_id=lot.origin_location_id) if lot.origin_location_id else None
    )
    return render(
        request,
        "app/lots/lot.html",
        who,
        lot=lot,
        shown=shown,
        product=products.get_product(session=session, product_id=lot.product_id),
        organisations=orgs,
        origin=origin,
        holders=holders,
        in_transit=lots.in_transit(session=session, lot_id=lot.id),  # type: ignore[arg-type]
        certificates=certifications.certificates_for_lot(session=session, lot=lot),
        claim_problems=CLAIM_PROBLEMS,
        actions=lots.allowed_actions(session=session, actor=actor, lot=lot),
    )


@dataclass(frozen=True)
class Step:
    """One piece of the tree, rendered in order: ``open``/``close`` a list, an ``item``, ``end`` of an item."""

    kind: str
    lot: TraceLot | None = None
    repeated: bool = False  # already shown higher up (a lot reached by two paths): not expanded again


def tree(found: Trace) -> list[Step]:
    """The trace as nested lists, flattened: backward each lot's inputs under it, forward what was made of it.

    Built without recursion (and rendered without it) so a long chain cannot exhaust the stack.
    """
    by_id = {lot.id: lot for lot in found.lots}
    below: dict[int, list[int]] = defaultdict(list)
    for edge in found.edges:
        upper, lower = (
            (edge.child_lot_id, edge.parent_lot_id)
            if found.direction is Direction.BACKWARD
            else (edge.parent_lot_id, edge.child_lot_id)
        )
        if lower in by_id and lower not in below[upper]:
            below[upper].append(lower)
    steps, seen = [Step("open")], set()
    stack = [iter([found.root_lot_id])]
    while stack:
        lot_id = next(stack[-1], None)
        if lot_id is None:
            stack.pop()
            steps.append(Step("close"))
            if stack:
                steps.append(Step("end"))
            continue
        repeated = lot_id in seen
        seen.add(lot_id)
        steps.append(Step("item", by_id[lot_id], repeated))
        if not repeated and below[lot_id]:
            steps.append(Step("open"))
            stack.append(iter(sorted(below[lot_id])))
        else:
            steps.append(Step("end"))
    return steps


@dataclass(frozen=True)
class Moment:
    """An event of the trace as the timeline shows it."""

    at: datetime
    type: str
    who: str
    where: str | None
    lots: list[dict[str, Any]]
    to: str | None
    source: str | None
    redacted: bool
    inputs: list[dict[str, Any]]
    note: str | None
    documents: list[dict[str, str]]
    corrected: bool


def timeline(session: Session, found: Trace, actor: Actor) -> list[Moment]:
    """The trace's events in time order, with names for organisations (as the actor may see them),
    places and lots (private fields as trace/ left them for the actor)."""
    events = found.events
    orgs = party_names(
        session=session,
        ids={e.organisation_id for e in events}
        | {e.source_organisation_id for e in events}
        | {e.destination_organisation_id for e in events},
        reader=actor,
    )
    places = locations.location_names(session=session, ids={e.location_id for e in events})
    codes = {lot.id: lot.lot_code for lot in found.lots}
    others = {row.lot_id for e in events for row in e.lots} - set(codes)
    codes.update((i, lot.lot_code) for i, lot in lots.lots_by_id(session=session, ids=others).items())
    out = []
    for event in events:
        out.append(
            Moment(
                at=localise(event.event_time, event.event_tz_offset),
                type=event.type.value,
                who=orgs.get(event.organisation_id, ""),
                where=places.get(event.location_id) if event.location_id else None,
                lots=[
                    {
                        "id": row.lot_id,
                        "code": codes.get(row.lot_id, ""),
                        "role": row.role,
                        "quantity": row.quantity,
                        "unit": row.unit,
                    }
                    for row in event.lots
                ],
                to=orgs.get(event.destination_organisation_id) if event.destination_organisation_id else None,
                source=orgs.get(event.source_organisation_id) if event.source_organisation_id else None,
                redacted=event.redacted,
                inputs=[_input(i) for i in event.payload.get("inputs_used") or []],
                note=event.payload.get("note"),
                documents=list(event.biz_transactions or []),
                corrected=event.corrected_by_event_id is not None,
            )
        )
    return out


def _input(used: dict[str, Any]) -> dict[str, Any]:
    """A farming input as stored (JSON), its day as a date for the page to write the local way."""
    try:
        return {**used, "applied_on": date.fromisoformat(used["applied_on"])}
    except (KeyError, TypeError, ValueError):
        return {**used, "applied_on": None}


@router.get("/app/lots/{lot_id}/trace", response_class=HTMLResponse)
@_refusing
def trace_page(
    request: Request, session: SessionDep, who: Member, lot_id: DbId, direction: Direction = Direction.BACKWARD
) -> Response:
    """A lot's trace backward (to the growing areas) or forward (to everything made of it and who holds it)."""
    actor = who.actor
    found = lineage.trace(session=session, actor=actor, lot_id=lot_id, direction=direction)
    root = next(lot for lot in found.lots if lot.id == found.root_lot_id)
    holders = party_names(
        session=session,
        ids={h["organisation_id"] for lot in found.lots for h in lot.holders},  # type: ignore[misc]
        reader=actor,
    )
    # Links only to lots the reader surely may open (its own organisation's): others would answer 404.
    linked = {
        lot.id for lot in found.lots if actor.reads_everything or lot.producer_organisation_id == actor.organisation_id
    }
    return render(
        request,
        "app/lots/trace.html",
        who,
        root=root,
        direction=direction.value,
        steps=tree(found),
        moments=timeline(session, found, actor),
        holder_names=holders,
        linked=linked,
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# The trace's downloads by file extension: how trace/ makes each, and its media type.
EXPORTS = {"csv": (lineage.fsma_csv, "text/csv; charset=utf-8"), "xlsx": (lineage.fsma_xlsx, XLSX_MEDIA_TYPE)}


def _export(session: Session, who: Visitor, lot_id: int, direction: Direction, extension: str) -> Response:
    """The trace as a file to download (the same file as the API's), named after the lot's code."""
    make, media_type = EXPORTS[extension]
    body = make(session=session, actor=who.actor, lot_id=lot_id, direction=direction)
    code = _UNSAFE.sub("_", lots.get_lot(session=session, lot_id=lot_id).lot_code)  # safe in a header and a file system
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="lot-{code}-{direction.value}.{extension}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/app/lots/{lot_id}/trace.csv")
@_refusing
def trace_csv(
    request: Request, session: SessionDep, who: Member, lot_id: DbId, direction: Direction = Direction.BACKWARD
) -> Response:
    """The trace as the FSMA 204 CSV (the same file as the API's)."""
    return _export(session, who, lot_id, direction, "csv")


@router.get("/app/lots/{lot_id}/trace.xlsx")
@_refusing
def trace_xlsx(
    request: Request, session: SessionDep, who: Member, lot_id: DbId, direction: Direction = Direction.BACKWARD
) -> Response:
    """The trace as an XLSX workbook with the FSMA 204 columns."""
    return _export(session, who, lot_id, direction, "xlsx")
