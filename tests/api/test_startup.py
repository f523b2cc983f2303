"""On first start the bootstrap administrator from settings is created, once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests.conftest import Databases, migrate
from trace.platform.config import get_settings
from trace.platform.db import get_engine, make_engine
from trace.users import User


def test_first_start_creates_the_admin_from_settings_once(
    databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an empty, migrated database and an admin in the settings
    url = databases.new()
    migrate(url)
    monkeypatch.setenv("HYTRACE_DATABASE_URL", url)
    monkeypatch.setenv("HYTRACE_ADMIN_EMAIL", "Quantri@HungYen.example")
    monkeypatch.setenv("HYTRACE_ADMIN_PASSWORD", "a-long-bootstrap-password")
    get_settings.cache_clear()
    get_engine.cache_clear()
    from api.main import create_app

    try:
        # when the app starts twice
        for _ in range(2):
            with TestClient(create_app()) as client:
                token = client.post(
                    "/api/v1/auth/token",
                    data={"username": "quantri@hungyen.example", "password": "a-long-bootstrap-password"},
                ).json()
                me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token['access_token']}"})
                assert me.json()["role"] == "admin"
    finally:
        get_engine().dispose()
        get_engine.cache_clear()
    # then exactly one admin exists
    engine = make_engine(url, pool_size=1)
    with Session(engine) as session:
        assert len(session.exec(select(User).where(User.email == "quantri@hungyen.example")).all()) == 1
    engine.dispose()
