"""The API under hostile connections: floods, slow clients, oversized bodies, shutdown.

Each test runs its own ``transcell up`` (one cell, one host) so the flood and
the short timeouts it configures touch no other test's cloud. All traffic goes
to 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import time

import pytest
import requests
from cloudclients import CloudProcess, start_cloud, stop_cloud

COMPUTE = "/compute/v2.1"
SMALL = ("--cells", "1", "--hosts-per-cell", "1")
FLOOD = 1500
# what a slowloris client sends before it stalls: a request line and part of the headers
PARTIAL = b"GET /compute/v2.1/servers HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def _raise_own_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the open-file hard limit ({hard}) is below the {needed} this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no thread count in /proc")


def _is_open(sock: socket.socket) -> bool:
    """True while the server has not closed the connection (nothing to read, no EOF)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _open_slow_connections(port: int, count: int, deadline: float) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        assert time.monotonic() < deadline, f"only {len(socks)} connections opened in time"
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(PARTIAL)
        sock.setblocking(False)
        socks.append(sock)
    return socks


def _trickle(socks: list[socket.socket], every: int) -> None:
    """One more header byte on every ``every``-th connection: never idle, never done."""
    for sock in socks[::every]:
        try:
            sock.send(b"x")
        except (BlockingIOError, OSError):
            pass


def _write_conf(state_dir: str, text: str) -> None:
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, "transcell.conf"), "w") as fh:
        fh.write(text)


def test_api_answers_during_a_slow_connection_flood_and_sigterm_stops_it(tmp_path):
    _raise_own_fd_limit(FLOOD + 512)
    state_dir = str(tmp_path / "state")
    proc = start_cloud(state_dir, SMALL)
    socks: list[socket.socket] = []
    try:
        cloud = CloudProcess(state_dir, proc.port)
        cloud.token()  # the cloud answers before the flood
        threads_before = _threads_of(proc.pid)

        socks = _open_slow_connections(proc.port, FLOOD, time.monotonic() + 120)
        _trickle(socks, 3)
        time.sleep(1)
        assert sum(_is_open(s) for s in socks) == FLOOD, "the server dropped flood connections"

        # while they are held: a new client logs in and lists servers, quickly
        started = time.monotonic()
        token = cloud.token("transcell-demo")  # a fresh login: only admin's token is cached
        servers = requests.get(f"{cloud.base_url}{COMPUTE}/servers", timeout=30,
                               headers={"X-Auth-Token": token})
        elapsed = time.monotonic() - started
        assert servers.status_code == 200, servers.text
        assert servers.json() == {"servers": []}
        assert elapsed < 5, f"login and list took {elapsed:.1f}s under the flood"

        # slow clients cost no thread: the old server had one per connection
        assert _threads_of(proc.pid) - threads_before < 50
        _trickle(socks, 3)
        assert sum(_is_open(s) for s in socks) == FLOOD

        # SIGTERM with every flood connection still open
        stop_started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except Exception:
            proc.kill()
            raise AssertionError("transcell up did not exit within 20s of SIGTERM") from None
        took = time.monotonic() - stop_started
        print(f"flood of {FLOOD}: login and list in {elapsed:.2f}s, stopped in {took:.2f}s")
        assert code == 0, f"transcell up exited with {code}"
        assert took < 10, f"transcell up took {took:.1f}s to stop"
        # it closed them rather than leaving them to the kernel's timeouts
        assert not any(_is_open(s) for s in socks[:50])
    finally:
        for sock in socks:
            sock.close()
        if proc.poll() is None:
            stop_cloud(proc)


@pytest.fixture(scope="module")
def strict_cloud(tmp_path_factory):
    """A cloud with short client timeouts, set the way an operator would, in transcell.conf."""
    state_dir = str(tmp_path_factory.mktemp("strict") / "state")
    _write_conf(state_dir, "[wsgi]\nclient_socket_timeout = 2\nheader_timeout = 4\n"
                           "max_request_body_size = 65536\n")
    proc = start_cloud(state_dir, SMALL)
    yield CloudProcess(state_dir, proc.port)
    stop_cloud(proc)


