"""Settings: one place, HYTRACE_ prefix, no default secret outside development and no weak secret anywhere."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from trace.platform.config import (
    DEFAULT_SECRET,
    MAKE_A_SECRET,
    MIN_SECRET_BITS,
    Settings,
    secret_bits,
    weak_secret,
)


def test_settings_come_from_hytrace_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("HYTRACE_PUBLIC_BASE_URL", "https://truyxuat.hungyen.example/")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u@h/db" and not settings.is_sqlite
    assert settings.public_base_url == "https://truyxuat.hungyen.example"  # no trailing slash


@pytest.mark.parametrize(
    "secret",
    [
        "short-secret",
        "a" * 32,  # long enough, one character
        "a" * 64,
        "aaaabbbb" * 8,  # two characters
        "x" * 16 + "y" * 16 + "z",
        "Kx9!Qz7#" * 6,  # a short random block, repeated
        "abcdefghijklmnopqrstuvwxyz0123456789",  # a run of neighbours
        "0123456789" * 4,
        "change-me-development-only-but-made-longer-42",  # the placeholder, dressed up
        "ChangeMe_" + "9f3Kq2Lx7Vb1Nw8Rt5Yz",
    ],
)
@pytest.mark.parametrize("environment", ["production", "test", "development"])
def test_a_weak_secret_is_refused_in_every_environment_saying_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, secret: str, environment: str
) -> None:
    monkeypatch.setenv("HYTRACE_ENVIRONMENT", environment)
    monkeypatch.setenv("HYTRACE_SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="HYTRACE_SECRET_KEY is too weak") as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert MAKE_A_SECRET in str(refused.value) and "input_value" not in str(refused.value)  # the secret is not shown


@pytest.mark.parametrize("environment", ["production", "test"])
def test_the_built_in_secret_is_refused_outside_development(monkeypatch: pytest.MonkeyPatch, environment: str) -> None:
    # HYTRACE_ENVIRONMENT=test is no way round: the test suite sets a secret of its own (tests/conftest.py)
    monkeypatch.setenv("HYTRACE_ENVIRONMENT", environment)
    monkeypatch.delenv("HYTRACE_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match=f"HYTRACE_SECRET_KEY must be set when HYTRACE_ENVIRONMENT={environment}"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("HYTRACE_SECRET_KEY", DEFAULT_SECRET)
    with pytest.raises(ValidationError, match="HYTRACE_SECRET_KEY must be set"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "make", [lambda: secrets.token_urlsafe(48), lambda: secrets.token_hex(32), lambda: secrets.token_urlsafe(32)]
)
def test_production_accepts_a_random_secret(monkeypatch: pytest.MonkeyPatch, make: Callable[[], str]) -> None:
    monkeypatch.setenv("HYTRACE_ENVIRONMENT", "production")
    for _ in range(200):  # random secrets, each must pass (not one lucky draw)
        monkeypatch.setenv("HYTRACE_SECRET_KEY", make())
        assert Settings(_env_file=None).environment == "production"  # type: ignore[call-arg]


def test_the_suites_own_secrets_pass_the_rule() -> None:
    from tests.e2e.live import SECRET

    for secret in (os.environ["HYTRACE_SECRET_KEY"], SECRET):
        assert weak_secret(secret) is None, secret


def test_a_made_secret_scores_well_above_a_regular_one() -> None:
    assert secret_bits(secrets.token_urlsafe(48)) > 3 * MIN_SECRET_BITS
    assert secret_bits("a" * 100) == 0 and secret_bits("ab" * 50) == secret_bits("ab")


def test_development_runs_with_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_ENVIRONMENT", "development")
    monkeypatch.delenv("HYTRACE_SECRET_KEY", raising=False)
    assert Settings(_env_file=None).secret_key == DEFAULT_SECRET  # type: ignore[call-arg]


def test_make_run_starts_in_development_with_the_built_in_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # `make run` sets no environment: the defaults must start
    for name in ("HYTRACE_ENVIRONMENT", "HYTRACE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.environment, settings.secret_key) == ("development", DEFAULT_SECRET)
