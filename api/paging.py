"""Key paging on the HTTP side: the ``cursor`` and (legacy) ``offset`` parameters, and the next page
announced in response headers.

The body of a list stays the JSON array it always was (clients that read it keep working); the next
page is told in an RFC 8288 ``Link: <...>; rel="next"`` header, and its cursor alone in ``Next-Cursor``.
No header on the last page. No total count: counting a million rows on every page is what key paging
avoids.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request, Response

from trace.platform.paging import MAX_CURSOR, Page

Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR,
        description='Where the page starts: the `Next-Cursor` (or `Link: rel="next"`) of the page before. '
        "Opaque; every page costs the same however far into the list.",
    ),
]
# Kept for the clients that page by offset today; deprecated because the database reads and throws away
# every skipped row (58-73 ms at row 900,000 of the lots list against 20-34 ms at row 0).
Offset = Annotated[
    int,
    Query(
        ge=0,
        deprecated=True,
        description="Rows to skip (deprecated: slower the further it goes; use `cursor`). Not with `cursor`.",
    ),
]

PAGED: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Link": {
                "description": 'RFC 8288 link to the next page (`<url>; rel="next"`); absent on the last page',
                "schema": {"type": "string"},
            },
            "Next-Cursor": {
                "description": "The `cursor` of the next page; absent on the last page",
                "schema": {"type": "string"},
            },
        }
    }
}


def announce(request: Request, response: Response, found: Page[Any]) -> None:
    """Tell the next page of ``found`` in the response headers (none on the last page)."""
    if found.next is None:
        return
    # The same filters and limit; the cursor replaces any offset (the two do not go together).
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("cursor", "offset")]
    url = request.url.replace(query=urlencode([*params, ("cursor", found.next)]))
    response.headers["Link"] = f'<{url}>; rel="next"'
    response.headers["Next-Cursor"] = found.next
