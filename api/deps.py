"""Dependencies, defined once: the session (one commit per request) and the current actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from api.jobs import Jobs, Send
from trace.access import Actor
from trace.auth import actor_from_token
from trace.errors import Unauthenticated
from trace.platform.db import get_engine, session_scope

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def get_send() -> Send:
    """How jobs reach the workers (tests replace it)."""
    from workers.jobs import send

    return send


def get_session(request: Request, send: Annotated[Send, Depends(get_send)]) -> Iterator[Session]:
    """A session per request, committed once if the handler succeeds, rolled back otherwise; the jobs the
    handler added (``JobsDep``) are sent after the commit, and dropped with a rollback."""
    engine = request.app.state.engine if hasattr(request.app.state, "engine") else get_engine()
    jobs = request.state.jobs = Jobs()
    with jobs.sent_after(send), session_scope(engine, write=request.method in WRITE_METHODS) as session:
        jobs.watch(session)
        yield session


# scope="function": the commit happens when the handler returns, before the response is sent. With
# FastAPI's default ("request") it ran after the response had gone out: a client could be told 201 for
# a write that then failed to commit, and a browser following a 303 could arrive before the commit
# (a sign-in whose session row was not there yet).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_reading_session(request: Request) -> Iterator[Session]:
    """A read-only session that stays open until the response has been sent, for a body streamed from the
    database after the handler returned (``SessionDep``'s has closed by then)."""
    engine = request.app.state.engine if hasattr(request.app.state, "engine") else get_engine()
    with session_scope(engine, write=False) as session:
        yield session


# FastAPI's default scope ("request"): the exit runs after the response, so a StreamingResponse can read.
ReadingSessionDep = Annotated[Session, Depends(get_reading_session)]


BearerToken = Annotated[str | None, Depends(oauth2)]  # the credential as sent (``Authorization: Bearer …``)


def get_actor(session: SessionDep, token: BearerToken) -> Actor:
    """The authenticated caller (bearer token or API key), or 401."""
    if not token:
        raise Unauthenticated("Log in first: send a bearer token or an API key", code="no_credentials")
    return actor_from_token(session=session, token=token)


def get_optional_actor(session: SessionDep, token: BearerToken) -> Actor | None:
    """The caller if credentials were sent, else None (the public)."""
    return actor_from_token(session=session, token=token) if token else None


CurrentActor = Annotated[Actor, Depends(get_actor)]
OptionalActor = Annotated[Actor | None, Depends(get_optional_actor)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=100, description="Retries with the same key replay the first answer"),
]


def get_jobs(request: Request, session: SessionDep) -> Jobs:
    """The request's jobs, sent to the workers after its session commits (api/jobs.py)."""
    jobs: Jobs = request.state.jobs
    assert jobs.session is session
    return jobs


JobsDep = Annotated[Jobs, Depends(get_jobs)]


# Row ids are 32-bit integers in both databases: a larger id in a path is refused before any query.
DbId = Annotated[int, Path(ge=1, le=2_147_483_647, description="A row id")]
