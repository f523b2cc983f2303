"""A real API server for browser and multi-process tests: a database of its own with the demo data,
``uvicorn`` in a subprocess on a free loopback port, stopped with SIGTERM as a service manager stops it."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from trace.digital_link import unit_uri
from trace.lots import Lot
from trace.platform.config import get_settings
from trace.platform.db import make_engine
from trace.scans.models import Scan
from trace.units import Unit, UnitStatus

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SHOWCASE_GTIN, SHOWCASE_LOT = "09520002000019", "LN260715"  # the demo's dried longan lot (trace/demo)
SECRET = "e2e-secret-key-that-is-long-enough-0123456789"
# seconds: a start waits on a loaded machine (two suites at once); the scan buffer alone may retry
# for 30 s on shutdown
START_TIMEOUT, STOP_TIMEOUT = 90.0, 45.0
REDIS = os.environ.get("HYTRACE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


@dataclass(frozen=True)
class DemoUnit:
    """An active unit of the showcase lot, read from the database (not from the demo's output)."""

    lot_id: int
    unit_id: int
    gtin: str
    lot_code: str
    serial: str


@dataclass
class Server:
    """A running API process on its own database."""

    base: str  # http://127.0.0.1:<port>
    db_url: str
    engine: Engine
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # the server's environment, for workers beside it

    def unit(self) -> DemoUnit:
        """The showcase lot's first active unit."""
        return demo_unit(self.engine)

    def unit_url(self, unit: DemoUnit | None = None) -> str:
        """The unit's label URI on this server (the same URI its QR code carries)."""
        found = unit or self.unit()
        return unit_uri(base_url=self.base, gtin=found.gtin, lot=found.lot_code, serial=found.serial)

    def scans(self, unit_id: int) -> int:
        """Scan rows the database holds for a unit."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(Scan).where(col(Scan.unit_id) == unit_id)).scalar_one()
            )

    def stop(self) -> int:
        """SIGTERM (a clean shutdown), wait for the process to end; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"the server ignored SIGTERM for {STOP_TIMEOUT} s\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        """The end of the server's log, for failure messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(db_url: str, port: int, **extra: str) -> dict[str, str]:
    """The environment of a server (and of the CLI preparing its database): embedded broker, test mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYTRACE_")}
    env.update(
        HYTRACE_DATABASE_URL=db_url,
        HYTRACE_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        HYTRACE_REDIS_URL="",
        HYTRACE_ENVIRONMENT="test",
        HYTRACE_SECRET_KEY=SECRET,
        HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE="1000000",
        HYTRACE_RATE_LIMIT_LOGIN_PER_MINUTE="1000000",
        # as the product runs (Dockerfile, docker-compose.yml, make run): no proxy believed unless named
        FORWARDED_ALLOW_IPS="",
        HYTRACE_TLOG_ORIGIN=os.environ["HYTRACE_TLOG_ORIGIN"],  # the run's log key (tests/conftest.py)
        HYTRACE_TLOG_SIGNING_KEY=os.environ["HYTRACE_TLOG_SIGNING_KEY"],
    )
    env.update(extra)
    return env


def read_as(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's settings become those of ``env`` (a server's or a worker's): every ``HYTRACE_``
    variable it has is set, every other one unset. What this process then reads or renders (an event's
    EPCIS id hashes URIs under the public base URL, tasks go to the worker's queue) is as they would."""
    for name in [k for k in os.environ if k.startswith("HYTRACE_") and k not in env]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("HYTRACE_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def load_demo(env: dict[str, str], log: Path) -> None:
    """``python -m trace.cli migrate`` then ``demo``, as an operator runs them, into env's database."""
    with log.open("ab") as out:
        for command in ("migrate", "demo"):
            # cwd = the repository root: ``trace`` must be ours, not the standard library's.
            done = subprocess.run(
                [sys.executable, "-m", "trace.cli", command],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
            )
            if done.returncode != 0:
                pytest.fail(
                    f"trace.cli {command} failed ({done.returncode})\n{log.read_text(errors='replace')[-3000:]}"
                )


def demo_unit(engine: Engine) -> DemoUnit:
    """The first active unit of the showcase lot."""
    with Session(engine) as session:
        row = session.execute(
            select(col(Lot.id), col(Unit.id), col(Unit.serial))
            .join(Unit, col(Unit.lot_id) == col(Lot.id))
            .where(
                col(Lot.gtin) == SHOWCASE_GTIN, col(Lot.lot_code) == SHOWCASE_LOT, col(Unit.status) == UnitStatus.ACTIVE
            )
            .order_by(col(Unit.id))
            .limit(1)
        ).first()
    assert row is not None, f"the demo has no active unit of lot {SHOWCASE_LOT}"
    lot_id, unit_id, serial = row
    return DemoUnit(lot_id=lot_id, unit_id=unit_id, gtin=SHOWCASE_GTIN, lot_code=SHOWCASE_LOT, serial=serial)


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"the server exited ({process.returncode}) before it answered\n{tail}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).json().get("status") == "ok":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    pytest.fail(
        f"the server did not answer /healthz within {START_TIMEOUT} s\n{log.read_text(errors='replace')[-3000:]}"
    )


@contextmanager
def demo_server(db_url: str, logs: Path, **extra_env: str) -> Iterator[Server]:
    """The demo loaded into ``db_url`` (an empty database) and a server on it; stopped (SIGTERM) at the end."""
    port = free_port()
    env = server_env(db_url, port, **extra_env)
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"server-{port}.log"
    load_demo(env, log)
    engine = make_engine(db_url, pool_size=2)
    try:
        with _serving(db_url, engine, env, port, log) as server:
            yield server
    finally:
        engine.dispose()


@contextmanager
def another_process(server: Server, logs: Path) -> Iterator[Server]:
    """A second API process on ``server``'s database and settings, on a port of its own (as two
    uvicorn workers or two hosts behind a balancer run): for rules that must hold across processes."""
    port = free_port()
    with _serving(server.db_url, server.engine, server.env, port, logs / f"server-{port}.log") as second:
        yield second


@contextmanager
def _serving(db_url: str, engine: Engine, env: dict[str, str], port: int, log: Path) -> Iterator[Server]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(base=f"http://127.0.0.1:{port}", db_url=db_url, engine=engine, process=process, log=log, env=env)
    try:
        _wait_healthy(server.base, process, log)
        yield server
    finally:
        server.stop()


def redis_up() -> bool:
    """Something listens on Redis's port on this machine."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


@contextmanager
def celery_worker(server: Server, logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker beside ``server``: its environment (database, broker, queue, public base URL),
    so it renders the print runs the server's pages send; stopped (SIGTERM, then SIGKILL) at the end."""
    queue = server.env.get("HYTRACE_CELERY_QUEUE", "celery")
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"worker-{queue}.log"
    with log.open("ab") as out:
        # cwd = the repository root: ``trace`` must be ours, not the standard library's.
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
            ],
            cwd=ROOT,
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


