"""The express path (api/express.py): a label's page answered in front of the middleware stack must be the
answer the stack gives, byte for byte but for the scan's own uid and time, and everything it does not take
must still reach the stack, counted once by the rate limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from api import main
from api.public import PublicPages
from api.routes import resolver
from tests.api.test_public_page import HTML, JSON, path_of
from tests.conftest import SessionBuffer, app_sharing
from tests.trace.test_origin import Chain, build_chain
from trace.platform.config import get_settings


@pytest.fixture
def chain(session: Session) -> Chain:
    made = build_chain(session)
    session.commit()
    return made


@pytest.fixture
def stack_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The label requests the resolver's route (inside the stack) answered."""
    calls: list[str] = []
    resolve = resolver.resolve

    async def counted(request: Any, rest: str) -> Any:
        calls.append(request.url.path)
        return await resolve(request, rest)

    monkeypatch.setattr(resolver, "resolve", counted)
    return calls


def _app(session: Session, *, express: bool, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    app = app_sharing(session)
    app.state.public = PublicPages(lambda: nullcontext(session), SessionBuffer(session))
    if not express:
        # The stack as it was before the express path: built without it.
        build = app.build_middleware_stack
        with monkeypatch.context() as patch:
            patch.setattr(main, "Express", lambda inner, limit: inner)
            app.middleware_stack = build()
    return app


@pytest.fixture
def both(session: Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, TestClient]]:
    with (
        TestClient(_app(session, express=True, monkeypatch=monkeypatch)) as fast,
        TestClient(_app(session, express=False, monkeypatch=monkeypatch)) as stack,
    ):
        yield fast, stack


def _same(body: bytes) -> bytes:
    """A page without what only this scan has: its uid (the place button's handle) and the time of a first scan."""
    body = re.sub(rb'data-scan="[0-9a-f]{32}"', b'data-scan=""', body)
    body = re.sub(rb'"first_at":"[^"]*"', b'"first_at":""', body)
    return re.sub(rb"\b\d\d:\d\d\b", b"hh:mm", body)


def test_a_labels_page_from_the_express_path_is_the_stacks_answer(
    both: tuple[TestClient, TestClient], chain: Chain, stack_calls: list[str]
) -> None:
    fast, stack = both
    path = path_of(chain)
    asks: list[tuple[str, str, dict[str, str]]] = [
        ("GET", path, HTML),
        ("GET", path, JSON),
        ("GET", path + "?lang=en", HTML),
        ("GET", path, {**HTML, "accept-language": "en-GB,en;q=0.8"}),
        ("HEAD", path, HTML),
        ("GET", path, {"user-agent": "Mozilla/5.0 (Linux; Android 14) Mobile", "sec-ch-ua-mobile": "?1"}),
        ("GET", path, {}),
        ("GET", "https://testserver" + path, HTML),  # over https: with Strict-Transport-Security
        ("GET", "https://testserver" + path, JSON),
    ]
    for method, url, headers in asks:
        before = len(stack_calls)
        ours = fast.request(method, url, headers=headers)
        assert len(stack_calls) == before, f"{method} {url} {headers} went down the stack"
        theirs = stack.request(method, url, headers=headers)
        assert len(stack_calls) == before + 1
        assert (ours.status_code, ours.headers.items()) == (theirs.status_code, theirs.headers.items()), url
        assert _same(ours.content) == _same(theirs.content), (method, url, headers)
        assert ours.status_code == 200
        assert ("strict-transport-security" in ours.headers) == url.startswith("https:")
    # A copy still fresh: the same 304 with the same headers, and still a scan on both.
    etag = fast.get(path, headers=HTML).headers["etag"]
    stack.get(path, headers=HTML)
    before = len(stack_calls)
    ours = fast.get(path, headers={**HTML, "if-none-match": etag})
    theirs = stack.get(path, headers={**HTML, "if-none-match": etag})
    assert len(stack_calls) == before + 1
    assert (ours.status_code, ours.headers.items(), ours.content) == (304, theirs.headers.items(), theirs.content)
    # Every GET above was a scan on each side (the HEAD was not): the page says so alike.
    scanned = [p.app.state.public.buffer.pending(lot_id=chain.lot.id) for p in (fast, stack)]  # type: ignore[attr-defined]
    assert len(scanned[0]) == len(scanned[1]) == len(asks) - 1 + 2


def test_what_the_express_path_does_not_take_goes_down_the_stack(
    client: TestClient, chain: Chain, stack_calls: list[str]
) -> None:
    path = path_of(chain)
    for url, headers, status in (
        (path + "?linkType=all", {}, 200),  # a linkset
        (path, {"accept": "application/linkset+json"}, 200),
        (path + "?linkType=gs1:epcis", {}, 200),
        (path + "?lang=en&geo=20.9,106.0", HTML, 200),  # a shared place
        (path, {**HTML, "authorization": "Bearer not-a-token"}, 200),
        (f"/01/{chain.lot.gtin}", HTML, 200),  # the product's page
        (f"/01/{chain.lot.gtin}/10/NO-SUCH-LOT/21/NOSUCH", HTML, 404),  # not genuine
        ("/01/12345/10/x", JSON, 422),  # not a Digital Link
        (path + "?lang=" + "x" * 3 + "%00", HTML, 200),  # a query it does not read
    ):
        before = len(stack_calls)
        answer = client.get(url, headers=headers)
        assert answer.status_code == status, (url, answer.text[:300])
        assert len(stack_calls) == before + 1, url
    answer = client.post(path, headers=HTML)
    assert answer.status_code == 405


def test_a_request_handed_to_the_stack_spends_one_token_of_the_public_limit(
    monkeypatch: pytest.MonkeyPatch, session: Session, chain: Chain
) -> None:
    monkeypatch.setenv("HYTRACE_RATE_LIMIT_PUBLIC_PER_MINUTE", "6")
    get_settings.cache_clear()
    app = app_sharing(session)
    with TestClient(app) as limited:
        # Not genuine: taken by the express path's limit, then answered by the stack, which must not count it again.
        unknown = f"/01/{chain.lot.gtin}/10/NO-SUCH-LOT/21/NOSUCH"
        codes = [limited.get(unknown, headers=HTML).status_code for _ in range(3)]
        codes += [limited.get(path_of(chain), headers=HTML).status_code for _ in range(3)]
        codes += [limited.get(path_of(chain), headers=HTML).status_code, limited.get(unknown).status_code]
    assert codes == [404] * 3 + [200] * 3 + [429, 429]
    over = TestClient(app).get(path_of(chain))
    assert over.status_code == 429 and over.headers["retry-after"] and over.headers["x-content-type-options"]
