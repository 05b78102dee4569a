"""An operator's say in where things go, on a running cloud with the unmodified
``openstack`` CLI: a server built on a chosen host or hypervisor (2.74), and images
fetched ahead of time into the caches of an aggregate's hosts (2.81)."""

from __future__ import annotations

import os
import random
import time

import pytest

pytestmark = pytest.mark.cli

COMPUTE = "/compute/v2.1"
HOSTS = ("cell1-host1", "cell1-host2", "cell2-host1", "cell2-host2")


def _create(cloud, name: str, *args: str, cloud_name: str = "transcell-admin",
            check: bool = True):
    return cloud.openstack("--os-compute-api-version", "2.74", "server", "create",
                           "--flavor", "m1.tiny", "--image", "transcell-base",
                           "--network", "private", *args, name, cloud=cloud_name, check=check)


def _delete(cloud, server_id: str) -> None:
    cloud.request("DELETE", f"{COMPUTE}/servers/{server_id}")
    cloud.wait_gone(server_id)


@pytest.mark.parametrize(("args", "host"), [
    (("--host", "cell1-host2"), "cell1-host2"),
    (("--hypervisor-hostname", "cell2-host1"), "cell2-host1"),
    (("--host", "cell2-host2", "--hypervisor-hostname", "cell2-host2",
      "--availability-zone", "cell2"), "cell2-host2"),
])
def test_a_server_lands_where_the_administrator_asked(cloud, args, host):
    created = cloud.openstack_json("--os-compute-api-version", "2.74", "server", "create",
                                   "--flavor", "m1.tiny", "--image", "transcell-base",
                                   "--network", "private", "--wait", *args, f"on-{host}")
    try:
        assert created["status"] == "ACTIVE"
        assert created["OS-EXT-SRV-ATTR:host"] == host
        assert created["OS-EXT-SRV-ATTR:hypervisor_hostname"] == host
    finally:
        _delete(cloud, created["id"])


def test_a_zone_that_disagrees_is_no_valid_host(cloud):
    resp = cloud.request("POST", f"{COMPUTE}/servers", version="2.74", json={"server": {
        "name": "misplaced", "flavorRef": "1", "networks": "none",
        "imageRef": cloud.request("GET", "/image/v2/images?name=transcell-base"
                                  ).json()["images"][0]["id"],
        "host": "cell1-host1", "availability_zone": "cell2"}})
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    try:
        errored = cloud.wait_status(server_id, "ERROR")
        assert "No valid host" in errored["fault"]["message"]
        assert errored["OS-EXT-SRV-ATTR:host"] is None
    finally:
        _delete(cloud, server_id)


