"""The label URIs themselves: ``/01/{gtin}/10/{lot}[/21/{serial}]`` on whatever host the label named.

This answers with the code check as JSON; the consumer page, content negotiation and linksets
come with the public origin page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import SessionDep
from trace import digital_link, verification

router = APIRouter(tags=["resolver"])


@router.get("/01/{rest:path}", response_model=verification.CodeCheck)
def resolve(session: SessionDep, request: Request, rest: str) -> verification.CodeCheck:
    """A printed label's Digital Link, on the public host or any alias (hosts change, labels stay)."""
    # The raw path: a lot with an encoded "/" (%2F) must not split into two segments.
    raw = request.scope.get("raw_path", request.url.path.encode()).decode("ascii", "replace")
    link = digital_link.parse_path(raw, request.url.query)
    return verification.check_link(session=session, link=link)
