"""The unmodified ``openstack`` CLI against a running cloud."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.cli


def test_catalog_listings(cloud):
    flavors = {f["Name"] for f in cloud.openstack_json("flavor", "list")}
    assert {"m1.tiny", "m1.small", "gen1.small", "gen2.small"} <= flavors
    images = {i["Name"] for i in cloud.openstack_json("image", "list")}
    assert "transcell-base" in images
    networks = {n["Name"] for n in cloud.openstack_json("network", "list")}
    assert "private" in networks


def test_operator_listings(cloud):
    hypervisors = cloud.openstack_json("hypervisor", "list")
    names = {h["Hypervisor Hostname"] for h in hypervisors}
    assert {"cell1-host1", "cell1-host2", "cell2-host1", "cell2-host2"} <= names
    services = cloud.openstack_json("compute", "service", "list")
    computes = {s["Host"] for s in services if s["Binary"] == "nova-compute"}
    assert computes == names
    assert all(s["State"] == "up" for s in services)


def test_server_lifecycle_with_the_cli(cloud):
    created = cloud.openstack_json("server", "create", "--flavor", "m1.tiny", "--image",
                                   "transcell-base", "--network", "private", "--wait",
                                   "cli-server", cloud="transcell-demo")
    assert created["status"] == "ACTIVE"
    server_id = created["id"]
    listed = cloud.openstack_json("server", "list", cloud="transcell-demo")
    assert server_id in {s["ID"] for s in listed}
    shown = cloud.openstack_json("server", "show", "cli-server", cloud="transcell-demo")
    assert shown["id"] == server_id and shown["flavor"]
    cloud.openstack("server", "stop", "cli-server", cloud="transcell-demo")
    cloud.wait_status(server_id, "SHUTOFF")
    cloud.openstack("server", "start", "cli-server", cloud="transcell-demo")
    cloud.wait_status(server_id, "ACTIVE")
    events = cloud.openstack_json("server", "event", "list", "cli-server",
                                  cloud="transcell-demo")
    assert [e["Action"] for e in events] == ["start", "stop", "create"]
    cloud.openstack("server", "delete", "--wait", "cli-server", cloud="transcell-demo")
    assert server_id not in {s["ID"] for s in cloud.openstack_json("server", "list",
                                                                   cloud="transcell-demo")}


def test_gen_flavors_land_in_their_cells_with_the_cli(cloud):
    landed = {}
    for flavor in ("gen1.small", "gen2.small"):
        server = cloud.openstack_json("server", "create", "--flavor", flavor, "--image",
                                      "transcell-base", "--network", "private", "--wait",
                                      f"cli-{flavor}")
        landed[flavor] = server
    assert landed["gen1.small"]["OS-EXT-AZ:availability_zone"] == "cell1"
    assert landed["gen2.small"]["OS-EXT-AZ:availability_zone"] == "cell2"
    for server in landed.values():
        cloud.openstack("server", "delete", "--wait", server["id"])


def test_demo_cannot_see_alt_servers_with_the_cli(cloud):
    server = cloud.openstack_json("server", "create", "--flavor", "m1.tiny", "--image",
                                  "transcell-base", "--network", "private", "--wait",
                                  "alt-only", cloud="transcell-alt")
    demo_view = cloud.openstack_json("server", "list", cloud="transcell-demo")
    assert server["id"] not in {s["ID"] for s in demo_view}
    proc = cloud.openstack("server", "show", server["id"], cloud="transcell-demo", check=False)
    assert proc.returncode != 0
    cloud.openstack("server", "delete", "--wait", server["id"], cloud="transcell-alt")
