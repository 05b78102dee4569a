"""Compute API pieces Tempest's compute tree probes that no everyday operation
needs: every version document the version list links to, the fixed extension
list, the network proxies (until 2.36) and a server's addresses by network."""

from __future__ import annotations

import uuid

from test_server_lifecycle import COMPUTE, create_server


def test_every_listed_version_document_answers_with_its_own_link(cloud):
    listing = cloud.request("GET", "/compute/", token=None)
    assert listing.status_code == 200
    for version in listing.json()["versions"]:
        self_link = [link for link in version["links"] if link["rel"] == "self"]
        assert len(self_link) == 1
        doc = cloud.request("GET", self_link[0]["href"].removeprefix(cloud.base_url),
                            token=None)
        assert doc.status_code == 200, (version["id"], doc.text)
        body = doc.json()["version"]
        assert body["id"] == version["id"]
        assert [link for link in body["links"] if link["rel"] == "self"] == self_link


def test_extension_list_and_show(cloud):
    resp = cloud.request("GET", f"{COMPUTE}/extensions", cloud="transcell-reader")
    assert resp.status_code == 200
    extensions = resp.json()["extensions"]
    assert {"name": "Hosts", "alias": "os-hosts"}.items() <= next(
        e for e in extensions if e["alias"] == "os-hosts").items()
    assert all(set(e) == {"name", "alias", "description", "namespace", "updated", "links"}
               for e in extensions)
    shown = cloud.request("GET", f"{COMPUTE}/extensions/os-consoles")
    assert shown.json()["extension"]["alias"] == "os-consoles"
    missing = cloud.request("GET", f"{COMPUTE}/extensions/os-nothing")
    assert missing.status_code == 404
    assert "itemNotFound" in missing.json()
    assert cloud.request("GET", f"{COMPUTE}/extensions", token=None).status_code == 401


def _private(cloud) -> dict:
    resp = cloud.request("GET", "/network/v2.0/networks?name=private", cloud="transcell-demo")
    return resp.json()["networks"][0]


def test_network_proxies_until_2_36(cloud):
    private = _private(cloud)
    for path, rule_view in (("os-networks", "label"), ("os-tenant-networks", "label")):
        listed = cloud.request("GET", f"{COMPUTE}/{path}", cloud="transcell-demo")
        assert listed.status_code == 200, listed.text
        entry = next(n for n in listed.json()["networks"] if n["id"] == private["id"])
        assert entry[rule_view] == "private"
        shown = cloud.request("GET", f"{COMPUTE}/{path}/{private['id']}",
                              cloud="transcell-reader")
        assert shown.status_code == 200
        assert shown.json()["network"]["id"] == private["id"]
        absent = cloud.request("GET", f"{COMPUTE}/{path}/{uuid.uuid4()}")
        assert absent.status_code == 404
        assert "itemNotFound" in absent.json()
        gone = cloud.request("GET", f"{COMPUTE}/{path}", version="2.36")
        assert gone.status_code == 404
    assert cloud.request("GET", f"{COMPUTE}/os-networks", token=None).status_code == 401


def test_server_addresses_by_network(cloud):
    server = create_server(cloud, "ips-by-network")
    cloud.wait_status(server["id"], "ACTIVE", cloud="transcell-demo")
    base = f"{COMPUTE}/servers/{server['id']}/ips"
    everything = cloud.request("GET", base, cloud="transcell-demo").json()["addresses"]
    one = cloud.request("GET", f"{base}/private", cloud="transcell-reader")
    assert one.status_code == 200
    assert one.json() == {"private": everything["private"]}
    other = cloud.request("GET", f"{base}/nonexistent", cloud="transcell-demo")
    assert other.status_code == 404
    assert "itemNotFound" in other.json()
    hidden = cloud.request("GET", f"{base}/private", cloud="transcell-alt")
    assert hidden.status_code == 404
    cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}", cloud="transcell-demo")
    cloud.wait_gone(server["id"])