def _closed_within(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closed ``sock`` (EOF or reset), or None within ``limit``."""
    started = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - started < limit:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None


def test_a_connection_that_stalls_in_its_headers_is_closed(strict_cloud):
    sock = socket.create_connection(("127.0.0.1", strict_cloud.port), timeout=5)
    try:
        sock.sendall(PARTIAL)
        took = _closed_within(sock, 15)
        assert took is not None, "a stalled connection was still open after 15s"
        assert took >= 1.5, f"closed after {took:.1f}s, before its 2s timeout"
    finally:
        sock.close()


def test_a_connection_trickling_its_headers_is_closed(strict_cloud):
    sock = socket.create_connection(("127.0.0.1", strict_cloud.port), timeout=5)
    started = time.monotonic()
    closed = False
    try:
        sock.sendall(PARTIAL)
        sock.setblocking(False)  # _is_open must look, not wait
        # a byte every half second: never idle for the 2s idle timeout
        while time.monotonic() - started < 15:
            try:
                sock.sendall(b"x")
            except OSError:
                closed = True
                break
            time.sleep(0.5)
            if not _is_open(sock):
                closed = True
                break
        took = time.monotonic() - started
        assert closed, "a connection trickling headers was still open after 15s"
        assert 3.5 <= took <= 12, f"closed after {took:.1f}s; its header deadline is 4s"
    finally:
        sock.close()


def _servers(cloud) -> list[str]:
    return sorted(s["id"] for s in cloud.request("GET", f"{COMPUTE}/servers").json()["servers"])


def test_oversized_json_bodies_get_413_in_each_apis_envelope(strict_cloud):
    cloud = strict_cloud
    before_servers = _servers(cloud)
    before_networks = cloud.request("GET", "/network/v2.0/networks").json()["networks"]
    before_images = cloud.request("GET", "/image/v2/images").json()["images"]
    big = "x" * 100_000  # over the 64 KiB this cloud allows a JSON body

    resp = cloud.request("POST", f"{COMPUTE}/servers", json={
        "server": {"name": "big", "flavorRef": "1", "imageRef": before_images[0]["id"],
                   "networks": "none", "metadata": {"k": big}}})
    assert resp.status_code == 413, resp.text
    fault = resp.json()["overLimit"]
    assert fault["code"] == 413 and "65536 bytes" in fault["message"]

    # chunked, no Content-Length: read only up to the limit and refused the same way
    def chunks():
        for _ in range(8):
            yield json.dumps({"pad": big}).encode()[:20_000]

    resp = cloud.request("POST", f"{COMPUTE}/servers", data=chunks(),
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 413, resp.text
    assert resp.json()["overLimit"]["code"] == 413

    resp = cloud.request("POST", "/network/v2.0/networks",
                         json={"network": {"name": "big", "description": big}})
    assert resp.status_code == 413, resp.text
    assert resp.json()["NeutronError"]["message"].startswith("Request body is larger")

    resp = cloud.request("POST", "/image/v2/images", json={"name": "big", "description": big})
    assert resp.status_code == 413, resp.text
    assert resp.json()["code"].startswith("413")

    resp = requests.post(f"{cloud.base_url}/identity/v3/auth/tokens", data=big, timeout=30,
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"]["code"] == 413

    # nothing changed, and the same connection-less clients still get served
    assert _servers(cloud) == before_servers
    assert cloud.request("GET", "/network/v2.0/networks").json()["networks"] == before_networks
    assert cloud.request("GET", "/image/v2/images").json()["images"] == before_images


def test_image_data_uploads_are_not_held_to_the_json_limit(strict_cloud):
    cloud = strict_cloud
    image = cloud.request("POST", "/image/v2/images", json={
        "name": "bigger-than-json", "disk_format": "raw", "container_format": "bare"})
    assert image.status_code == 201, image.text
    data = os.urandom(300_000)  # several times the JSON limit
    resp = cloud.request("PUT", f"/image/v2/images/{image.json()['id']}/file", data=data,
                         headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    back = cloud.request("GET", f"/image/v2/images/{image.json()['id']}/file")
    assert back.status_code == 200 and back.content == data
