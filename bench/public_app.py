"""The product's application plus what only the public-page benchmark needs: a bare comparison endpoint
and a count of the unit pages the server answered.

Served by ``bench.public_page`` as ``uvicorn bench.public_app:app``; never part of the product.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.main import create_app

SERVED_FILE_ENV = "HYTRACE_BENCH_SERVED_FILE"
SERVED: dict[int, int] = {}  # answers to GET /01/… by status, in this process


class ServedCounter:
    """ASGI middleware: counts the answers to ``GET /01/…`` by status (each 2xx one is a scan) and writes
    them to ``path`` when the application has shut down (after it wrote its buffered scans)."""

    def __init__(self, app: ASGIApp, *, path: Path) -> None:
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._on_shutdown(send))
            return
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith("/01/"):
            await self.app(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            # Counted when the answer starts: its scan is recorded by then, even if the client has gone.
            if message["type"] == "http.response.start":
                SERVED[message["status"]] = SERVED.get(message["status"], 0) + 1
            await send(message)

        await self.app(scope, receive, counted)

    def _on_shutdown(self, send: Send) -> Send:
        # Not atexit: uvicorn re-raises SIGTERM once it has shut down, so the process ends by the signal.
        async def relay(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                save_served(self.path)
            await send(message)

        return relay


def save_served(path: Path) -> None:
    """Write ``status count`` lines."""
    path.write_text("".join(f"{status} {count}\n" for status, count in sorted(SERVED.items())))


def read_served(path: Path) -> dict[int, int]:
    """What :func:`save_served` wrote: answers by status."""
    pairs = (line.split() for line in path.read_text().splitlines() if line.strip())
    return {int(status): int(count) for status, count in pairs}


product = create_app()


@product.get("/bare", include_in_schema=False)
async def bare() -> dict[str, Any]:
    """A constant: what one worker serves when the handler does nothing."""
    return {"status": "ok", "service": "hytrace"}


# Matched first, as the only route of a bare FastAPI app would be: registered last, it would first try
# every router of the product (about half of its cost on FastAPI 0.165), and flatter the page's share.
product.router.routes.insert(0, product.router.routes.pop())

# Around the whole application: a label's page is answered before the middleware stack (api/express.py).
app: ASGIApp = (
    ServedCounter(product, path=Path(os.environ[SERVED_FILE_ENV])) if os.environ.get(SERVED_FILE_ENV) else product
)