def test_instance_usage_audit_log_reports_every_host_not_run(cloud):
    hosts = cloud.request("GET", f"{COMPUTE}/os-hypervisors").json()["hypervisors"]
    listed = cloud.request("GET", f"{COMPUTE}/os-instance_usage_audit_log")
    assert listed.status_code == 200, listed.text
    log = listed.json()["instance_usage_audit_logs"]
    assert log["num_hosts"] == log["num_hosts_not_run"] == len(log["hosts_not_run"]) >= 2
    assert len(hosts) == log["num_hosts"]
    assert log["overall_status"] == f"0 of {log['num_hosts']} hosts done. 0 errors."
    shown = cloud.request("GET", f"{COMPUTE}/os-instance_usage_audit_log/"
                          "2026-03-15%2010%3A20%3A30")
    assert shown.status_code == 200, shown.text
    period = shown.json()["instance_usage_audit_log"]
    assert (period["period_beginning"], period["period_ending"]) == (
        "2026-02-01 00:00:00", "2026-03-01 00:00:00")
    january = cloud.request("GET", f"{COMPUTE}/os-instance_usage_audit_log/"
                            "2026-01-02%2000%3A00%3A00.5").json()
    assert january["instance_usage_audit_log"]["period_beginning"] == "2025-12-01 00:00:00"
    bad = cloud.request("GET", f"{COMPUTE}/os-instance_usage_audit_log/invalid_time")
    assert bad.status_code == 400
    assert bad.json()["badRequest"]["message"] == "Invalid timestamp for date invalid_time"
    member = cloud.request("GET", f"{COMPUTE}/os-instance_usage_audit_log",
                           cloud="transcell-demo")
    assert member.status_code == 403


def _sg(cloud, method: str, path: str, cloud_name: str = "transcell-demo", **kwargs):
    return cloud.request(method, f"{COMPUTE}/{path}", cloud=cloud_name, **kwargs)


