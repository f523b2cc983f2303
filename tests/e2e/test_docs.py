"""The API's interactive docs work in a real browser with no network beyond this server: Swagger UI and
ReDoc are served by us, under a CSP that names no other origin, and nothing they load breaks it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.live import Server, demo_server


@pytest.fixture(scope="module")
def server(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    with demo_server(databases.new(), tmp_path_factory.mktemp("docs")) as running:
        yield running


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")])
def test_the_api_docs_render_offline_under_their_policy(browser: Any, server: Server, path: str, rendered: str) -> None:
    # given a browser that may reach nothing but this server, and that reports every policy violation
    context = browser.new_context()
    elsewhere: list[str] = []
    ours = urlsplit(server.base).netloc

    def only_ours(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http:", "https:")) and urlsplit(url).netloc != ours:
            elsewhere.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", only_ours)
    page = context.new_page()
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    try:
        # when the docs page opens
        page.goto(server.base + path)
        page.wait_for_selector(rendered, timeout=30_000)
        # then it lists the API's operations and asked for nothing elsewhere; its policy stopped nothing
        # it needs (ReDoc's own "powered by" logo, an image on its makers' host, is kept out, as it should be)
        assert page.locator(rendered).count() > 20
        assert elsewhere == []
        violations = page.evaluate("window.__violations")
        assert all(v.startswith("img-src https://cdn.redoc.ly/") for v in violations), violations
    finally:
        context.close()
