"""Clients of a running transcell cloud, for end-to-end tests: openstacksdk,
plain HTTP with a token, the ``openstack`` CLI and the ``transcell`` CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import yaml


@dataclass
class CloudProcess:
    state_dir: str
    port: int
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def clouds_yaml(self) -> str:
        return os.path.join(self.state_dir, "clouds.yaml")

    def credentials(self, cloud: str) -> dict[str, Any]:
        with open(self.clouds_yaml) as fh:
            return yaml.safe_load(fh)["clouds"][cloud]["auth"]

    def sdk(self, cloud: str = "transcell-admin"):
        import openstack
        from openstack import config as occ

        config = occ.OpenStackConfig(config_files=[self.clouds_yaml])
        return openstack.connection.Connection(config=config.get_one(cloud=cloud))

    def token(self, cloud: str = "transcell-admin") -> str:
        cached = self._tokens.get(cloud)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        auth = self.credentials(cloud)
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": auth["username"], "password": auth["password"],
                "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": auth["project_name"],
                                  "domain": {"name": "Default"}}}}}
        resp = requests.post(f"{self.base_url}/identity/v3/auth/tokens", json=body, timeout=30)
        resp.raise_for_status()
        token = resp.headers["X-Subject-Token"]
        self._tokens[cloud] = (token, time.monotonic() + 600)
        return token

    def request(self, method: str, path: str, cloud: str = "transcell-admin",
                version: str | None = None, token: str | None = "auto",
                **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token == "auto":
            token = self.token(cloud)
        if token:
            headers["X-Auth-Token"] = token
        if version:
            headers["OpenStack-API-Version"] = f"compute {version}"
        return requests.request(method, f"{self.base_url}{path}", headers=headers,
                                timeout=60, **kwargs)

    def openstack(self, *args: str, cloud: str = "transcell-admin", check: bool = True
                  ) -> subprocess.CompletedProcess:
        env = dict(os.environ, OS_CLIENT_CONFIG_FILE=self.clouds_yaml, OS_CLOUD=cloud)
        exe = os.path.join(os.path.dirname(sys.executable), "openstack")
        proc = subprocess.run([exe, *args], env=env, capture_output=True, text=True,
                              timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def openstack_json(self, *args: str, cloud: str = "transcell-admin") -> Any:
        return json.loads(self.openstack(*args, "-f", "json", cloud=cloud).stdout)

    def transcell(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "transcell.cli.main", *args,
                               "--state-dir", self.state_dir],
                              capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"transcell {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def wait_status(self, server_id: str, status: str, cloud: str = "transcell-admin",
                    timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        server: dict = {}
        while time.monotonic() < deadline:
            resp = self.request("GET", f"/compute/v2.1/servers/{server_id}", cloud=cloud)
            resp.raise_for_status()
            server = resp.json()["server"]
            if server["status"] == status and server.get("OS-EXT-STS:task_state") is None:
                return server
            if server["status"] == "ERROR" and status != "ERROR":
                raise AssertionError(f"server went to ERROR: {server.get('fault')}")
            time.sleep(0.2)
        raise AssertionError(f"server {server_id} stuck in {server.get('status')} "
                             f"(wanted {status})")

    def wait_gone(self, server_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.request("GET", f"/compute/v2.1/servers/{server_id}")
            if resp.status_code == 404:
                return
            time.sleep(0.2)
        raise AssertionError(f"server {server_id} was not deleted")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: ``TRANSCELL_TEST_LAYOUT=distributed`` runs every test that starts a cloud against
#: ``transcell up --distributed`` (``distributed-netns`` adds ``--netns``) instead of
#: the embedded cloud: the same tests, the other layout.
LAYOUT = os.environ.get("TRANSCELL_TEST_LAYOUT", "embedded")
LAYOUT_FLAGS = {"embedded": (), "distributed": ("--distributed",),
                "distributed-netns": ("--distributed", "--netns")}


def layout_flags(layout: str | None = None) -> tuple[str, ...]:
    layout = layout or LAYOUT
    if layout not in LAYOUT_FLAGS:
        raise ValueError(f"TRANSCELL_TEST_LAYOUT={layout}: one of {sorted(LAYOUT_FLAGS)}")
    return LAYOUT_FLAGS[layout]


def start_cloud(state_dir: str, extra: tuple[str, ...] = (), port: int | None = None,
                layout: str | None = None, program: tuple[str, ...] | None = None
                ) -> subprocess.Popen:
    """``transcell up`` (or ``program``'s ``up``, taking the same arguments) until ready."""
    port = port or free_port()
    flags = layout_flags(layout)
    program = program or (sys.executable, "-m", "transcell.cli.main")
    cmd = [*program, "up", "--state-dir", state_dir, "--port", str(port), *flags, *extra]
    os.makedirs(state_dir, exist_ok=True)
    log = open(os.path.join(state_dir, f"up-{port}.log"), "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    proc.distributed = bool(flags)  # type: ignore[attr-defined]
    # a distributed first start provisions databases and Keystone
    deadline = time.monotonic() + (400 if flags else 120)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "ready":
            proc.port = port  # type: ignore[attr-defined]
            proc.state_dir = state_dir  # type: ignore[attr-defined]
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    log.close()
    with open(log.name) as fh:
        raise RuntimeError(f"transcell up did not become ready:\n{fh.read()[-4000:]}")


def stop_cloud(proc: subprocess.Popen, purge: bool = True) -> None:
    """Stop the cloud; a distributed one also drops its databases, vhosts and
    namespaces unless ``purge`` is false (a test that restarts on the same state)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if purge and getattr(proc, "distributed", False):
        from transcell.deploy.launcher import purge as purge_deployment
        purge_deployment(proc.state_dir)  # type: ignore[attr-defined]