def test_security_group_proxy_groups_and_rules(cloud):
    made = _sg(cloud, "POST", "os-security-groups",
               json={"security_group": {"name": "web", "description": "web servers"}})
    assert made.status_code == 200, made.text
    group = made.json()["security_group"]
    assert (group["name"], group["description"], group["rules"]) == ("web", "web servers", [])
    listed = _sg(cloud, "GET", "os-security-groups", "transcell-reader").json()
    assert {"web", "default"} <= {g["name"] for g in listed["security_groups"]}
    assert "web" not in {g["name"] for g in _sg(cloud, "GET", "os-security-groups",
                                                  "transcell-alt").json()["security_groups"]}
    assert _sg(cloud, "GET", f"os-security-groups/{group['id']}",
               "transcell-alt").status_code == 404
    renamed = _sg(cloud, "PUT", f"os-security-groups/{group['id']}",
                  json={"security_group": {"name": "web2", "description": "d2"}})
    assert renamed.json()["security_group"]["name"] == "web2"

    rule = {"parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22,
            "to_port": 22, "cidr": "10.0.0.0/8"}
    added = _sg(cloud, "POST", "os-security-group-rules", json={"security_group_rule": rule})
    assert added.status_code == 200, added.text
    view = added.json()["security_group_rule"]
    assert (view["ip_protocol"], view["from_port"], view["to_port"], view["ip_range"],
            view["group"]) == ("tcp", 22, 22, {"cidr": "10.0.0.0/8"}, {})
    duplicate = _sg(cloud, "POST", "os-security-group-rules",
                    json={"security_group_rule": rule})
    assert duplicate.status_code == 400
    for bad in ({"from_port": 22, "to_port": 21}, {"from_port": 70000},
                {"ip_protocol": "999x"}, {"to_port": "x"}):
        resp = _sg(cloud, "POST", "os-security-group-rules",
                   json={"security_group_rule": {**rule, **bad}})
        assert resp.status_code == 400, (bad, resp.text)
        assert "badRequest" in resp.json()
    not_uuid = _sg(cloud, "POST", "os-security-group-rules",
                   json={"security_group_rule": {**rule, "parent_group_id": "non_int_id"}})
    assert not_uuid.status_code == 400
    assert not_uuid.json()["badRequest"]["message"] == "Security group id should be uuid"
    host_bits = _sg(cloud, "POST", "os-security-group-rules", json={"security_group_rule": {
        **rule, "from_port": 80, "to_port": 80, "cidr": "10.2.3.124/24"}})
    assert host_bits.json()["security_group_rule"]["ip_range"] == {"cidr": "10.2.3.124/24"}
    assert _sg(cloud, "DELETE", "os-security-groups/").status_code == 404
    missing = _sg(cloud, "POST", "os-security-group-rules",
                  json={"security_group_rule": {**rule, "parent_group_id": str(uuid.uuid4())}})
    assert missing.status_code == 404
    by_group = _sg(cloud, "POST", "os-security-group-rules", json={"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "icmp", "from_port": -1,
        "to_port": -1, "group_id": group["id"]}})
    assert by_group.json()["security_group_rule"]["group"] == {
        "name": "web2", "tenant_id": group["tenant_id"]}
    shown = _sg(cloud, "GET", f"os-security-groups/{group['id']}").json()["security_group"]
    assert len(shown["rules"]) == 3
    assert _sg(cloud, "DELETE", f"os-security-group-rules/{view['id']}").status_code == 202
    assert _sg(cloud, "DELETE", f"os-security-group-rules/{view['id']}").status_code == 404
    assert _sg(cloud, "DELETE", f"os-security-groups/{group['id']}").status_code == 202
    assert _sg(cloud, "GET", f"os-security-groups/{group['id']}").status_code == 404

    default = next(g for g in listed["security_groups"] if g["name"] == "default")
    refused = _sg(cloud, "DELETE", f"os-security-groups/{default['id']}")
    assert refused.status_code == 400
    assert _sg(cloud, "GET", "os-security-groups", version="2.36").status_code == 404
    assert _sg(cloud, "POST", "os-security-groups", "transcell-reader", json={
        "security_group": {"name": "x", "description": "y"}}).status_code == 403


def test_server_security_groups_add_list_remove(cloud):
    server = create_server(cloud, "sg-server")
    cloud.wait_status(server["id"], "ACTIVE", cloud="transcell-demo")
    group = _sg(cloud, "POST", "os-security-groups", json={
        "security_group": {"name": "extra", "description": ""}}).json()["security_group"]
    action = f"servers/{server['id']}/action"
    listing = f"servers/{server['id']}/os-security-groups"
    before = {g["name"] for g in _sg(cloud, "GET", listing).json()["security_groups"]}
    assert before == {"default"}
    assert _sg(cloud, "POST", action, json={"addSecurityGroup": {"name": "extra"}}
               ).status_code == 202
    assert {g["name"] for g in _sg(cloud, "GET", listing, "transcell-reader"
                                   ).json()["security_groups"]} == {"default", "extra"}
    again = _sg(cloud, "POST", action, json={"addSecurityGroup": {"name": "extra"}})
    assert again.status_code == 400
    assert _sg(cloud, "POST", action, json={"addSecurityGroup": {"name": "nope"}}
               ).status_code == 404
    assert _sg(cloud, "POST", action, "transcell-alt",
               json={"addSecurityGroup": {"name": "extra"}}).status_code == 404
    in_use = _sg(cloud, "DELETE", f"os-security-groups/{group['id']}")
    assert in_use.status_code == 400
    assert _sg(cloud, "POST", action, json={"removeSecurityGroup": {"name": "extra"}}
               ).status_code == 202
    assert _sg(cloud, "POST", action, json={"removeSecurityGroup": {"name": "extra"}}
               ).status_code == 400
    assert {g["name"] for g in _sg(cloud, "GET", listing).json()["security_groups"]} == \
        {"default"}
    shown = _sg(cloud, "GET", f"servers/{server['id']}").json()["server"]
    assert shown["security_groups"] == [{"name": "default"}]
    assert _sg(cloud, "POST", action, json={"addSecurityGroup": {"name": "extra"}}
               ).status_code == 202
    shown = _sg(cloud, "GET", f"servers/{server['id']}").json()["server"]
    assert shown["security_groups"] == [{"name": "default"}, {"name": "extra"}]
    for name in ("default", "extra"):
        assert _sg(cloud, "POST", action, json={"removeSecurityGroup": {"name": name}}
                   ).status_code == 202
    shown = _sg(cloud, "GET", f"servers/{server['id']}").json()["server"]
    assert "security_groups" not in shown
    listed = _sg(cloud, "GET", "servers/detail").json()["servers"]
    assert "security_groups" not in next(s for s in listed if s["id"] == server["id"])
    cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}", cloud="transcell-demo")
    cloud.wait_gone(server["id"])
    assert _sg(cloud, "DELETE", f"os-security-groups/{group['id']}").status_code == 202


