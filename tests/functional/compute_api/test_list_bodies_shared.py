"""A detailed list builds parts its servers have in common once (image and flavor
references) and shares them between bodies; each body must still be
exactly what showing that server alone answers, at every microversion."""

from __future__ import annotations

import pytest
from compute_api_fixtures import ADMIN
from sqlalchemy import select

from transcell.db import cell_models as cm
from transcell.db.session import cell_session

FLAVORS = [{"flavorid": "1", "name": "one", "vcpus": 1, "memory_mb": 512, "root_gb": 1,
            "extra_specs": {"a": "b"}},
           {"flavorid": "2", "name": "two", "vcpus": 2, "memory_mb": 1024, "root_gb": 2}]


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