CHROMIUM = Path("/usr/bin/chromium")  # Debian's package
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (skipped with a reason when either is missing;
    a failure under .ci/run)."""
    from tests.conftest import require

    require(CHROMIUM.exists(), "Chromium not installed (apt-get install chromium)")
    require(importlib.util.find_spec("playwright") is not None, "playwright not installed (pip install -e '.[test]')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


PHONE = {"width": 360, "height": 740}  # a cheap phone's screen, in CSS pixels


@contextmanager
def phone(browser: Any, locale: str = "vi-VN", accept_language: str | None = "vi", **options: Any) -> Iterator[Any]:
    """A page in a fresh phone-sized browser context (no shared cookies or cache); ``options`` go to
    Playwright's new_context (geolocation, downloads, ...)."""
    headers = {"Accept-Language": accept_language} if accept_language else {}
    context = browser.new_context(
        viewport=PHONE, locale=locale, is_mobile=True, has_touch=True, extra_http_headers=headers, **options
    )
    try:
        yield context.new_page()
    finally:
        context.close()


DESKTOP = {"width": 1280, "height": 800}


def shoot(page: Any, folder: Path, name: str) -> None:
    """Screenshots at phone and desktop width into ``folder``; at phone width nothing may need
    sideways scrolling."""
    folder.mkdir(parents=True, exist_ok=True)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"], f"{name}: wider than a phone"
    page.screenshot(path=str(folder / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(folder / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)


def sign_in(page: Any, server: Server, email: str) -> None:
    """The sign-in form, typed and sent as a person does; the start page follows."""
    from trace.demo.data import DEMO_PASSWORD

    page.goto(f"{server.base}/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")
    assert urlsplit(page.url).path == "/app", f"{email} could not sign in: {page.url}"


@contextmanager
def server_with_worker(databases: Any, logs: Path, queue: str) -> Iterator[Server]:
    """The demo on a fresh database, served, with a real Celery worker on its own queue: the embedded
    broker on SQLite, Redis beside PostgreSQL (where the embedded broker would fall back to ./data)."""
    from tests.conftest import require

    extra = {"HYTRACE_CELERY_QUEUE": queue}
    if databases.dialect == "postgresql":
        require(redis_up(), "Redis is not running on 127.0.0.1:6379")
        extra["HYTRACE_REDIS_URL"] = REDIS
    with demo_server(databases.new(), logs, **extra) as running, celery_worker(running, logs):
        yield running
