"""Host aggregates with the unmodified ``openstack`` CLI and the live API, against a
running cloud; bodies checked against Tempest's schemas."""

from __future__ import annotations

import pytest
from tempest.lib.api_schema.response.compute.v2_41 import aggregates as schemas_241
from tempest.lib.common import rest_client

pytestmark = pytest.mark.cli

COMPUTE = "/compute/v2.1"


class _Resp(dict):
    """Headers and status the way Tempest's response check reads them."""

    def __init__(self, response):
        super().__init__({k.lower(): v for k, v in response.headers.items()})
        self.status = response.status_code


def test_aggregates_with_the_cli(cloud):
    created = cloud.openstack_json("aggregate", "create", "--zone", "cell1", "cli-agg")
    agg_id = str(created["id"])
    try:
        cloud.openstack("aggregate", "add", "host", agg_id, "cell1-host1")
        cloud.openstack("aggregate", "set", "--property", "cross_cell_move_weight_multiplier=0",
                        "--property", "rack=r7", agg_id)
        shown = cloud.openstack_json("aggregate", "show", agg_id)
        assert shown["availability_zone"] == "cell1"
        assert shown["hosts"] == ["cell1-host1"]
        assert shown["properties"] == {"cross_cell_move_weight_multiplier": "0",
                                       "rack": "r7"}
        assert "cli-agg" in {a["Name"] for a in cloud.openstack_json("aggregate", "list")}

        # A host of the other cell cannot join a cell1 aggregate; the zone cannot move.
        refused = cloud.openstack("aggregate", "add", "host", agg_id, "cell2-host1",
                                  check=False)
        assert refused.returncode != 0
        assert "409" in refused.stderr and "availability zone cell2" in refused.stderr
        refused = cloud.openstack("aggregate", "set", "--zone", "nova", agg_id, check=False)
        assert refused.returncode != 0
        assert "400" in refused.stderr and "availability zone 'nova'" in refused.stderr
        refused = cloud.openstack("aggregate", "delete", agg_id, check=False)
        assert refused.returncode != 0
        assert cloud.openstack_json("aggregate", "show", agg_id)["hosts"] == ["cell1-host1"]

        resp = cloud.request("GET", f"{COMPUTE}/os-aggregates/{agg_id}", version="2.41")
        rest_client.RestClient.validate_response(schemas_241.get_aggregate, _Resp(resp),
                                                 resp.json())
        cloud.openstack("aggregate", "remove", "host", agg_id, "cell1-host1")
    finally:
        cloud.openstack("aggregate", "remove", "host", agg_id, "cell1-host1", check=False)
        cloud.openstack("aggregate", "delete", agg_id)
    assert "cli-agg" not in {a["Name"] for a in cloud.openstack_json("aggregate", "list")}
