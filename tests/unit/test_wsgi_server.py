"""The API server and its body limit, in process, over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from transcell.wsgi.server import HTTPService
from transcell.wsgi.sizelimit import BodySizeLimit

LIMIT = 4096


def _echo_length(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(len(body)).encode()]


def _fault(code: int, message: str) -> dict:
    return {"overLimit": {"code": code, "message": message}}


@pytest.fixture
def service():
    app = BodySizeLimit(_echo_length, LIMIT, {"/compute": _fault},
                        exempt=[("PUT", r"/image/v2/images/[^/]+/file")])
    svc = HTTPService(app, "127.0.0.1", 0, threads=2, client_timeout=5, header_timeout=5,
                      shutdown_timeout=1)
    svc.start()
    yield svc
    svc.stop()


def _exchange(port: int, raw: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _chunked(path: str, size: int, method: str = "POST") -> bytes:
    piece = b"x" * 1000
    out = (f"{method} {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
           "Connection: close\r\n\r\n").encode()
    sent = 0
    while sent < size:
        part = piece[:size - sent]
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
        sent += len(part)
    return out + b"0\r\n\r\n"


def test_chunked_body_over_the_limit_is_413_in_the_envelope(service):
    status, body = _exchange(service.port, _chunked("/compute/v2.1/servers", LIMIT * 5))
    assert status == 413
    assert json.loads(body)["overLimit"]["code"] == 413


def test_chunked_body_under_the_limit_reaches_the_app(service):
    status, body = _exchange(service.port, _chunked("/compute/v2.1/servers", LIMIT - 10))
    assert (status, body) == (200, str(LIMIT - 10).encode())


def test_declared_length_over_the_limit_is_413_and_unknown_prefixes_get_a_generic_body(service):
    big = b"y" * (LIMIT + 1)
    raw = (f"POST /other HTTP/1.1\r\nHost: t\r\nContent-Length: {len(big)}\r\n"
           "Connection: close\r\n\r\n").encode() + big
    status, body = _exchange(service.port, raw)
    assert status == 413 and json.loads(body)["error"]["code"] == 413


def test_image_uploads_are_exempt(service):
    status, body = _exchange(service.port,
                             _chunked("/image/v2/images/abc/file", LIMIT * 5, "PUT"))
    assert (status, body) == (200, str(LIMIT * 5).encode())


def test_stop_is_bounded_with_open_connections_and_a_stuck_request():
    release = threading.Event()

    def stuck(environ, start_response):
        release.wait(30)
        start_response("200 OK", [])
        return [b""]

    svc = HTTPService(stuck, "127.0.0.1", 0, threads=1, client_timeout=60, header_timeout=60,
                      shutdown_timeout=1)
    svc.start()
    socks = [socket.create_connection(("127.0.0.1", svc.port), timeout=5) for _ in range(200)]
    try:
        for sock in socks[1:]:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        socks[0].sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # occupies the only worker
        time.sleep(0.5)
        started = time.monotonic()
        svc.stop()
        assert time.monotonic() - started < 3
        assert not svc.thread.is_alive()
        for sock in socks[1:20]:
            sock.settimeout(5)
            assert sock.recv(10) == b""  # closed by the server, not left hanging
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", svc.port), timeout=2).close()
    finally:
        release.set()
        for sock in socks:
            sock.close()


def test_the_connection_stays_usable_after_a_413(service):
    big = b"z" * (LIMIT * 3)
    raw = (f"POST /compute/v2.1/servers HTTP/1.1\r\nHost: t\r\nContent-Length: {len(big)}"
           "\r\n\r\n").encode() + big
    raw += b"POST /compute/v2.1/servers HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
    raw += b"Connection: close\r\n\r\nabc"
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 413")
    assert data.count(b"HTTP/1.1 ") == 2 and data.endswith(b"\r\n\r\n3")
