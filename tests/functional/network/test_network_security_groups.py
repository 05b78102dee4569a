"""Security groups and rules of a running cloud: the Neutron API and openstacksdk."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cloudclients import CloudProcess, start_cloud, stop_cloud

NET = "/network/v2.0"
ADMIN = "transcell-admin"
USER = "transcell-demo"
OTHER = "transcell-alt"

openstack = pytest.importorskip("openstack")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[CloudProcess]:
    state_dir = str(tmp_path_factory.mktemp("secgroups"))
    proc = start_cloud(state_dir)
    try:
        yield CloudProcess(state_dir, proc.port)
    finally:
        stop_cloud(proc)


def _call(cloud: CloudProcess, method: str, path: str, body=None, as_: str = USER):
    return cloud.request(method, f"{NET}{path}", cloud=as_, json=body)


def _error(resp, status: int, kind: str | None = None) -> str:
    assert resp.status_code == status, resp.text
    error = resp.json()["NeutronError"]
    if kind:
        assert error["type"] == kind, error
    return error["message"]


def _rules(cloud: CloudProcess, group_id: str) -> list[dict]:
    resp = _call(cloud, "GET", f"/security-group-rules?security_group_id={group_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["security_group_rules"]


@pytest.fixture(scope="module")
def group(cloud) -> dict:
    resp = _call(cloud, "POST", "/security-groups", {"security_group": {
        "name": "web", "description": "web servers"}})
    assert resp.status_code == 201, resp.text
    return resp.json()["security_group"]


def test_group_crud(cloud, group):
    assert {(r["direction"], r["ethertype"], r["remote_group_id"])
            for r in group["security_group_rules"]} == {("egress", "IPv4", None),
                                                        ("egress", "IPv6", None)}
    names = {g["name"] for g in _call(cloud, "GET", "/security-groups").json()[
        "security_groups"]}
    assert names == {"default", "web"}
    changed = _call(cloud, "PUT", f"/security-groups/{group['id']}", {"security_group": {
        "description": "the web tier"}})
    assert changed.status_code == 200 and changed.json()["security_group"][
        "description"] == "the web tier"
    # another project sees nothing of it; a reader may not write
    _error(_call(cloud, "GET", f"/security-groups/{group['id']}", as_=OTHER), 404,
           "SecurityGroupNotFound")
    _error(_call(cloud, "DELETE", f"/security-groups/{group['id']}", as_=OTHER), 404)
    _error(_call(cloud, "POST", "/security-groups", {"security_group": {"name": "r"}},
                 as_="transcell-reader"), 403, "PolicyNotAuthorized")
    # the default group's name is taken, and the default group stays
    _error(_call(cloud, "POST", "/security-groups", {"security_group": {
        "name": "default"}}), 409, "SecurityGroupDefaultAlreadyExists")
    (default,) = _call(cloud, "GET", "/security-groups?name=default").json()[
        "security_groups"]
    assert len(default["security_group_rules"]) == 4
    _error(_call(cloud, "PUT", f"/security-groups/{default['id']}", {"security_group": {
        "name": "renamed"}}), 409, "SecurityGroupCannotUpdateDefault")
    _error(_call(cloud, "DELETE", f"/security-groups/{default['id']}"), 409,
           "SecurityGroupCannotRemoveDefault")
    _error(_call(cloud, "POST", "/security-groups", {"security_group": {"name": "x",
                                                                        "color": "red"}}),
           400)
    made = _call(cloud, "POST", "/security-groups", {"security_group": {"name": "tmp"}})
    assert _call(cloud, "DELETE", f"/security-groups/{made.json()['security_group']['id']}"
                 ).status_code == 204


BAD_RULES = [
    ({"direction": "sideways"}, None),
    ({"direction": "ingress", "ethertype": "IPv5"}, None),
    ({"direction": "ingress", "protocol": "carrier-pigeon"}, "SecurityGroupRuleInvalidProtocol"),
    ({"direction": "ingress", "protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
     "SecurityGroupInvalidPortRange"),
    ({"direction": "ingress", "protocol": "tcp", "port_range_min": 80},
     "SecurityGroupInvalidPortRange"),
    ({"direction": "ingress", "port_range_min": 80, "port_range_max": 80},
     "SecurityGroupProtocolRequiredWithPorts"),
    ({"direction": "ingress", "protocol": "udp", "port_range_min": 0, "port_range_max": 53},
     "SecurityGroupInvalidPortValue"),
    ({"direction": "ingress", "protocol": "tcp", "port_range_min": 1, "port_range_max": 70000},
     "SecurityGroupInvalidPortValue"),
    ({"direction": "ingress", "protocol": "gre", "port_range_min": 1, "port_range_max": 2},
     "SecurityGroupInvalidProtocolForPortRange"),
    ({"direction": "ingress", "protocol": "icmp", "port_range_min": 300},
     "SecurityGroupInvalidIcmpValue"),
    ({"direction": "ingress", "protocol": "icmp", "port_range_max": 0},
     "SecurityGroupMissingIcmpType"),
    ({"direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "G"},
     "SecurityGroupRemoteGroupAndRemoteIpPrefix"),
    ({"direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "::/0"},
     "SecurityGroupRuleParameterConflict"),
    ({"direction": "ingress", "remote_ip_prefix": "10.0.0.300/8"}, None),
    ({"direction": "ingress", "ethertype": "IPv4", "protocol": "icmpv6"},
     "SecurityGroupEthertypeConflictWithProtocol"),
]


def test_rules_checked_as_neutron_does(cloud, group):
    before = _rules(cloud, group["id"])
    ssh = _call(cloud, "POST", "/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
        "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}})
    assert ssh.status_code == 201, ssh.text
    rule = ssh.json()["security_group_rule"]
    assert (rule["ethertype"], rule["protocol"], rule["normalized_cidr"]) == (
        "IPv4", "tcp", "0.0.0.0/0")
    # the same rule in other words: protocol by number, an unnormalized prefix
    same = {"security_group_id": group["id"], "direction": "ingress", "protocol": "6",
            "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0",
            "ethertype": "ipv4"}
    message = _error(_call(cloud, "POST", "/security-group-rules",
                           {"security_group_rule": same}), 409, "SecurityGroupRuleExists")
    assert rule["id"] in message
    for body, kind in BAD_RULES:
        body = {"security_group_id": group["id"], **body}
        if body.get("remote_group_id") == "G":
            body["remote_group_id"] = group["id"]
        _error(_call(cloud, "POST", "/security-group-rules", {"security_group_rule": body}),
               400, kind)
    _error(_call(cloud, "POST", "/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress",
        "remote_group_id": "4d0b1e9a-0000-4000-8000-000000000000"}}), 404,
        "SecurityGroupNotFound")
    _error(_call(cloud, "POST", "/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress"}}, as_=OTHER), 404,
        "SecurityGroupNotFound")
    assert len(_rules(cloud, group["id"])) == len(before) + 1

    from_group = _call(cloud, "POST", "/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv6",
        "protocol": "ipv6-icmp", "remote_group_id": group["id"]}})
    assert from_group.status_code == 201, from_group.text
    shown = _call(cloud, "GET", f"/security-groups/{group['id']}").json()["security_group"]
    assert rule["id"] in {r["id"] for r in shown["security_group_rules"]}
    _error(_call(cloud, "GET", f"/security-group-rules/{rule['id']}", as_=OTHER), 404,
           "SecurityGroupRuleNotFound")
    _error(_call(cloud, "DELETE", f"/security-group-rules/{rule['id']}", as_=OTHER), 404)
    assert _call(cloud, "DELETE", f"/security-group-rules/{rule['id']}").status_code == 204
    _error(_call(cloud, "GET", f"/security-group-rules/{rule['id']}"), 404,
           "SecurityGroupRuleNotFound")


def test_a_group_in_use_stays_and_ports_keep_groups_through_bindings(cloud, group):
    (net,) = _call(cloud, "GET", "/networks?name=private").json()["networks"]
    port = _call(cloud, "POST", "/ports", {"port": {
        "network_id": net["id"], "security_groups": [group["id"]]}}).json()["port"]
    assert port["security_groups"] == [group["id"]]
    _error(_call(cloud, "DELETE", f"/security-groups/{group['id']}"), 409,
           "SecurityGroupInUse")
    # a move's bindings: made on one host, another added and activated
    _call(cloud, "PUT", f"/ports/{port['id']}", {"port": {
        "device_owner": "compute:nova", "device_id": "vm-sg", "binding:host_id":
        "cell1-host1"}}, as_=ADMIN)
    made = _call(cloud, "POST", f"/ports/{port['id']}/bindings",
                 {"binding": {"host": "cell2-host1"}}, as_=ADMIN)
    assert made.status_code == 201, made.text
    assert _call(cloud, "PUT", f"/ports/{port['id']}/bindings/cell2-host1/activate",
                 as_=ADMIN).status_code == 200
    moved = _call(cloud, "GET", f"/ports/{port['id']}", as_=ADMIN).json()["port"]
    assert moved["binding:host_id"] == "cell2-host1"
    assert moved["security_groups"] == [group["id"]]
    assert _call(cloud, "DELETE", f"/ports/{port['id']}", as_=ADMIN).status_code == 204
    assert _call(cloud, "GET", f"/security-groups/{group['id']}").status_code == 200


def test_openstacksdk_manages_groups_and_rules(cloud):
    conn = cloud.sdk(USER)
    made = conn.network.create_security_group(name="sdk-group", description="from the SDK")
    rule = conn.network.create_security_group_rule(
        security_group_id=made.id, direction="ingress", protocol="tcp",
        port_range_min=443, port_range_max=443, remote_ip_prefix="10.0.0.0/8")
    assert rule.port_range_min == 443
    listed = {r.id for r in conn.network.security_group_rules(security_group_id=made.id)}
    assert rule.id in listed and len(listed) == 3
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.create_security_group_rule(
            security_group_id=made.id, direction="ingress", protocol="tcp",
            port_range_min=443, port_range_max=443, remote_ip_prefix="10.0.0.0/8")
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.network.create_security_group_rule(security_group_id=made.id,
                                                direction="ingress", protocol="tcp",
                                                port_range_min=10, port_range_max=5)
    updated = conn.network.update_security_group(made, name="sdk-renamed")
    assert updated.name == "sdk-renamed"
    conn.network.delete_security_group_rule(rule, ignore_missing=False)
    conn.network.delete_security_group(made, ignore_missing=False)
    assert conn.network.find_security_group("sdk-renamed") is None


@pytest.mark.cli
def test_openstack_cli_groups_rules_and_segments(cloud):
    group = cloud.openstack_json("security", "group", "create", "cli-group", cloud=USER)
    rule = cloud.openstack_json("security", "group", "rule", "create", "--protocol", "tcp",
                                "--dst-port", "8080:8081", "--remote-ip", "192.0.2.0/24",
                                "cli-group", cloud=USER)
    assert (rule["port_range_min"], rule["port_range_max"]) == (8080, 8081)
    listed = cloud.openstack_json("security", "group", "rule", "list", "cli-group",
                                  cloud=USER)
    assert rule["id"] in {r["ID"] for r in listed}
    failed = cloud.openstack("security", "group", "rule", "create", "--protocol", "tcp",
                             "--dst-port", "8080:8081", "--remote-ip", "192.0.2.0/24",
                             "cli-group", cloud=USER, check=False)
    assert failed.returncode != 0 and "already" in failed.stderr
    cloud.openstack("security", "group", "delete", group["id"], cloud=USER)
    segments = cloud.openstack_json("network", "segment", "list", "--network", "routed")
    assert sorted(s["Name"] for s in segments) == ["cell1", "cell2"]
