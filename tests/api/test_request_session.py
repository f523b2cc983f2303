"""The request's session commits before the response leaves: a client told 201 (or a browser sent on by
a 303) never arrives before the write it was told about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.deps import SessionDep

NOTES = sa.Table("note", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String))


def _app(tmp_path: Path) -> tuple[Any, sa.Engine, list[int]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    NOTES.metadata.create_all(engine)
    app = FastAPI()
    app.state.engine = engine

    @app.post("/notes", status_code=201)
    def add(session: SessionDep) -> dict[str, str]:
        session.execute(NOTES.insert().values(text="harvest"))
        return {"ok": "yes"}

    @app.post("/broken", status_code=201)
    def broken(session: SessionDep) -> dict[str, str]:
        session.execute(NOTES.insert().values(id=1, text="first"))
        session.execute(NOTES.insert().values(id=1, text="same id"))  # fails at once, inside the handler
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


def test_a_failed_write_sends_no_success_and_keeps_nothing(tmp_path: Path) -> None:
    app, engine, _ = _app(tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/broken").status_code == 500
    with engine.connect() as other:
        assert other.execute(sa.select(sa.func.count()).select_from(NOTES)).scalar_one() == 0
    engine.dispose()
