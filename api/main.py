"""The FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import errors
from api.bodyguard import BodyGuard
from api.express import Express
from api.public import PublicPages
from api.ratelimit import Credentials, RateLimit
from api.ratelimit import buckets as ratelimit_buckets
from api.retry import RetryConflicts
from api.routes import (
    admin,
    auth,
    catalogue,
    certifications,
    codes,
    designation_usage,
    designations,
    epcis,
    events,
    health,
    inspections,
    lots,
    organisations,
    portal,
    print_runs,
    product_images,
    recalls,
    resolver,
    scans,
    transparency,
    webhooks,
)
from api.security import DOCS_ASSETS, SecurityHeaders
from api.web import auth as auth_pages
from api.web import (
    dashboard,
    harvests,
    home,
    locations,
    packing,
    reports,
    rights,
    shipments,
    stock,
    transforms,
    users,
)
from api.web import designations as designation_pages
from api.web import errors as web_errors
from api.web import inspections as inspection_pages
from api.web import lots as lot_pages
from api.web import organisations as organisation_pages
from api.web import print_runs as print_run_pages
from trace.platform import changes
from trace.platform.config import get_settings
from trace.platform.db import get_engine, get_page_engine, get_read_engine, read_connection, session_scope
from trace.scans.buffer import open_buffer
from trace.transparency import keys as transparency_keys
from trace.users import ensure_admin

FULL_COLLECTION_EVERY = 1_000  # middle-generation collections per full one (CPython's default: 10)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    # The threadpool is no larger than the DB pool: no thread ever waits on a connection
    # held by a request that is itself waiting for a thread (fastapi#3205).
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
    if app.state.testing:
        yield
        return
    # A malformed log key stops the start with its reason, rather than failing every page that shows the log.
    transparency_keys.check(settings)
    if settings.admin_password:
        with session_scope() as session:
            ensure_admin(session=session, email=settings.admin_email, password=settings.admin_password)
    engine = get_engine()
    watcher = changes.Watcher(engine, settings.change_poll_seconds)
    watcher.start()
    # A replica's counter moves when its data does: a page built before a write reached it is built again.
    replica = changes.Watcher(get_read_engine(), settings.change_poll_seconds) if settings.database_read_url else None
    if replica is not None:
        replica.start()
    buffer = open_buffer(engine)
    app.state.public.buffer = buffer
    app.state.public.inline = get_page_engine().dialect.name == "sqlite"
    buffer.start()
    # Everything loaded so far lives as long as the process: keep the collector from walking it again
    # and again (full collections of ~175k objects were most of the public page's p99).
    gc.collect()
    gc.freeze()
    # A full collection walks every page kept (~90,000 objects with 5,000 pages: 60-150 ms, every second or
    # so under a load of different units, the largest part of p99). Young collections go on as before; a
    # full one waits for the 1,000th of theirs instead of the 10th (a few minutes at most; our cached
    # objects hold no cycles, so little waits for it).
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    try:
        yield
    finally:
        # A clean shutdown writes every scan still buffered before the process ends.
        buffer.close()
        watcher.stop()
        if replica is not None:
            replica.stop()


def create_app(*, testing: bool = False) -> FastAPI:
    """Build the app (tests pass ``testing`` to skip start-up side effects)."""
    # FastAPIOffline: a FastAPI whose /docs and /redoc load their assets from /docs-assets, not a CDN.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        title="hytrace",
        version="0.1.0",
        lifespan=lifespan,
        # We configure no OpenTelemetry: FastAPI would otherwise look for the global providers on
        # every request (os.environ reads and lookups, ~7 % of a cached page's time in process).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        responses=errors.PROBLEM_RESPONSES,
        description="Truy xuất nguồn gốc nông sản Hưng Yên — traceability for the farm products of Hưng Yên.",
    )
    app.state.testing = testing
    # Innermost: a write that met a concurrent writer is run again with the body it kept (api/retry.py).
    app.add_middleware(RetryConflicts)
    # Next: a body is read only once the rate limit has let its request in.
    app.add_middleware(BodyGuard)
    # The public pages' cache; its scan buffer starts with the application (tests bring their own).
    app.state.public = PublicPages(
        lambda: session_scope(getattr(app.state, "engine", None) or get_read_engine(), write=False),
        None,
        lambda: read_connection(getattr(app.state, "engine", None) or get_page_engine()),
    )
    errors.install(app)
    settings = get_settings()
    # The rate limit verifies credentials through the same sessions as the pages (tests bring their own).
    app.state.credentials = Credentials(
        lambda: session_scope(getattr(app.state, "engine", None) or get_engine(), write=False)
    )
    # The public limit's buckets: the rate limit's, and the express path's in front of the stack.
    public_limit = ratelimit_buckets(
        settings.rate_limit_public_per_minute,
        redis_url=settings.redis_url,
        prefix=settings.rate_limit_redis_prefix,
        kind="public",
    )
    app.add_middleware(
        RateLimit,
        public=public_limit,
        public_per_minute=settings.rate_limit_public_per_minute,
        login_per_minute=settings.rate_limit_login_per_minute,
        authenticated_per_minute=settings.rate_limit_authenticated_per_minute,
        # Shared by every API process through Redis when there is one (docker-compose runs two workers).
        redis_url=settings.redis_url,
        prefix=settings.rate_limit_redis_prefix,
    )
    # The label URIs first: scanned far more than anything else, they should not wait for every
    # other route to be tried (a third of the page's time when they came last).
    app.router.routes.insert(0, resolver.direct)
    app.include_router(resolver.router)
    for module in (
        auth,
        organisations,
        catalogue,
        lots,
        events,
        print_runs,
        codes,
        designations,
        designation_usage,
        certifications,
        recalls,
        inspections,
        admin,
        scans,
    ):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(product_images.router, prefix="/api/v1")
    app.include_router(epcis.router)
    for module in (portal, webhooks, transparency):  # the national portal's pulls, partner webhooks, the log
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(product_images.media)
    # The workspace's pages, one module per concept (those sharing an API router's name imported as *_pages).
    for area in (
        home,
        auth_pages,
        locations,
        harvests,
        shipments,
        transforms,
        stock,
        print_run_pages,
        packing,
        inspection_pages,
        lot_pages,
        organisation_pages,
        users,
        designation_pages,
        rights,
        dashboard,
        reports,
    ):
        app.include_router(area.router)
    web_errors.install(app)
    app.include_router(health.router)  # /livez, /readyz (and /healthz, its former name)
    # Outside every middleware, Starlette's own 500 answer included: every response gets the headers.
    # In front of them, a genuine label's page is answered without the stack (api/express.py).
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: Express(SecurityHeaders(build()), limit=public_limit)  # type: ignore[method-assign]
    return app


app = create_app()
