"""Driving and inspecting moves through the public APIs and the operator CLI."""

from __future__ import annotations

import json
import os
import time
from typing import Any

COMPUTE = "/compute/v2.1"
ADMIN = "transcell-admin"
USER = "transcell-demo"


def image_id(cloud) -> str:
    return cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]["id"]


def network_id(cloud) -> str:
    resp = cloud.request("GET", "/network/v2.0/networks?name=private")
    return resp.json()["networks"][0]["id"]


def boot(cloud, name: str, flavor: str = "11", stopped: bool = False,
         tags: tuple[str, ...] = ("test",)) -> dict:
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": image_id(cloud),
                       "networks": [{"uuid": network_id(cloud)}], "tags": list(tags)}}
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=USER, json=body, version="2.52")
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    server = cloud.wait_status(server_id, "ACTIVE")
    if stopped:
        action(cloud, server_id, {"os-stop": None}, expect=202)
        server = cloud.wait_status(server_id, "SHUTOFF")
    return server


def action(cloud, server_id: str, body: dict, expect: int = 202, cloud_name: str = ADMIN,
           version: str | None = None):
    resp = cloud.request("POST", f"{COMPUTE}/servers/{server_id}/action", cloud=cloud_name,
                         json=body, version=version)
    assert resp.status_code == expect, resp.text
    return resp


def server(cloud, server_id: str, version: str = "2.53") -> dict:
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server_id}", version=version)
    assert resp.status_code == 200, resp.text
    return resp.json()["server"]


def wait_task_done(cloud, server_id: str, timeout: float = 120) -> dict:
    """Until no task runs on the server (a move ended, one way or the other)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server(cloud, server_id)
        if found["OS-EXT-STS:task_state"] is None and found["status"] not in (
                "RESIZE", "REVERT_RESIZE"):
            return found
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} still busy: {found['status']}")


def host_of(found: dict) -> str:
    return found["OS-EXT-SRV-ATTR:host"]


def cell_of_host(host: str) -> str:
    return host.split("-")[0]


def migrations(cloud, server_id: str) -> list[dict]:
    resp = cloud.request("GET", f"{COMPUTE}/os-migrations?instance_uuid={server_id}",
                         version="2.59")
    assert resp.status_code == 200, resp.text
    return resp.json()["migrations"]


def wait_migration(cloud, server_id: str, status: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = migrations(cloud, server_id)
        if found and found[0]["status"] == status:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"migration of {server_id} is {found[:1]}, not {status}")


def actions(cloud, server_id: str) -> dict[str, list[dict]]:
    """action name -> events (newest action of each name wins)."""
    listed = cloud.request("GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions",
                           version="latest").json()["instanceActions"]
    result: dict[str, list[dict]] = {}
    for item in reversed(listed):
        detail = cloud.request(
            "GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions/{item['request_id']}",
            version="latest").json()["instanceAction"]
        result[item["action"]] = detail["events"]
    return result


def hypervisors(cloud) -> dict[str, dict]:
    resp = cloud.request("GET", f"{COMPUTE}/os-hypervisors/detail", version="2.53")
    return {h["hypervisor_hostname"]: h for h in resp.json()["hypervisors"]}


def provider_allocations(cloud, host: str) -> dict[str, dict[str, int]]:
    rp = hypervisors(cloud)[host]["id"]
    resp = cloud.request("GET", f"/placement/resource_providers/{rp}/allocations",
                         headers={"OpenStack-API-Version": "placement 1.17"})
    assert resp.status_code == 200, resp.text
    return {c: a["resources"] for c, a in resp.json()["allocations"].items()}


def consumer_allocations(cloud, consumer: str) -> dict[str, Any]:
    resp = cloud.request("GET", f"/placement/allocations/{consumer}",
                         headers={"OpenStack-API-Version": "placement 1.28"})
    assert resp.status_code == 200, resp.text
    return resp.json()["allocations"]


def flavor_resources(flavor: dict) -> dict[str, int]:
    return {"VCPU": flavor["vcpus"], "MEMORY_MB": flavor["ram"], "DISK_GB": flavor["disk"]}


def flavor(cloud, flavor_id: str) -> dict:
    return cloud.request("GET", f"{COMPUTE}/flavors/{flavor_id}").json()["flavor"]


def locate(cloud, server_id: str) -> dict:
    return json.loads(cloud.transcell("instance", "locate", server_id, "--json",
                                      check=False).stdout)


def assert_audit_clean(cloud, attempts: int = 30) -> None:
    """Audit until clean: usage refreshes and notifications are asynchronous."""
    report: dict = {}
    for _ in range(attempts):
        proc = cloud.transcell("audit", "--json", check=False)
        report = json.loads(proc.stdout)
        if report["ok"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"audit found problems: {report['problems']}")


def notifications(cloud) -> list[dict]:
    path = os.path.join(cloud.state_dir, "notifications.log")
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def events_of(cloud, server_id: str) -> list[str]:
    return [n["event_type"] for n in notifications(cloud)
            if n["payload"]["nova_object.data"].get("uuid") == server_id]


def fault_dir(cloud) -> str:
    path = os.path.join(cloud.state_dir, "faults", "saga")
    os.makedirs(path, exist_ok=True)
    return path


def root_disk(cloud, server_id: str, host: str) -> str:
    for disk in locate(cloud, server_id)["disks"]:
        if disk["host"] == host and os.path.basename(disk["path"]) == "disk":
            return disk["path"]
    raise AssertionError(f"no root disk of {server_id} on {host}")


def wait_status(cloud, server_id: str, status: str, timeout: float = 120) -> dict:
    """Wait as the client does, then read the server at 2.53 (flavor names, hosts)."""
    cloud.wait_status(server_id, status, timeout=timeout)
    return server(cloud, server_id)


_INSPECTOR = """
import json, sys
from transcell.cli.main import build_parser, load_config
load_config(build_parser().parse_args(["audit", "--json", "--state-dir", sys.argv[1]]))
from transcell.audit import run_audit
from transcell.inspect import locate
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    try:
        answer = {"problems": run_audit()} if command == "audit" else locate(arg)
    except Exception as exc:
        answer = {"error": repr(exc)}
    print(json.dumps(answer, default=str), flush=True)
"""


class Inspector:
    """What ``transcell audit --json`` and ``transcell instance locate --json`` report,
    from one long-lived process running the same functions those commands run.

    A ``transcell`` command pays seconds of imports before it looks at anything; a test
    that audits after every one of hundreds of steps cannot afford that each time.
    """

    def __init__(self, state_dir: str) -> None:
        import subprocess
        import sys
        self.proc = subprocess.Popen([sys.executable, "-c", _INSPECTOR, state_dir],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def _ask(self, line: str, timeout: float = 120) -> dict:
        import select
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"the inspector did not answer {line!r} within {timeout}s"
        answer = json.loads(self.proc.stdout.readline())
        assert "error" not in answer, answer["error"]
        return answer

    def problems(self) -> list[dict]:
        return self._ask("audit")["problems"]

    def locate(self, server_id: str) -> dict:
        return self._ask(f"locate {server_id}")

    def assert_clean(self, attempts: int = 20, pause: float = 0.3) -> None:
        """Audit until clean: usage refreshes and notifications are asynchronous."""
        problems: list[dict] = []
        for _ in range(attempts):
            problems = self.problems()
            if not problems:
                return
            time.sleep(pause)
        raise AssertionError(f"audit found problems: {problems}")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
