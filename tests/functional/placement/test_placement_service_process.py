"""``transcell placement``: the real Placement as its own process on PostgreSQL,
reached by URL through the client's HTTP transports."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import provisioned
import pytest
import requests
from oslo_config import cfg

from transcell import service_auth
from transcell.deploy.databases import POSTGRESQL
from transcell.placement import client as placement_client

pytestmark = [pytest.mark.backends, pytest.mark.distributed]

START_TIMEOUT = 120.0


@dataclass
class Running:
    url: str
    proc: subprocess.Popen
    output: list[str]


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _start(config: Path) -> Running:
    proc = subprocess.Popen([sys.executable, "-m", "transcell.cli.main", "placement",
                             "--config-file", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    output: list[str] = []
    url = None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        output.append(line)
        if line.startswith("transcell placement: http://"):
            url = line.split(": ", 1)[1].strip()
        if line == "ready":
            break
    if url is None or not output or output[-1] != "ready":
        proc.kill()
        proc.wait(10)
        pytest.fail("placement did not come up:\n" + "\n".join(output))
    return Running(url, proc, output)


def _stop(running: Running) -> int:
    running.proc.send_signal(signal.SIGTERM)
    try:
        return running.proc.wait(30)
    except subprocess.TimeoutExpired:
        running.proc.kill()
        running.proc.wait(10)
        raise


@pytest.fixture
def placement_process(tmp_path: Path) -> Iterator[Running]:
    maker = provisioned.Provisioner()
    try:
        db = maker.create(POSTGRESQL, "placement")
        config = tmp_path / "placement.conf"
        config.write_text(f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n"
                          "[placement]\nbind_host = 127.0.0.1\nbind_port = 0\n"
                          f"database_connection = {db.url}\n")
        running = _start(config)
        try:
            yield running
        finally:
            if running.proc.poll() is None:
                _stop(running)
    finally:
        maker.drop_all()


def test_placement_process_serves_providers_over_http(placement_process: Running,
                                                     tmp_path: Path) -> None:
    url = placement_process.url
    root = requests.get(url + "/", timeout=10)
    assert root.status_code == 200
    assert root.json()["versions"][0]["id"] == "v1.0"
    # noauth2 still wants a token for anything but the version document
    assert requests.get(url + "/resource_providers", timeout=10).status_code == 401

    client = placement_client.PlacementClient(placement_client.HTTPTransport(url, "admin:admin"))
    rp = str(uuid.uuid4())
    client.ensure_resource_provider(rp, f"host-{rp[:8]}")
    client.set_inventory(rp, {"VCPU": {"total": 4}, "MEMORY_MB": {"total": 2048}})

    assert rp in {p["uuid"] for p in client.list_providers()}
    assert client.get_inventories(rp)["VCPU"]["total"] == 4

    # the same Placement through a keystoneauth session: the token comes from the
    # session's auth plugin, not from the transport
    auth_file = tmp_path / "service.conf"
    auth_file.write_text(f"[service_auth]\nauth_type = admin_token\ntoken = admin:admin\n"
                         f"endpoint = {url}\n")
    conf = cfg.ConfigOpts()
    conf(["--config-file", str(auth_file)], project="transcell", default_config_files=[])
    session = service_auth.session(conf)
    via_session = placement_client.PlacementClient(
        placement_client.SessionTransport(session, url))
    assert rp in {p["uuid"] for p in via_session.list_providers()}
    via_session.delete_provider(rp)
    assert client.get_provider(rp) is None
    service_auth.reset()


def test_placement_process_stops_cleanly_on_sigterm(placement_process: Running) -> None:
    assert _stop(placement_process) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(placement_process.url + "/", timeout=5)


def test_placement_process_with_keystone_reads_its_authtoken_section(tmp_path: Path) -> None:
    """auth_strategy = keystone: the file's [keystone_authtoken] configures the filter
    (a tokenless request is sent to the Keystone named there); the version document
    stays public."""
    config = tmp_path / "placement.conf"
    config.write_text(f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\n"
                      "[identity]\nauth_strategy = keystone\n"
                      "[placement]\nbind_port = 0\n"
                      "[keystone_authtoken]\n"
                      "www_authenticate_uri = http://127.0.0.1:9/identity-of-this-test\n"
                      "auth_type = password\nauth_url = http://127.0.0.1:9/identity\n"
                      "username = placement\npassword = x\nproject_name = service\n")
    running = _start(config)
    try:
        assert requests.get(running.url + "/", timeout=10).status_code == 200
        refused = requests.get(running.url + "/resource_providers", timeout=10)
        assert refused.status_code == 401
        assert "identity-of-this-test" in refused.headers.get("WWW-Authenticate", "")
        forged = requests.get(running.url + "/resource_providers", timeout=30,
                              headers={"X-Auth-Token": "admin:admin", "X-Roles": "admin"})
        assert forged.status_code in (401, 503)
    finally:
        assert _stop(running) == 0
