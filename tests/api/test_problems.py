"""The one problem-document builder: the members every answer carries, its headers and its media type."""

from __future__ import annotations

import json
from typing import Any

from api.problems import problem


def _document(status: int, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    response = problem(status, "Something is wrong", "some_code", "/api/v1/things", **extra)
    return json.loads(response.body), dict(response.headers)


def test_a_problem_carries_type_title_status_detail_code_instance_and_its_extra_members() -> None:
    body, headers = _document(422, index=3)
    assert body == {
        "type": "https://hytrace.vn/problems/some_code",
        "title": "Unprocessable content",
        "status": 422,
        "detail": "Something is wrong",
        "code": "some_code",
        "index": 3,
        "instance": "/api/v1/things",
    }
    assert headers["content-type"] == "application/problem+json"
    assert "retry-after" not in headers and "www-authenticate" not in headers


def test_a_title_may_replace_the_statuss_usual_one_and_an_unknown_status_is_an_error() -> None:
    assert json.loads(problem(404, "x", "not_genuine", title="Not genuine").body)["title"] == "Not genuine"
    assert json.loads(problem(418, "x", "teapot").body)["title"] == "Error"
    assert "instance" not in json.loads(problem(418, "x", "teapot").body)


def test_a_retryable_answer_says_when_in_a_header_and_401_names_the_scheme() -> None:
    for status in (409, 429, 503):
        body, headers = _document(status, retry_after=5)
        assert (body["retry_after"], headers["retry-after"]) == (5, "5")
    _, headers = _document(422, retry_after=5)  # a 422 is not retried: no header
    assert "retry-after" not in headers
    _, headers = _document(401)
    assert headers["www-authenticate"] == "Bearer"
