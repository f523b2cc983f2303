"""The request's session commits before the response leaves: a client told 201 (or a browser sent on by
a 303) never arrives before the write it was told about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.deps import SessionDep

META = sa.MetaData()
NOTES = sa.Table("note", META, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String))
# A reply must point at a note, checked only when the transaction commits (a deferred foreign key).
REPLIES = sa.Table(
    "reply",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("note_id", sa.Integer, sa.ForeignKey("note.id", deferrable=True, initially="DEFERRED")),
)


def _app(tmp_path: Path) -> tuple[Any, sa.Engine, list[int]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    sa.event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA foreign_keys=ON"))
    META.create_all(engine)
    app = FastAPI()
    app.state.engine = engine

    @app.post("/notes", status_code=201)
    def add(session: SessionDep) -> dict[str, str]:
        session.execute(NOTES.insert().values(text="harvest"))
        return {"ok": "yes"}

    @app.post("/broken", status_code=201)
    def broken(session: SessionDep) -> dict[str, str]:
        session.execute(NOTES.insert().values(text="kept only with its reply"))
        session.execute(REPLIES.insert().values(note_id=999))  # refused at COMMIT, after the handler returned
        return {"ok": "never"}

    seen: list[int] = []

    async def watching(scope: Any, receive: Any, send: Any) -> None:
        async def spy(message: Any) -> None:
            if message["type"] == "http.response.start":
                # What another connection sees at the moment the response starts to leave.
                with engine.connect() as other:
                    seen.append(other.execute(sa.select(sa.func.count()).select_from(NOTES)).scalar_one())
            await send(message)

        await app(scope, receive, spy)

    return watching, engine, seen


def test_a_write_is_committed_before_the_response_starts(tmp_path: Path) -> None:
    app, engine, seen = _app(tmp_path)
    with TestClient(app) as client:
        assert client.post("/notes").status_code == 201
        assert client.post("/notes").status_code == 201
    assert seen == [1, 2]  # with the commit after the response, the first would have seen 0
    engine.dispose()


def test_a_write_that_fails_to_commit_is_never_answered_as_a_success(tmp_path: Path) -> None:
    app, engine, seen = _app(tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        # with the commit after the response, the client would already have been told 201
        assert client.post("/broken").status_code == 500
    assert seen == [0]  # the error answer left after the rollback
    with engine.connect() as other:
        assert other.execute(sa.select(sa.func.count()).select_from(NOTES)).scalar_one() == 0
    engine.dispose()
