"""The designation holder's view of how its designation is used."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentActor, SessionDep
from trace.designations import usage

router = APIRouter(tags=["designation_usage"])


@router.get("/designations/{designation_id}/usage", response_model=usage.DesignationUsage)
def get(
    session: SessionDep,
    actor: CurrentActor,
    designation_id: int,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="A calendar year; default every year")] = None,
) -> usage.DesignationUsage:
    """Rights held, labels per grantee and year, quota use and yield checks (holder's members and admins)."""
    return usage.designation_usage(session=session, actor=actor, designation_id=designation_id, year=year)
