"""The real ``openstack`` client drives moves end to end."""

from __future__ import annotations

import json

import movehelpers as mh
import pytest

pytestmark = pytest.mark.cli


def test_resize_confirm_revert_migrate_with_the_openstack_cli(mcloud):
    cloud = mcloud
    srv = mh.boot(cloud, "cli-mover", flavor="1")
    sid = srv["id"]
    cloud.openstack("server", "resize", "--flavor", "gen2.small", "--wait", sid)
    assert cloud.openstack_json("server", "show", sid)["status"] == "VERIFY_RESIZE"
    cloud.openstack("server", "resize", "confirm", sid)
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert mh.cell_of_host(mh.host_of(found)) == "cell2"

    # m1.small fits anywhere: the move prefers the server's own cell
    cloud.openstack("server", "resize", "--flavor", "m1.small", "--wait", sid)
    cloud.openstack("server", "resize", "confirm", sid)
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert mh.cell_of_host(mh.host_of(found)) == "cell2"

    cloud.openstack("--os-compute-api-version", "2.56", "server", "migrate", "--host",
                    "cell1-host1", "--wait", sid)
    shown = cloud.openstack_json("server", "show", sid)
    assert shown["status"] == "VERIFY_RESIZE"
    assert shown["OS-EXT-SRV-ATTR:host"] == "cell1-host1"
    cloud.openstack("server", "resize", "revert", sid)
    found = mh.wait_status(cloud, sid, "ACTIVE")
    assert mh.cell_of_host(mh.host_of(found)) == "cell2"

    listed = cloud.openstack_json("--os-compute-api-version", "2.59", "server", "migration",
                                  "list", "--server", sid)
    assert [m["Status"] for m in listed] == ["reverted", "confirmed", "confirmed"]
    assert [m.get("Type", m.get("Migration Type")) for m in listed] == [
        "migration", "resize", "resize"]
    events = cloud.openstack_json("server", "event", "list", sid)
    assert [e["Action"] for e in events][:6] == [
        "revertResize", "migrate", "confirmResize", "resize", "confirmResize", "resize"]
    detail = cloud.openstack_json("--os-compute-api-version", "2.51", "server", "event",
                                  "show", sid, events[1]["Request ID"])
    names = {e["event"] for e in detail["events"]}
    assert {"conductor_migrate_server", "compute_prep_snapshot_based_resize_at_source",
            "compute_finish_snapshot_based_resize_at_dest"} <= names
    shown = json.loads(cloud.transcell("migration", "show", listed[-1]["UUID"],
                                       "--json").stdout)
    # the disk held only the base image's bytes, which the store already has
    assert shown["status"] == "confirmed" and shown["disk_size"] == 1024 ** 3  # m1.tiny
    assert shown["bytes_uploaded"] == 0
    assert shown["downtime_seconds"] is not None
    cloud.openstack("server", "delete", "--wait", sid)