def test_volume_proxy_create_list_show_delete(cloud):
    made = _sg(cloud, "POST", "os-volumes", json={"volume": {
        "size": 1, "display_name": "proxied", "metadata": {"k": "v"}}})
    assert made.status_code == 200, made.text
    volume = made.json()["volume"]
    assert (volume["displayName"], volume["size"], volume["metadata"],
            volume["attachments"]) == ("proxied", 1, {"k": "v"}, [{}])
    shown = _sg(cloud, "GET", f"os-volumes/{volume['id']}", "transcell-reader")
    assert shown.status_code == 200
    assert shown.json()["volume"]["id"] == volume["id"]
    for path in ("os-volumes", "os-volumes/detail"):
        listed = _sg(cloud, "GET", path).json()["volumes"]
        assert volume["id"] in {v["id"] for v in listed}
        assert _sg(cloud, "GET", f"{path}?limit=0").json()["volumes"] == []
    assert volume["id"] not in {v["id"] for v in _sg(cloud, "GET", "os-volumes",
                                                     "transcell-alt").json()["volumes"]}
    assert _sg(cloud, "GET", f"os-volumes/{volume['id']}", "transcell-alt").status_code == 404
    for size in ("#$%", 0, ""):
        bad = _sg(cloud, "POST", "os-volumes", json={"volume": {"size": size}})
        assert bad.status_code == 400, (size, bad.text)
    assert _sg(cloud, "POST", "os-volumes", json={"volume": {"display_name": "x"}}
               ).status_code == 400
    assert _sg(cloud, "GET", "os-volumes", version="2.36").status_code == 404
    assert _sg(cloud, "GET", "os-volumes/").status_code == 404
    assert _sg(cloud, "DELETE", "os-volumes/").status_code == 404
    assert _sg(cloud, "DELETE", f"os-volumes/{volume['id']}").status_code == 202
    for _ in range(100):
        if _sg(cloud, "GET", f"os-volumes/{volume['id']}").status_code == 404:
            break
    else:
        raise AssertionError("the volume was not deleted")


def test_inject_network_info_is_an_administrators_no_op(cloud):
    server = create_server(cloud, "inject")
    cloud.wait_status(server["id"], "ACTIVE", cloud="transcell-demo")
    action = f"{COMPUTE}/servers/{server['id']}/action"
    member = cloud.request("POST", action, cloud="transcell-demo",
                           json={"injectNetworkInfo": None})
    assert member.status_code == 403
    admin = cloud.request("POST", action, json={"injectNetworkInfo": None})
    assert admin.status_code == 202
    assert cloud.wait_status(server["id"], "ACTIVE")["OS-EXT-STS:task_state"] is None
    cloud.request("DELETE", f"{COMPUTE}/servers/{server['id']}", cloud="transcell-demo")
    cloud.wait_gone(server["id"])
