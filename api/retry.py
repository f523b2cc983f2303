"""Writes that met a concurrent writer are run again on the server before the client hears of it.

A deadlock, a serialization failure, a lock wait cut short or a unique key taken by a concurrent
insert rolls the whole request back (nothing of it is written), so running it again is safe: the
second run waits for the other writer's commit and then decides on what that writer left (a second
ship of a lot's last kilogram gets ``exceeds_holding``, not a conflict). The exception handlers mark
such answers with ``RETRY_HEADER``; this middleware, innermost of all, keeps the request's body,
runs the request up to ``attempts`` times with a short random pause between runs, and only the last
run's 409 ``write_conflict`` (with ``Retry-After``) reaches the client. The marker never leaves.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RETRY_HEADER = b"x-hytrace-retry"  # set by the handlers on an answer that may be run again
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ATTEMPTS = 4
PAUSE_SECONDS = (0.005, 0.05)  # the range of a random pause before each new run, doubled each time


class RetryConflicts:
    """ASGI middleware: runs a write again (up to ``attempts`` times) while its answer is marked retryable."""

    def __init__(self, app: ASGIApp, attempts: int = ATTEMPTS) -> None:
        self.app = app
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away while sending
            return
        low, high = PAUSE_SECONDS
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            answer = _Answer(send, last)
            await self.app(dict(scope, state=dict(scope.get("state") or {})), _replay(body, receive), answer)
            if not answer.retry:
                return
            await asyncio.sleep(random.uniform(low, high) * 2 ** (attempt - 1))


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body (the body guard outside has bounded its size)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives the kept body once, then waits on the client (for a disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class _Answer:
    """Passes a run's answer on, unless it is marked retryable and another run may follow."""

    def __init__(self, send: Send, last: bool) -> None:
        self.send = send
        self.last = last
        self.retry = False
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[Any] = list(message.get("headers", []))
            marked = any(name.lower() == RETRY_HEADER for name, _ in headers)
            if marked and not self.last:
                self.retry = True
                return
            self.started = True
            message = dict(message, headers=[(n, v) for n, v in headers if n.lower() != RETRY_HEADER])
        elif self.retry:
            return  # the body of an answer that will be run again
        await self.send(message)
