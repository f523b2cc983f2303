"""What every benchmark shares: a fresh migrated database per run, percentiles, tables, JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import statistics
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, make_url, text

from trace.access import Actor, Role

# The benchmarks run the domain in-process; settings must be development-safe before trace/ reads them.
os.environ.setdefault("HYTRACE_ENVIRONMENT", "development")
os.environ.setdefault("HYTRACE_SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")
ROOT = Path(__file__).resolve().parents[1]
PG_BASE_URL = os.environ.get("HYTRACE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
JSON_PREFIX = "BENCH_JSON "


def base_parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres", "both"),
        default="both",
        help="which database(s) to measure (default: both)",
    )
    parser.add_argument("--seed", type=int, default=20261127, help="random seed, for repeatable data")
    return parser


def kinds(choice: str) -> list[str]:
    """``both`` → ``["sqlite", "postgres"]``."""
    return ["sqlite", "postgres"] if choice == "both" else [choice]


def migrate(url: str) -> None:
    """alembic upgrade head on ``url`` (alembic.ini at the repository root)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """A new, migrated, empty database of ``kind``; removed afterwards whatever happens."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="hytrace_bench_") as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            migrate(url)
            yield url
        return
    name = f"hytrace_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_BASE_URL).set(database=name).render_as_string(hide_password=False)
        try:
            migrate(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def server_version(engine: Engine) -> str:
    """``SQLite 3.40.1`` or ``PostgreSQL 15.x``."""
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with engine.connect() as conn:
        return "PostgreSQL " + str(conn.execute(text("SHOW server_version")).scalar()).split()[0]


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / max of durations in seconds, as milliseconds."""
    if not samples_s:
        return {"n": 0, "p50_ms": float("nan"), "p95_ms": float("nan"), "max_ms": float("nan")}
    ordered = sorted(samples_s)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(p95 * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, right-aligned numbers."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for row, raw in zip(cells, rows, strict=True):
        out.append(
            "  ".join(
                c.rjust(w) if isinstance(v, int | float) else c.ljust(w)
                for c, v, w in zip(row, raw, widths, strict=True)
            )
        )
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}" if value < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def emit(name: str, data: dict[str, Any]) -> None:
    """The machine-readable result: one line, ``BENCH_JSON {...}``."""
    print(JSON_PREFIX + json.dumps({"bench": name, **machine(), **data}, default=str, sort_keys=True), flush=True)


ADMIN = Actor(role=Role.ADMIN, organisation_id=None, name="bench admin")
COMMUNE = "12070"  # Xã Hoàn Long (trace/data/communes.csv)
