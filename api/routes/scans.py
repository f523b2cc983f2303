"""A visitor may add where they are to their own scan, to help spot codes copied onto other packages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from sqlmodel import Field, SQLModel

from api.deps import SessionDep
from trace.errors import NotFound, RuleViolation
from trace.scans import record

router = APIRouter(prefix="/scans", tags=["verification"])


class PlaceIn(SQLModel):
    """Where the visitor is; the page's button rounds it to 0.1° on the phone, and so does the server."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


@router.post("/{uid}/place", status_code=204, response_class=Response)
def share_place(
    request: Request,
    session: SessionDep,
    data: PlaceIn,
    uid: Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="The scan's id, from its page")],
) -> None:
    """Add a coarse place (about 11 km) to one's own scan of the last hour; once per scan."""
    place = record.coarse_place(data.lat, data.lon)
    if place is None:
        raise RuleViolation("Not a place on Earth", code="bad_place")
    buffer = request.app.state.public.buffer
    if buffer is not None:
        if buffer.amend(uid, place):
            return
        # It may be on its way to the database: let it land before looking there.
        buffer.flush()
    if not record.set_place(session=session, uid=uid, place=place):
        raise NotFound("No recent scan of yours has this id, or it already has a place", code="scan_not_found")
