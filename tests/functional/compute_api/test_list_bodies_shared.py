"""A detailed list builds parts its servers have in common once (image and flavor
references) and shares them between bodies; each body must still be
exactly what showing that server alone answers, at every microversion."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib

import pytest
from compute_api_fixtures import ADMIN
from sqlalchemy import select

from transcell.db import cell_models as cm
from transcell.db.session import cell_session

FLAVORS = [{"flavorid": "1", "name": "one", "vcpus": 1, "memory_mb": 512, "root_gb": 1,
            "extra_specs": {"a": "b"}},
           {"flavorid": "2", "name": "two", "vcpus": 2, "memory_mb": 1024, "root_gb": 2}]
T0 = dt.datetime(2026, 3, 1, 12, 0, 0)


@pytest.mark.parametrize("version", ["2.1", "2.47", "2.91"])
def test_listed_bodies_equal_each_server_shown_alone(cloud, version):
    cloud.add_service(cloud.cell1, "host-a")
    cloud.add_service(cloud.cell2, "host-b")
    made = []
    for n in range(8):
        cell = (cloud.cell1, cloud.cell2)[n % 2]
        uuid = cloud.add_instance(cell, project=("demo-project", "alt-project")[n // 4],
                                  host=("host-a", "host-b", None)[n % 3],
                                  image_ref=("img-1", "img-2", "")[n % 3],
                                  display_name=f"shared-{n}")
        with cell_session(cell) as s:
            s.add(cm.InstanceExtra(instance_uuid=uuid, flavor={"cur": FLAVORS[n % 2]},
                                   keypairs=[], request_networks=[]))
        made.append(uuid)
    listed = cloud.get("/servers/detail?all_tenants=1", token=ADMIN, version=version)
    assert listed.status_int == 200
    bodies = {s["id"]: s for s in listed.json["servers"]}
    assert set(made) <= set(bodies)
    for uuid in made:
        alone = cloud.get(f"/servers/{uuid}", token=ADMIN, version=version).json["server"]
        alone.pop("server_groups", None)  # a show's own key from 2.71, never in lists
        assert bodies[uuid] == alone
    # servers on one host of one project share a hostId; other projects' do not
    with cell_session(cloud.cell1) as s:
        assert s.scalar(select(cm.Instance.host).where(cm.Instance.uuid == made[0])) == "host-a"
    assert bodies[made[0]]["hostId"] == bodies[made[3]]["hostId"] != ""
    assert bodies[made[0]]["hostId"] != bodies[made[6]]["hostId"]


@pytest.mark.parametrize("version", ["2.1", "2.3", "2.26", "2.73", "2.91"])
def test_a_listed_server_with_everything_equals_it_shown(cloud, version):
    """A list loads only the columns and rows its bodies show (its servers' system
    metadata is read for ``locked_reason`` alone, block devices for volumes
    alone); a server with every kind of data must list as it shows."""
    cloud.add_service(cloud.cell1, "host-r")
    rich = cloud.add_instance(
        cloud.cell1, host="host-r", node="node-r", image_ref="img-r", vm_state="error",
        display_description="described", hostname="rich", key_name="key",
        access_ip_v4="192.0.2.7", config_drive="True", auto_disk_config=True, locked=True,
        reservation_id="r-1", root_device_name="/dev/vda", launch_index=2, progress=40,
        availability_zone="zone-r", launched_at=T0, updated_at=T0 + dt.timedelta(hours=1))
    with cell_session(cloud.cell1) as s:
        s.add(cm.InstanceExtra(instance_uuid=rich, flavor={"cur": FLAVORS[0]},
                               keypairs=[{"name": "key"}], request_networks=[]))
        for tag in ("b", "a"):
            s.add(cm.Tag(resource_id=rich, tag=tag))
        s.add(cm.InstanceMetadata(instance_uuid=rich, key="m", value="v"))
        for key, value in (("locked_reason", "why"), ("image_base", "x")):
            s.add(cm.InstanceSystemMetadata(instance_uuid=rich, key=key, value=value))
        s.add(cm.VirtualInterface(
            uuid="vif-r", address="fa:16:3e:00:00:01", network_id="net-r",
            instance_uuid=rich, info={"network_name": "private", "security_groups": ["web"],
                                      "fixed_ips": [{"ip_address": "10.0.0.5",
                                                     "version": 4}]}))
        for source, volume in (("image", None), ("volume", "vol-r")):
            s.add(cm.BlockDeviceMapping(
                uuid=str(uuidlib.uuid4()), instance_uuid=rich, source_type=source,
                destination_type="volume" if volume else "local", volume_id=volume,
                delete_on_termination=True, device_name="/dev/vdb" if volume else "/dev/vda",
                boot_index=None if volume else 0))
        for n in range(2):
            s.add(cm.InstanceFault(instance_uuid=rich, code=404, message=f"boom {n}",
                                   details="trace", created_at=T0))
    listed = cloud.get("/servers/detail?all_tenants=1", token=ADMIN, version=version)
    assert listed.status_int == 200
    body = next(s for s in listed.json["servers"] if s["id"] == rich)
    alone = cloud.get(f"/servers/{rich}", token=ADMIN, version=version).json["server"]
    alone.pop("server_groups", None)
    assert body == alone
    # the data was there to be shown
    assert body["fault"]["message"] == "boom 1"
    assert body["addresses"] == {"private": [{"version": 4, "addr": "10.0.0.5",
                                              "OS-EXT-IPS:type": "fixed",
                                              "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]}
    assert body["os-extended-volumes:volumes_attached"][0]["id"] == "vol-r"
    assert body["security_groups"] == [{"name": "web"}]
    if version == "2.73":
        assert body["locked_reason"] == "why"
