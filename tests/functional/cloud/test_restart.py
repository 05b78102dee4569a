"""Stopping and starting ``transcell up`` on the same state directory keeps everything."""

from __future__ import annotations

import json
import os

from cloudclients import CloudProcess, start_cloud, stop_cloud

COMPUTE = "/compute/v2.1"


def test_restart_keeps_servers_flavors_images(tmp_path):
    state_dir = str(tmp_path / "state")
    proc = start_cloud(state_dir, ("--cells", "2", "--hosts-per-cell", "1"))
    try:
        cloud = CloudProcess(state_dir, proc.port)
        flavor = cloud.request("POST", f"{COMPUTE}/flavors", json={
            "flavor": {"name": "kept", "ram": 256, "vcpus": 1, "disk": 1, "id": "kept-1"}})
        assert flavor.status_code == 200, flavor.text
        image = cloud.request("POST", "/image/v2/images", json={
            "name": "kept-image", "disk_format": "raw", "container_format": "bare"}).json()
        upload = cloud.request("PUT", f"/image/v2/images/{image['id']}/file",
                               data=b"kept" * 4096,
                               headers={"Content-Type": "application/octet-stream"})
        assert upload.status_code == 204
        base = cloud.request("GET", "/image/v2/images?name=transcell-base").json()
        net = cloud.request("GET", "/network/v2.0/networks?name=private").json()
        resp = cloud.request("POST", f"{COMPUTE}/servers", cloud="transcell-demo", json={
            "server": {"name": "survivor", "flavorRef": "1",
                       "imageRef": base["images"][0]["id"],
                       "networks": [{"uuid": net["networks"][0]["id"]}]}})
        server_id = resp.json()["server"]["id"]
        before = cloud.wait_status(server_id, "ACTIVE")
        old_token = cloud.token("transcell-demo")
    finally:
        stop_cloud(proc, purge=False)

    proc = start_cloud(state_dir, ("--cells", "2", "--hosts-per-cell", "1"))
    try:
        cloud = CloudProcess(state_dir, proc.port)
        after = cloud.request("GET", f"{COMPUTE}/servers/{server_id}").json()["server"]
        assert after["status"] == "ACTIVE"
        assert after["addresses"] == before["addresses"]
        assert after["OS-EXT-SRV-ATTR:host"] == before["OS-EXT-SRV-ATTR:host"]
        assert cloud.request("GET", f"{COMPUTE}/flavors/kept-1").status_code == 200
        kept = cloud.request("GET", "/image/v2/images?name=kept-image").json()["images"]
        assert kept and kept[0]["status"] == "active"
        data = cloud.request("GET", f"/image/v2/images/{kept[0]['id']}/file")
        assert data.content == b"kept" * 4096
        # tokens are signed with a key kept in the state dir, so they survive too
        resp = cloud.request("GET", f"{COMPUTE}/servers", token=old_token)
        assert server_id in {s["id"] for s in resp.json()["servers"]}
        images = cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"]
        assert len(images) == 1
        report = json.loads(cloud.transcell("audit", "--json", check=False).stdout)
        assert report["problems"] == []
    finally:
        stop_cloud(proc)
    if proc.distributed:
        # a stopped distributed cloud has no Placement to audit against (and its
        # databases were dropped just now): the rest is the embedded cloud's
        return

    # the audit also reads a stopped cloud's state dir, down to the image chunks
    manifest_path = os.path.join(state_dir, "images", "images", f"{kept[0]['id']}.json")
    with open(manifest_path) as fh:
        digest = json.load(fh)["chunks"][0]
    os.unlink(os.path.join(state_dir, "images", "chunks", digest[:2], digest))
    proc = cloud.transcell("audit", "--json", check=False)
    assert proc.returncode == 1
    problems = json.loads(proc.stdout)["problems"]
    assert [p["kind"] for p in problems] == ["missing-chunk"]
    assert digest in problems[0]["detail"]
