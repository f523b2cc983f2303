"""A real server started the product's way (no FORWARDED_ALLOW_IPS: no proxy configured) believes no
X-Forwarded-For nor X-Forwarded-Proto, and its body guard answers on the socket: 413 before a declared
50 MB body is sent, and as soon as a chunked body passes the limit."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.live import Server, demo_server

LOGINS_PER_MINUTE = 3
JSON_LIMIT = 1_000_000


@pytest.fixture(scope="module")
def server(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    with demo_server(
        databases.new(),
        tmp_path_factory.mktemp("proxy"),
        HYTRACE_RATE_LIMIT_LOGIN_PER_MINUTE=str(LOGINS_PER_MINUTE),
        HYTRACE_JSON_MAX_BODY_BYTES=str(JSON_LIMIT),
    ) as running:
        assert running.env["FORWARDED_ALLOW_IPS"] == ""  # as Dockerfile, docker-compose.yml and make run leave it
        yield running


def test_rotating_x_forwarded_for_does_not_escape_the_login_limit(server: Server) -> None:
    # given a process on the server's own host, guessing passwords with a new X-Forwarded-For each time
    with httpx.Client(base_url=server.base, timeout=10) as client:
        answers = [
            client.post(
                "/api/v1/auth/token",
                data={"username": f"guess-{n}@example.test", "password": "not-the-password"},
                headers={"X-Forwarded-For": f"198.51.100.{n + 1}"},
            )
            for n in range(LOGINS_PER_MINUTE + 3)
        ]
    # then its guesses are counted against its own address: past the limit, 429
    assert [a.status_code for a in answers[:LOGINS_PER_MINUTE]] == [401] * LOGINS_PER_MINUTE
    refused = answers[LOGINS_PER_MINUTE:]
    assert all(a.status_code == 429 and a.json()["code"] == "rate_limited" for a in refused), [
        (a.status_code, a.text) for a in refused
    ]


def test_a_forwarded_https_is_not_believed_either(server: Server) -> None:
    answer = httpx.get(f"{server.base}/healthz", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in answer.headers


def _connect(server: Server) -> socket.socket:
    address = urlsplit(server.base)
    sock = socket.create_connection((address.hostname, address.port), timeout=10)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """The server's answer: its head, and its body as far as Content-Length says."""
    data, deadline = b"", time.monotonic() + 10
    while time.monotonic() < deadline:
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
            None,
        )
        if length is not None and len(body) >= length:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_declared_50_mb_body_is_refused_before_it_is_sent(server: Server) -> None:
    # given a request that announces 50 MB and sends none of it
    with _connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/events/harvest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
        )
        # then the answer comes at once: 413 (a server reading the body first would wait for it)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b"payload_too_large" in answer


def test_a_chunked_body_is_refused_once_it_passes_the_limit(server: Server) -> None:
    chunk = b" " * 65536
    sent = 0
    with _connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/events/harvest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        # when it streams up to ten times the limit, stopping as soon as the server answers
        try:
            while sent < 10 * JSON_LIMIT and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _answer(sock)
    # then 413 came before the stream ended, once the limit was passed
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert JSON_LIMIT < sent < 10 * JSON_LIMIT
