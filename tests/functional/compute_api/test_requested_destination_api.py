"""POST /servers with ``host`` and ``hypervisor_hostname`` (2.74), in-process.

What the API checks before anything is built (schema, the admin-only rule, that
the host and hypervisor exist) and what it hands the conductor: the request
spec's ``requested_destination``. That the scheduler then holds the build to
it is tested against real Placement in ``tests/functional/scheduler`` and on a
running cloud in ``tests/functional/cloud``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from compute_api_fixtures import ADMIN, DEMO
from sqlalchemy import func, select

from transcell.conf import CONF
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.registry import services
from transcell.rpc.bus import get_bus

IMAGE = "5b4ecbd1-0fb0-4b07-9b68-1a3f4a1a2b3c"


class FakeImages:
    def get(self, ctx, image_id: str) -> dict:
        return {"id": image_id, "name": "base", "status": "active", "size": 1024,
                "min_disk": 0, "disk_format": "raw", "os_hash_value": None}


class RecordingConductor:
    """Stands in for the conductor: keeps what it was asked to build."""

    def __init__(self) -> None:
        self.specs: list[dict] = []

    def schedule_and_build(self, ctx, request_spec: dict, instance: dict) -> dict:
        self.specs.append(request_spec)
        return {"uuid": instance["uuid"]}


@pytest.fixture
def dest(cloud, monkeypatch) -> Iterator[RecordingConductor]:
    cloud.add_flavor("1", "m1.tiny")
    cloud.add_compute(cloud.cell1, "cell1-host1")
    cloud.add_compute(cloud.cell2, "cell2-host1")
    # one host with two hypervisors, named apart from the host
    cloud.add_compute(cloud.cell2, "cell2-host2", hypervisor_hostname="cell2-host2-node-a")
    cloud.add_node(cloud.cell2, "cell2-host2", hypervisor_hostname="cell2-host2-node-b")
    monkeypatch.setattr(services, "image", FakeImages())
    conductor = RecordingConductor()
    bus = get_bus(CONF.rpc.transport_url)
    bus.serve("conductor", conductor)
    try:
        yield conductor
    finally:
        bus.unserve("conductor")


def _create(cloud, version: str = "2.74", token: str = ADMIN, **server):
    body = {"server": {"name": "placed", "flavorRef": "1", "networks": "none",
                       "imageRef": IMAGE, **server}}
    return cloud.post("/servers", body, token=token, version=version)


def _mappings() -> int:
    with api_session() as s:
        return s.scalar(select(func.count(am.InstanceMapping.id)))


def _stored_spec(server_id: str) -> dict:
    with api_session() as s:
        return s.scalar(select(am.RequestSpec)
                        .where(am.RequestSpec.instance_uuid == server_id)).spec


@pytest.mark.parametrize(("wanted", "destination"), [
    ({"host": "cell1-host1"}, {"host": "cell1-host1", "node": None}),
    ({"hypervisor_hostname": "cell2-host2-node-b"},
     {"host": None, "node": "cell2-host2-node-b"}),
    ({"host": "cell2-host2", "hypervisor_hostname": "cell2-host2-node-a"},
     {"host": "cell2-host2", "node": "cell2-host2-node-a"}),
])
def test_the_destination_goes_into_the_request_spec(cloud, dest, wanted, destination):
    resp = _create(cloud, **wanted)
    assert resp.status_int == 202, resp.text
    server_id = resp.json["server"]["id"]
    (spec,) = dest.specs
    assert spec["requested_destination"] == destination
    # kept with the server, as every request spec is
    assert _stored_spec(server_id)["requested_destination"] == destination


def test_without_a_destination_the_spec_names_none(cloud, dest):
    assert _create(cloud).status_int == 202
    assert _create(cloud, version="2.73").status_int == 202
    assert [s["requested_destination"] for s in dest.specs] == [None, None]


@pytest.mark.parametrize(("version", "wanted", "status", "message"), [
    ("2.73", {"host": "cell1-host1"}, 400,
     "Additional properties are not allowed ('host' was unexpected)"),
    ("2.73", {"hypervisor_hostname": "cell1-host1"}, 400,
     "Additional properties are not allowed ('hypervisor_hostname' was unexpected)"),
    ("2.74", {"host": "bad host!"}, 400, "Invalid input for field/attribute host."),
    ("2.74", {"host": ""}, 400, "Invalid input for field/attribute host."),
    ("2.74", {"hypervisor_hostname": "x" * 256}, 400,
     "Invalid input for field/attribute hypervisor_hostname."),
    ("2.74", {"host": "nowhere"}, 400, "Compute host nowhere could not be found."),
    ("2.74", {"hypervisor_hostname": "nowhere"}, 400,
     "Compute host nowhere could not be found."),
    # a hypervisor of another host is not one of this host's
    ("2.74", {"host": "cell1-host1", "hypervisor_hostname": "cell2-host2-node-a"}, 400,
     "Compute host cell1-host1 could not be found."),
])
def test_refusals_build_nothing(cloud, dest, version, wanted, status, message):
    before = _mappings()
    resp = _create(cloud, version=version, **wanted)
    assert resp.status_int == status, resp.text
    assert message in resp.json["badRequest"]["message"]
    assert dest.specs == [] and _mappings() == before


def test_only_administrators_choose_the_destination(cloud, dest):
    before = _mappings()
    for wanted in ({"host": "cell1-host1"}, {"hypervisor_hostname": "cell1-host1"}):
        resp = _create(cloud, token=DEMO, **wanted)
        assert resp.status_int == 403
        assert resp.json["forbidden"]["message"] == (
            "Policy doesn't allow compute:servers:create:requested_destination to be "
            "performed.")
    # even for a host that does not exist: the rule is checked first
    assert _create(cloud, token=DEMO, host="nowhere").status_int == 403
    assert dest.specs == [] and _mappings() == before
    # members still create servers without choosing
    assert _create(cloud, token=DEMO).status_int == 202


def test_the_rule_can_be_opened_to_members(cloud, dest, tmp_path):
    from transcell import policy
    rules = tmp_path / "policy.yaml"
    rules.write_text('"compute:servers:create:requested_destination": '
                     '"rule:project_member_api"\n')
    CONF.set_override("policy_file", str(rules), group="oslo_policy")
    policy.reset()
    try:
        assert _create(cloud, token=DEMO, host="cell2-host1").status_int == 202
        assert dest.specs[0]["requested_destination"]["host"] == "cell2-host1"
    finally:
        CONF.clear_override("policy_file", group="oslo_policy")
        policy.reset()