def test_refused_destinations_build_nothing(cloud):
    def count() -> int:
        return len(cloud.request("GET", f"{COMPUTE}/servers?all_tenants=1"
                                 ).json()["servers"])

    before = count()
    refused = _create(cloud, "nowhere", "--host", "nowhere", check=False)
    assert refused.returncode != 0
    assert "Compute host nowhere could not be found." in refused.stderr
    assert "400" in refused.stderr
    refused = _create(cloud, "not-yours", "--host", "cell1-host1",
                      cloud_name="transcell-demo", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    assert "compute:servers:create:requested_destination" in refused.stderr
    # below 2.74 the CLI itself refuses to send the field
    old = cloud.openstack("--os-compute-api-version", "2.73", "server", "create",
                          "--flavor", "m1.tiny", "--image", "transcell-base", "--network",
                          "private", "--host", "cell1-host1", "too-early", check=False)
    assert old.returncode != 0
    assert count() == before


def _upload(cloud, name: str, data: bytes) -> str:
    image = cloud.request("POST", "/image/v2/images", json={
        "name": name, "disk_format": "raw", "container_format": "bare"}).json()
    resp = cloud.request("PUT", f"/image/v2/images/{image['id']}/file", data=data,
                         headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 204, resp.text
    return image["id"]


def _cached(cloud, host: str, image_id: str) -> str:
    return os.path.join(cloud.state_dir, "hosts", host, "image-cache", image_id)


def test_images_are_cached_on_the_aggregates_hosts(cloud):
    rng = random.Random(81)
    first, second = rng.randbytes(3 * 1024 * 1024), rng.randbytes(1024 * 1024 + 17)
    images = [_upload(cloud, "cache-me-1", first), _upload(cloud, "cache-me-2", second)]
    agg = cloud.openstack_json("aggregate", "create", "precache")
    agg_id = str(agg["id"])
    members = ("cell1-host2", "cell2-host1")
    try:
        for host in members:
            cloud.openstack("aggregate", "add", "host", agg_id, host)
        cloud.openstack("--os-compute-api-version", "2.81", "aggregate", "cache", "image",
                        "precache", "cache-me-1", images[1])
        deadline = time.monotonic() + 60
        wanted = [_cached(cloud, h, i) for h in members for i in images]
        while time.monotonic() < deadline and not all(os.path.exists(p) for p in wanted):
            time.sleep(0.2)
        for host in members:
            with open(_cached(cloud, host, images[0]), "rb") as fh:
                assert fh.read() == first
            with open(_cached(cloud, host, images[1]), "rb") as fh:
                assert fh.read() == second
        for host in set(HOSTS) - set(members):
            assert not any(os.path.exists(_cached(cloud, host, i)) for i in images)

        # refusals: too old a microversion, an unknown image, not an administrator
        old = cloud.openstack("--os-compute-api-version", "2.80", "aggregate", "cache",
                              "image", "precache", images[0], check=False)
        assert old.returncode != 0
        path = f"{COMPUTE}/os-aggregates/{agg_id}/images"
        missing = "00000000-1111-4222-8333-444444444444"
        resp = cloud.request("POST", path, version="2.81", json={"cache": [{"id": missing}]})
        assert resp.status_code == 400
        assert resp.json()["badRequest"]["message"] == f"Image {missing} could not be found."
        resp = cloud.request("POST", path, version="2.81", cloud="transcell-demo",
                             json={"cache": [{"id": images[0]}]})
        assert resp.status_code == 403
    finally:
        for host in members:
            cloud.openstack("aggregate", "remove", "host", agg_id, host, check=False)
        cloud.openstack("aggregate", "delete", agg_id)
        for image_id in images:
            cloud.request("DELETE", f"/image/v2/images/{image_id}")


def test_a_server_builds_on_the_image_cached_before_it(cloud):
    """The cached copy is the base a later build uses: the image is not fetched again."""
    data = random.Random(281).randbytes(2 * 1024 * 1024)
    image_id = _upload(cloud, "cache-then-boot", data)
    agg = cloud.openstack_json("aggregate", "create", "boot-from-cache")
    agg_id = str(agg["id"])
    server_id = None
    try:
        cloud.openstack("aggregate", "add", "host", agg_id, "cell1-host1")
        resp = cloud.request("POST", f"{COMPUTE}/os-aggregates/{agg_id}/images",
                             version="2.81", json={"cache": [{"id": image_id}]})
        assert resp.status_code == 202 and not resp.content
        cached = _cached(cloud, "cell1-host1", image_id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not os.path.exists(cached):
            time.sleep(0.2)
        fetched_at = os.stat(cached).st_mtime_ns
        resp = cloud.request("POST", f"{COMPUTE}/servers", version="2.74", json={"server": {
            "name": "from-cache", "flavorRef": "1", "imageRef": image_id,
            "networks": "none", "host": "cell1-host1"}})
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["server"]["id"]
        assert cloud.wait_status(server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "cell1-host1"
        assert os.stat(cached).st_mtime_ns == fetched_at
    finally:
        if server_id:
            _delete(cloud, server_id)
        cloud.openstack("aggregate", "remove", "host", agg_id, "cell1-host1", check=False)
        cloud.openstack("aggregate", "delete", agg_id)
        cloud.request("DELETE", f"/image/v2/images/{image_id}")
