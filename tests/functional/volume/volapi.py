"""Calls of a running cloud's Block storage API, and its volume files, for the tests."""

from __future__ import annotations

import os
import time
from typing import Any

import requests
from cloudclients import CloudProcess, start_cloud

ADMIN = "transcell-admin"
USER = "transcell-demo"
V3 = "/volume/v3"


def start(tmp_path_factory, name: str) -> tuple[Any, CloudProcess]:
    state_dir = str(tmp_path_factory.mktemp(name))
    proc = start_cloud(state_dir)
    return proc, CloudProcess(state_dir, proc.port)


def call(cloud: CloudProcess, method: str, path: str, cloud_name: str = USER,
         version: str | None = "3.44", **kwargs: Any) -> requests.Response:
    headers = dict(kwargs.pop("headers", {}) or {})
    if version:
        headers["OpenStack-API-Version"] = f"volume {version}"
    return cloud.request(method, f"{V3}{path}", cloud=cloud_name, version=None,
                         headers=headers, **kwargs)


def create(cloud: CloudProcess, cloud_name: str = USER, expect: int = 202,
           **fields: Any) -> dict:
    fields.setdefault("size", 1)
    resp = call(cloud, "POST", "/volumes", cloud_name, json={"volume": fields})
    assert resp.status_code == expect, resp.text
    return resp.json().get("volume", resp.json())


def show(cloud: CloudProcess, volume_id: str, cloud_name: str = ADMIN) -> dict:
    resp = call(cloud, "GET", f"/volumes/{volume_id}", cloud_name)
    assert resp.status_code == 200, resp.text
    return resp.json()["volume"]


def wait_volume(cloud: CloudProcess, volume_id: str, done, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        volume = show(cloud, volume_id)
        if done(volume) or time.monotonic() > deadline:
            return volume
        time.sleep(0.2)


def volume_path(cloud: CloudProcess, volume_id: str) -> str:
    resp = call(cloud, "GET", f"/os-transcell-moves/volumes/{volume_id}/backend", ADMIN)
    assert resp.status_code == 200, resp.text
    path = resp.json()["backend"]["path"]
    assert path.startswith(cloud.state_dir)
    return path


def write_at(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def read_at(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)
