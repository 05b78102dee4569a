"""Snapshot, backup and rebuild with the unmodified ``openstack`` CLI and openstacksdk."""

from __future__ import annotations

import json

import pytest
import snaphelpers as sh

from transcell.compute.virt import disk

pytestmark = pytest.mark.cli

USER = "transcell-demo"


def _json_after_progress(scloud, *args: str) -> dict:
    """``--wait`` prints "Complete" before the JSON body."""
    out = scloud.openstack(*args, "-f", "json", cloud=USER).stdout
    return json.loads(out[out.index("{"):])


def test_image_create_backup_and_rebuild_with_the_cli(scloud):
    created = scloud.openstack_json("server", "create", "--flavor", "m1.tiny", "--image",
                                    "transcell-base", "--network", "private", "--wait",
                                    "cli-snap", cloud=USER)
    sid = created["id"]
    found = sh.server(scloud, sid)
    disk.guest_write(sh.root_disk(scloud, found), 8192, b"from the cli " * 50)
    checksum = disk.guest_checksum(sh.root_disk(scloud, found))
    image = scloud.openstack_json("server", "image", "create", "--name", "cli-snap-image",
                                  "--wait", "cli-snap", cloud=USER)
    shown = scloud.openstack_json("image", "show", image["id"], cloud=USER)
    assert shown["status"] == "active"
    assert shown["properties"]["image_type"] == "snapshot"
    assert shown["properties"]["instance_uuid"] == sid
    backup = scloud.openstack_json("server", "backup", "create", "--name", "cli-backup",
                                   "--type", "daily", "--rotate", "1", "--wait", "cli-snap",
                                   cloud=USER)
    assert scloud.openstack_json("image", "show", backup["id"], cloud=USER)[
        "properties"]["backup_type"] == "daily"
    sh.wait_server(scloud, sid, "ACTIVE")
    # a second server, rebuilt from the first one's snapshot, sees the same bytes
    other = scloud.openstack_json("server", "create", "--flavor", "m1.tiny", "--image",
                                  "transcell-base", "--network", "private", "--wait",
                                  "cli-rebuilt", cloud=USER)
    rebuilt = _json_after_progress(scloud, "server", "rebuild", "--image", "cli-snap-image",
                                   "--name", "cli-rebuilt-2", "--property", "why=cli",
                                   "--wait", other["id"])
    assert rebuilt["status"] == "REBUILD"  # the CLI prints the server the rebuild answered
    after = sh.wait_server(scloud, other["id"], "ACTIVE")
    assert after["name"] == "cli-rebuilt-2" and after["metadata"] == {"why": "cli"}
    assert after["image"]["id"] == image["id"]
    assert disk.guest_checksum(sh.root_disk(scloud, after)) == checksum
    events = scloud.openstack_json("server", "event", "list", other["id"], cloud=USER)
    assert events[0]["Action"] == "rebuild"
    for server_id in (sid, other["id"]):
        scloud.openstack("server", "delete", "--wait", server_id, cloud=USER)


def test_snapshot_and_rebuild_with_openstacksdk(scloud):
    conn = scloud.sdk(USER)
    image = conn.image.find_image("transcell-base")
    network = conn.network.find_network("private")
    server = conn.compute.create_server(name="sdk-snap", flavor_id="1", image_id=image.id,
                                        networks=[{"uuid": network.id}])
    server = conn.compute.wait_for_server(server, wait=120)
    snap_id = conn.compute.create_server_image(server, "sdk-image", metadata={"k": "v"},
                                               wait=True, timeout=120).id
    snap = conn.image.get_image(snap_id)
    assert snap.status == "active" and snap.properties["k"] == "v"
    conn.compute.wait_for_server(conn.compute.get_server(server.id), wait=60)
    conn.compute.rebuild_server(server, image=snap_id, name="sdk-rebuilt")
    rebuilt = conn.compute.wait_for_server(conn.compute.get_server(server.id), wait=120)
    assert rebuilt.name == "sdk-rebuilt" and rebuilt.image.id == snap_id
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=120)
