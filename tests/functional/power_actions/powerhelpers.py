"""Driving a server's everyday actions through the public Compute API."""

from __future__ import annotations

import json
import time
from typing import Any

COMPUTE = "/compute/v2.1"
ADMIN = "transcell-admin"
USER = "transcell-demo"
OTHER = "transcell-alt"

#: Seconds a deleted server stays restorable in the tests' cloud; its conductor looks
#: for expired ones every second.
RECLAIM_SECONDS = 8


def image_id(cloud) -> str:
    return cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]["id"]


def network_id(cloud) -> str:
    resp = cloud.request("GET", "/network/v2.0/networks?name=private")
    return resp.json()["networks"][0]["id"]


def boot(cloud, name: str, cloud_name: str = USER, zone: str | None = None) -> dict:
    body = {"server": {"name": name, "flavorRef": "1", "imageRef": image_id(cloud),
                       "networks": [{"uuid": network_id(cloud)}]}}
    if zone:
        body["server"]["availability_zone"] = zone
    resp = cloud.request("POST", f"{COMPUTE}/servers", cloud=cloud_name, json=body)
    assert resp.status_code == 202, resp.text
    return cloud.wait_status(resp.json()["server"]["id"], "ACTIVE")


def act(cloud, server_id: str, body: Any, cloud_name: str = USER,
        version: str | None = None):
    return cloud.request("POST", f"{COMPUTE}/servers/{server_id}/action", cloud=cloud_name,
                         json=body, version=version)


def ok(cloud, server_id: str, body: Any, expect: int = 202, **kwargs):
    resp = act(cloud, server_id, body, **kwargs)
    assert resp.status_code == expect, resp.text
    return resp


def show(cloud, server_id: str, version: str = "2.73", cloud_name: str = ADMIN) -> dict:
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server_id}", cloud=cloud_name,
                         version=version)
    assert resp.status_code == 200, resp.text
    return resp.json()["server"]


def error(resp, status: int, envelope: str) -> str:
    """The Nova error body's message, once its status and envelope are as expected."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert list(body) == [envelope], body
    assert body[envelope]["code"] == status
    return body[envelope]["message"]


def events(cloud, server_id: str) -> list[dict]:
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions",
                         version="2.58")
    assert resp.status_code == 200, resp.text
    return resp.json()["instanceActions"]


def action_events(cloud, server_id: str, request_id: str) -> list[dict]:
    resp = cloud.request("GET", f"{COMPUTE}/servers/{server_id}/os-instance-actions/"
                         f"{request_id}", version="2.58")
    assert resp.status_code == 200, resp.text
    return resp.json()["instanceAction"]["events"]


def wait_events_done(cloud, server_id: str, request_id: str, timeout: float = 30
                     ) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = action_events(cloud, server_id, request_id)
        if found and all(e["finish_time"] for e in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def force_delete(cloud, server_id: str) -> None:
    resp = act(cloud, server_id, {"forceDelete": None}, cloud_name=ADMIN)
    if resp.status_code == 404:
        return
    assert resp.status_code == 202, resp.text
    cloud.wait_gone(server_id)


def assert_audit_clean(cloud, attempts: int = 30) -> None:
    """``transcell audit`` finds nothing (usage and notifications settle asynchronously)."""
    report: dict = {}
    for _ in range(attempts):
        report = json.loads(cloud.transcell("audit", "--json", check=False).stdout)
        if report["ok"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"audit found problems: {report['problems']}")
