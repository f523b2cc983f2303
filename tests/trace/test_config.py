"""Settings: one place, HYTRACE_ prefix, and no default secret outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trace.config import DEFAULT_SECRET, Settings


def test_settings_come_from_hytrace_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", "https://truyxuat.hungyen.example/")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u@h/db" and not settings.is_sqlite
    assert settings.public_base_url == "https://truyxuat.hungyen.example"  # no trailing slash


@pytest.mark.parametrize("secret", [DEFAULT_SECRET, "short-secret"])
def test_production_refuses_a_default_or_short_secret(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("HYTRACE_ENVIRONMENT", "production")
    monkeypatch.setenv("HYTRACE_SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="HYTRACE_SECRET_KEY"):
        Settings()


def test_production_accepts_a_long_random_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_ENVIRONMENT", "production")
    monkeypatch.setenv("HYTRACE_SECRET_KEY", "x" * 16 + "y" * 16 + "z")
    assert Settings().environment == "production"


def test_development_runs_with_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_ENVIRONMENT", "development")
    monkeypatch.delenv("HYTRACE_SECRET_KEY", raising=False)
    assert Settings(_env_file=None).secret_key == DEFAULT_SECRET  # type: ignore[call-arg]
