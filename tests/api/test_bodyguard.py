"""The body guard (api/bodyguard.py): a size limit per kind of route, 413 before reading by
Content-Length and at the limit of a streamed body, and a JSON nesting-depth limit before any parser."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlmodel import Session

from api.bodyguard import UPLOAD_MAX_BYTES, BodyGuard, json_depth, kind_of
from tests import factories as f
from tests.api.helpers import assert_problem, party, snapshot
from tests.api.test_epcis import _doc, _harvest, _master
from trace.platform.config import get_settings

MiB = 1024 * 1024


def _nested(depth: int, inner: Any = 1) -> Any:
    value = inner
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _deep_text(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


class Recorder:
    """An ASGI client side: a body in chunks (counting what the server read) and the answer sent back."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.read, self.messages = chunks, 0, []  # type: ignore[var-annotated]

    async def receive(self) -> dict[str, Any]:
        chunk = next(self.chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(next(m["status"] for m in self.messages if m["type"] == "http.response.start"))

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"))


async def _never(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the application must not be called")


def _scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
    }


def test_a_50_mb_declared_body_is_refused_413_before_a_byte_is_read() -> None:
    # given a client announcing 50 MB of JSON to an API route
    sent = Recorder(iter([b"x" * MiB] * 50))
    scope = _scope(
        "/api/v1/events/harvest",
        {"content-type": "application/json", "content-length": str(50 * MiB)},
    )
    # when the guard sees it
    asyncio.run(BodyGuard(_never)(scope, sent.receive, sent.send))
    # then 413 problem, and not one byte of the body was read
    assert sent.status == 413 and sent.body["code"] == "payload_too_large"
    assert sent.body["max_bytes"] == get_settings().json_max_body_bytes
    assert sent.read == 0


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    # given a client streaming JSON without a length, 64 KiB at a time, without end
    endless = Recorder(b"[" * 65536 for _ in iter(int, 1))
    scope = _scope(
        "/api/v1/events/harvest",
        {"content-type": "application/json", "transfer-encoding": "chunked"},
    )
    asyncio.run(BodyGuard(_never)(scope, endless.receive, endless.send))
    # then 413 once one chunk past the limit has come, and no more is read
    limit = get_settings().json_max_body_bytes
    assert endless.status == 413 and endless.body["code"] == "payload_too_large"
    assert limit < endless.read <= limit + 65536


def test_a_streamed_body_past_the_json_limit_is_413_through_the_app(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYTRACE_JSON_MAX_BODY_BYTES", "100000")
    get_settings.cache_clear()
    _org, headers = party(session)
    response = client.post(
        "/api/v1/events/harvest",
        content=(b" " * 50_000 for _ in range(3)),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")


def test_a_100000_deep_json_body_is_422_not_500_on_an_api_route(client: TestClient, session: Session) -> None:
    _org, headers = party(session)
    before = snapshot(session)
    response = client.post(
        "/api/v1/events/harvest",
        content=_deep_text(100_000),
        headers={**headers, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 422, "json_too_deep")
    assert body["max_depth"] == get_settings().json_max_depth
    assert snapshot(session) == before


def test_a_100000_deep_document_is_422_not_500_on_epcis_capture(client: TestClient, session: Session) -> None:
    _grower, h, _area, _product, _ = _master(session)
    before = snapshot(session)
    # even sent as something else than JSON: the capture parses whatever it is sent
    for media_type in ("application/ld+json", "text/plain"):
        response = client.post("/epcis/capture", content=_deep_text(100_000), headers={**h, "Content-Type": media_type})
        assert_problem(response, 422, "json_too_deep")
    assert snapshot(session) == before


def test_a_document_nested_to_the_limit_is_captured(client: TestClient, session: Session) -> None:
    # given a harvest carrying an extension nested to the depth limit (the document itself adds 4 levels:
    # document, epcisBody, eventList, event)
    _grower, h, area, product, _ = _master(session)
    limit = get_settings().json_max_depth
    event = _harvest(product, area, "EP-DEEP")
    doc = _doc(event)
    doc["@context"] = [*doc.get("@context", []), {"ex": "https://example.com/ns/"}]
    doc["epcisBody"]["eventList"][0]["ex:deep"] = _nested(limit - 4)
    text = json.dumps(doc).encode()
    assert json_depth(text) == limit
    response = client.post("/epcis/capture", content=text, headers={**h, "Content-Type": "application/ld+json"})
    assert response.status_code == 201, response.text
    # and one level more is refused
    doc["epcisBody"]["eventList"][0]["ex:deep"] = _nested(limit - 3)
    deeper = client.post("/epcis/capture", json=doc, headers=h)
    assert_problem(deeper, 422, "json_too_deep")


def test_an_api_body_at_the_depth_limit_reaches_the_route(client: TestClient, session: Session) -> None:
    _org, headers = party(session)
    limit = get_settings().json_max_depth
    at_limit = client.post("/api/v1/events/harvest", json={"note": _nested(limit - 1)}, headers=headers)
    assert_problem(at_limit, 422, "validation_error")  # the route's own answer: a note is a string
    past = client.post("/api/v1/events/harvest", json={"note": _nested(limit)}, headers=headers)
    assert_problem(past, 422, "json_too_deep")


def test_an_image_larger_than_the_json_limit_is_taken_by_the_upload_route(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a JSON limit of 20,000 bytes and a 60 KB photo
    monkeypatch.setenv("HYTRACE_JSON_MAX_BODY_BYTES", "20000")
    get_settings.cache_clear()
    org, headers = party(session)
    product = f.product(session, org)
    session.commit()
    noise = random.Random(7).randbytes(160 * 120 * 3)
    image = Image.frombytes("RGB", (160, 120), noise)
    import io

    out = io.BytesIO()
    image.save(out, "PNG")
    data = out.getvalue()
    assert len(data) > 20_000
    # when it is uploaded, then it is taken (uploads have their own limit)
    put = client.put(
        f"/api/v1/products/{product.id}/image",
        content=data,
        headers={**headers, "Content-Type": "image/png"},
    )
    assert put.status_code == 200, put.text
    # while a JSON body of that size is refused
    big = client.post(
        "/api/v1/events/harvest",
        content=b" " * len(data) + b"{}",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert_problem(big, 413, "payload_too_large")


def test_an_upload_past_its_limit_is_refused_by_content_length(client: TestClient, session: Session) -> None:
    org, headers = party(session)
    product = f.product(session, org)
    session.commit()
    response = client.put(
        f"/api/v1/products/{product.id}/image",
        content=b"\0" * (UPLOAD_MAX_BYTES + 1),
        headers={**headers, "Content-Type": "image/png"},
    )
    assert_problem(response, 413, "payload_too_large")


def test_a_form_too_large_gets_a_page_in_vietnamese(client: TestClient) -> None:
    answer = client.post(
        "/login",
        content=b"email=" + b"a" * (2 * MiB),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": "vi"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert "Nội dung gửi lên quá lớn" in answer.text


def test_kinds_of_routes() -> None:
    assert kind_of("/epcis/capture") == "epcis"
    assert kind_of("/api/v1/products/12/image") == kind_of("/app/verify/photo") == "upload"
    assert kind_of("/api/v1/events/batch") == kind_of("/epcis/events") == "api"
    assert kind_of("/login") == kind_of("/app/harvest") == "form"


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["[[[[[[", "{{{{"]', 1),  # brackets inside strings do not count
        (b'["a\\"[[[[", [2]]', 2),  # an escaped quote does not end the string
        (b'["a\\\\", [[3]]]', 3),  # an escaped backslash does: the quote after it ends the string
        (b'{"\\u005b": "]]]"}', 1),
        (b"[[[[", 4),  # unterminated: as deep as a parser would go before failing
        (b'[[["abc', 3),  # an unclosed string adds nothing
    ],
)
def test_the_depth_scan_reads_strings_as_json_does(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\u1ea1\n'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text('[]{}"\\x'), inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_the_depth_scan_agrees_with_the_parser_on_any_json(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert json_depth(text.encode()) == _depth(value)
